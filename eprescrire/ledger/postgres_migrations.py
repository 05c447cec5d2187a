"""Schema versions of the shared PostgreSQL ledger, applied in order by ``eprescrire ledger init``.

Each migration runs in one transaction with its row in ``ledger.schema_migrations``; a database
whose version is newer than :data:`LATEST` is refused. Never edit a released migration.

What the database itself enforces, for every role but the superuser (who can switch triggers
off: that is what the hash chains and the signed checkpoint are for):

* ``ledger.records`` is append-only: no role holds UPDATE, DELETE or TRUNCATE on it, and
  triggers refuse them even for its owner.
* A record gets in only through ``ledger.append`` (SECURITY DEFINER; version 4: no site, nor
  the administrators' group, holds INSERT on ``ledger.records``), which checks every record
  itself: it is written in the session's own name (``actor`` is ``session_user``; a
  dispensing's ``pharmacist`` / ``pharmacy`` and a consent's ``pharmacist`` must be the site's
  registered RPPS / FINESS; a prescriber records only about their own prescriptions), follows
  its prescription's chain head, and takes its sequence number from ``ledger.record_seq``.
* Reading goes through ``ledger.history(id)`` (SECURITY DEFINER): a site gets one
  prescription whose identifier it holds (from the paper), never a list; a prescriber only their
  own prescriptions, without any dispensing record when the patient opposed sharing. Sites hold
  no SELECT on the tables, so no role but the auditor and the administrator can list
  prescriptions (nor search them by patient).
* No dispensing beyond a line's prescribed total (quantity x (renewals + 1)), none after the
  prescriber's cancellation, per lane (version 3: a prescription is keyed by identifier and
  signer, so another signer's document under the same identifier never counts against the
  genuine one; a prescriber reads only their own lanes and records consent only about them).
  Until version 3 a deferred constraint trigger checked them at commit; since version 4
  ``ledger.append`` checks them after locking the chain head (so every committed record of
  the prescription is counted, and no other writer of it commits before this transaction).
* A write is two round trips (version 2): ``ledger.open_write`` then ``ledger.append`` (which
  reads back what it appended) with COMMIT; a prescription's first write is one (version 5):
  ``ledger.append`` at position 0 creates the chain head itself, and appends nothing to a chain
  that has records (it returns NULL).
* A record's own checks (position, kind, hashes) are one constraint calling
  ``ledger.record_ok`` (version 6): the same conditions, not read back and planned again by
  every INSERT as four check constraints were.
* Each prescription has its own hash chain (``pos`` 1, 2, ...; ``prev_hash`` of the first is
  ``sha256("eprescrire-ledger/1\\0" || ledger_id || "/" || prescription_id)``); its head row in
  ``ledger.chain_heads`` is the only lock a write takes, so different prescriptions never wait
  for each other.

The schema follows Citus's rules for distribution by ``prescription_id``: every primary and
unique key of a distributed table contains it, and no foreign key crosses it
(``tests/test_ledger_postgres.py`` checks this from the catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP_ROLES = (
    "eprescrire_admin",
    "eprescrire_pharmacy",
    "eprescrire_prescriber",
    "eprescrire_auditor",
    "eprescrire_cert",
)

# Tables and how Citus would place them (docs/scaling.md).
DISTRIBUTED = (
    "records",
    "chain_heads",
    "prescriptions",
    "checkpoint_leaves",
    "imported_records",
)
REFERENCE = ("sites", "meta", "schema_migrations", "checkpoints", "imported_ledgers")
DISTRIBUTION_COLUMN = "prescription_id"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


_ROLES = "\n".join(
    f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
END $$;"""
    for role in GROUP_ROLES
)

_V1 = (
    _ROLES
    + r"""
CREATE SCHEMA ledger;
REVOKE ALL ON SCHEMA ledger FROM PUBLIC;

CREATE TABLE ledger.schema_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- Who may write: one row per login role (a site, or a person).
CREATE TABLE ledger.sites (
    role_name name PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('pharmacy', 'prescriber', 'auditor')),
    finess text CHECK (finess ~ '^[0-9A-B]{9}$'),
    rpps text CHECK (rpps ~ '^[0-9]{11}$'),
    certificate_sha256 text,
    added_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'prescriber' OR rpps IS NOT NULL),
    CHECK (kind <> 'pharmacy' OR finess IS NOT NULL OR rpps IS NOT NULL)
);

-- What the recorded prescription allows, derived from its signed payload when it is recorded.
CREATE TABLE ledger.prescriptions (
    prescription_id text PRIMARY KEY,
    prescriber_rpps text NOT NULL,
    kid text NOT NULL,
    totals integer[] NOT NULL,
    share_opposition boolean NOT NULL
);

-- The head of each prescription's chain: the one row a write locks.
CREATE TABLE ledger.chain_heads (
    prescription_id text PRIMARY KEY,
    pos integer NOT NULL,
    seq bigint,
    hash text NOT NULL
);

CREATE SEQUENCE ledger.record_seq;

CREATE TABLE ledger.records (
    prescription_id text NOT NULL,
    pos integer NOT NULL CHECK (pos >= 1),
    seq bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('prescription', 'dispensing', 'cancellation', 'consent')),
    recorded_at text NOT NULL,
    body text NOT NULL,
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    actor name NOT NULL DEFAULT session_user,
    request_id uuid NOT NULL,
    line integer,
    quantity integer,
    PRIMARY KEY (prescription_id, pos)
);
CREATE INDEX records_by_seq ON ledger.records (seq);
-- A retried request (its identifier is in every record it wrote) is recognised, not redone:
-- found through the primary key's prescription_id prefix, a prescription having few records.

-- Checkpoints: the Merkle root over every chain head at a moment, and its leaves.
CREATE TABLE ledger.checkpoints (
    root text PRIMARY KEY,
    max_seq bigint NOT NULL,
    leaves bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ledger.checkpoint_leaves (
    prescription_id text NOT NULL,
    root text NOT NULL,
    pos integer NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (prescription_id, root)
);

-- SQLite ledgers moved in (`ledger import`): their records verbatim, so that their own hash
-- chain stays verifiable, beside the copies appended to the prescriptions' chains.
CREATE TABLE ledger.imported_ledgers (
    source_ledger text PRIMARY KEY,
    records bigint NOT NULL,
    head_seq bigint NOT NULL,
    head_hash text,
    imported_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ledger.imported_records (
    prescription_id text NOT NULL,
    source_ledger text NOT NULL,
    source_seq bigint NOT NULL,
    kind text NOT NULL,
    recorded_at text NOT NULL,
    body text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (prescription_id, source_ledger, source_seq)
);

-- ---------------------------------------------------------------------------------------------
-- Helpers

CREATE FUNCTION ledger.genesis(pid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
    SELECT encode(sha256(convert_to('eprescrire-ledger/1', 'UTF8') || '\x00'::bytea
        || convert_to((SELECT value FROM ledger.meta WHERE key = 'ledger_id') || '/' || pid,
                      'UTF8')), 'hex')
$$;

CREATE FUNCTION ledger.jws_payload(token text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
DECLARE
    part text := split_part(token, '.', 2);
BEGIN
    part := translate(part, '-_', '+/');
    part := rpad(part, ((length(part) + 3) / 4) * 4, '=');
    RETURN convert_from(decode(part, 'base64'), 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'eprescrire: the prescription record does not carry a readable JWS'
        USING ERRCODE = '22023';
END $$;

CREATE FUNCTION ledger.is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT pg_has_role(session_user, 'eprescrire_admin', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
$$;

-- Take the prescription's chain head (creating it) FOR UPDATE: the only lock of a write.
CREATE FUNCTION ledger.begin_update(pid text, OUT pos integer, OUT hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
BEGIN
    IF NOT ledger.is_admin()
       AND NOT EXISTS (SELECT 1 FROM ledger.sites s WHERE s.role_name = session_user
                       AND s.kind IN ('pharmacy', 'prescriber')) THEN
        RAISE EXCEPTION 'eprescrire: % may not write to this ledger', session_user
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO ledger.chain_heads AS h (prescription_id, pos, seq, hash)
        VALUES (pid, 0, NULL, ledger.genesis(pid))
        ON CONFLICT (prescription_id) DO NOTHING;
    SELECT h.pos, h.hash INTO pos, hash FROM ledger.chain_heads h
        WHERE h.prescription_id = pid FOR UPDATE;
END $$;

-- Whether a retried request was already committed (its records, if so).
CREATE FUNCTION ledger.request_done(pid text, rid uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
    SELECT EXISTS (SELECT 1 FROM ledger.records r
                   WHERE r.prescription_id = pid AND r.request_id = rid
                     AND (r.actor = session_user OR ledger.is_admin()))
$$;

-- One prescription's records, as the session may see them.
CREATE FUNCTION ledger.history(pid text)
RETURNS TABLE (seq bigint, kind text, prescription_id text, recorded_at text, body text,
               prev_hash text, hash text, pos integer, request_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    site ledger.sites;
    p ledger.prescriptions;
    opposed boolean;
BEGIN
    IF ledger.is_admin() THEN
        RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
            r.prev_hash, r.hash, r.pos, r.request_id
            FROM ledger.records r WHERE r.prescription_id = pid ORDER BY r.pos;
        RETURN;
    END IF;
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
            USING ERRCODE = '42501';
    END IF;
    IF site.kind IN ('pharmacy', 'auditor') THEN
        RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
            r.prev_hash, r.hash, r.pos, r.request_id
            FROM ledger.records r WHERE r.prescription_id = pid ORDER BY r.pos;
        RETURN;
    END IF;
    -- A prescriber: their own prescriptions only; what the patient opposed is not returned.
    SELECT * INTO p FROM ledger.prescriptions x WHERE x.prescription_id = pid;
    IF NOT FOUND THEN
        -- Unknown here: only what this prescriber recorded (a cancellation made in advance).
        RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
            r.prev_hash, r.hash, r.pos, r.request_id
            FROM ledger.records r
            WHERE r.prescription_id = pid AND r.actor = session_user ORDER BY r.pos;
        RETURN;
    END IF;
    IF p.prescriber_rpps IS DISTINCT FROM site.rpps THEN
        RAISE EXCEPTION 'eprescrire: prescription % is not one of %''s', pid, session_user
            USING ERRCODE = '42501';
    END IF;
    SELECT coalesce((SELECT (c.body::jsonb ->> 'share_opposition')::boolean
                     FROM ledger.records c
                     WHERE c.prescription_id = pid AND c.kind = 'consent'
                     ORDER BY c.pos DESC LIMIT 1), p.share_opposition) INTO opposed;
    RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
        r.prev_hash, r.hash, r.pos, r.request_id
        FROM ledger.records r
        WHERE r.prescription_id = pid AND NOT (opposed AND r.kind = 'dispensing')
        ORDER BY r.pos;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Writing: identity, chain position, derived columns

CREATE FUNCTION ledger.records_before_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    site ledger.sites;
    admin boolean := ledger.is_admin();
    head ledger.chain_heads;
    b jsonb;
    payload jsonb;
    p ledger.prescriptions;
BEGIN
    NEW.actor := session_user;
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND AND NOT admin THEN
        RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
            USING ERRCODE = '42501';
    END IF;
    IF NOT admin AND site.kind NOT IN ('pharmacy', 'prescriber') THEN
        RAISE EXCEPTION 'eprescrire: a % site does not write records', site.kind
            USING ERRCODE = '42501';
    END IF;
    BEGIN
        b := NEW.body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END;
    IF jsonb_typeof(b) <> 'object' THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END IF;

    -- The chain: exactly the next position after the head, chained to it.
    SELECT * INTO head FROM ledger.chain_heads h
        WHERE h.prescription_id = NEW.prescription_id FOR UPDATE;
    IF NOT FOUND THEN
        head := ROW(NEW.prescription_id, 0, NULL, ledger.genesis(NEW.prescription_id));
        INSERT INTO ledger.chain_heads VALUES (head.*);
    END IF;
    IF NEW.pos <> head.pos + 1 OR NEW.prev_hash <> head.hash THEN
        RAISE EXCEPTION 'eprescrire: record % of prescription % does not follow its chain head (%)',
            NEW.pos, NEW.prescription_id, head.pos USING ERRCODE = '40001';
    END IF;
    IF NEW.seq IS NULL OR NEW.seq < 1 OR NEW.seq > (SELECT last_value FROM ledger.record_seq) THEN
        RAISE EXCEPTION 'eprescrire: a record''s sequence number comes from ledger.record_seq'
            USING ERRCODE = '22023';
    END IF;
    UPDATE ledger.chain_heads h SET pos = NEW.pos, seq = NEW.seq, hash = NEW.hash
        WHERE h.prescription_id = NEW.prescription_id;

    SELECT * INTO p FROM ledger.prescriptions x WHERE x.prescription_id = NEW.prescription_id;
    IF NEW.kind = 'prescription' THEN
        IF NOT admin AND site.kind NOT IN ('pharmacy', 'prescriber') THEN
            RAISE EXCEPTION 'eprescrire: % may not record prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
        payload := ledger.jws_payload(b ->> 'jws');
        IF payload ->> 'id' IS DISTINCT FROM NEW.prescription_id THEN
            RAISE EXCEPTION 'eprescrire: the signed prescription is not %', NEW.prescription_id
                USING ERRCODE = '22023';
        END IF;
        IF NOT admin AND site.kind = 'prescriber'
           AND payload -> 'prescriber' ->> 'rpps' IS DISTINCT FROM site.rpps THEN
            RAISE EXCEPTION 'eprescrire: % records only their own prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
        INSERT INTO ledger.prescriptions VALUES (
            NEW.prescription_id,
            payload -> 'prescriber' ->> 'rpps',
            b ->> 'kid',
            ARRAY(SELECT (l ->> 'quantity')::integer * (coalesce((l ->> 'renewals')::integer, 0) + 1)
                  FROM jsonb_array_elements(payload -> 'lines') WITH ORDINALITY AS t(l, n)
                  ORDER BY n),
            coalesce((payload ->> 'share_opposition')::boolean, false));
    ELSIF NEW.kind = 'dispensing' THEN
        IF NOT admin THEN
            IF site.kind <> 'pharmacy' THEN
                RAISE EXCEPTION 'eprescrire: only a pharmacy records dispensings'
                    USING ERRCODE = '42501';
            END IF;
            IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacist %)',
                    session_user, site.rpps USING ERRCODE = '42501';
            END IF;
            IF site.finess IS NOT NULL AND b ->> 'pharmacy' IS DISTINCT FROM site.finess THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacy %)',
                    session_user, site.finess USING ERRCODE = '42501';
            END IF;
        END IF;
        IF p.prescription_id IS NULL THEN
            RAISE EXCEPTION 'eprescrire: a dispensing of an unrecorded prescription'
                USING ERRCODE = '23503';
        END IF;
        NEW.line := (b ->> 'line')::integer;
        NEW.quantity := (b ->> 'quantity')::integer;
        IF NEW.line IS NULL OR NEW.quantity IS NULL OR NEW.quantity < 1 THEN
            RAISE EXCEPTION 'eprescrire: a dispensing names a line and a positive quantity'
                USING ERRCODE = '23514';
        END IF;
    ELSIF NEW.kind = 'consent' THEN
        IF NOT admin THEN
            IF site.kind <> 'pharmacy' THEN
                RAISE EXCEPTION 'eprescrire: only a pharmacy records the patient''s consent'
                    USING ERRCODE = '42501';
            END IF;
            IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records consent only in its own name', session_user
                    USING ERRCODE = '42501';
            END IF;
        END IF;
    ELSIF NEW.kind = 'cancellation' THEN
        IF NOT admin AND site.kind = 'prescriber' AND p.prescription_id IS NOT NULL
           AND p.prescriber_rpps IS DISTINCT FROM site.rpps THEN
            RAISE EXCEPTION 'eprescrire: % cancels only their own prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER records_before_insert BEFORE INSERT ON ledger.records
    FOR EACH ROW EXECUTE FUNCTION ledger.records_before_insert();

CREATE FUNCTION ledger.append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'eprescrire: ledger records are append-only (% refused)', TG_OP
        USING ERRCODE = '42501';
END $$;

CREATE TRIGGER records_no_update BEFORE UPDATE OR DELETE ON ledger.records
    FOR EACH ROW EXECUTE FUNCTION ledger.append_only();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON ledger.records
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.append_only();
CREATE TRIGGER prescriptions_no_update BEFORE UPDATE OR DELETE ON ledger.prescriptions
    FOR EACH ROW EXECUTE FUNCTION ledger.append_only();
CREATE TRIGGER prescriptions_no_truncate BEFORE TRUNCATE ON ledger.prescriptions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.append_only();
CREATE TRIGGER imported_no_update BEFORE UPDATE OR DELETE ON ledger.imported_records
    FOR EACH ROW EXECUTE FUNCTION ledger.append_only();

-- At commit: no dispensing beyond a line's prescribed total, none after a cancellation.
CREATE FUNCTION ledger.dispensing_allowed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    p ledger.prescriptions;
    given bigint;
BEGIN
    SELECT * INTO p FROM ledger.prescriptions x WHERE x.prescription_id = NEW.prescription_id;
    IF NEW.line < 1 OR NEW.line > coalesce(array_length(p.totals, 1), 0) THEN
        RAISE EXCEPTION 'eprescrire: prescription % has no line %', NEW.prescription_id, NEW.line
            USING ERRCODE = '23514';
    END IF;
    SELECT sum(r.quantity) INTO given FROM ledger.records r
        WHERE r.prescription_id = NEW.prescription_id AND r.kind = 'dispensing'
          AND r.line = NEW.line;
    IF given > p.totals[NEW.line] THEN
        RAISE EXCEPTION 'eprescrire: line % of prescription % would be dispensed % times, % prescribed',
            NEW.line, NEW.prescription_id, given, p.totals[NEW.line] USING ERRCODE = '23514';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger.records c
               WHERE c.prescription_id = NEW.prescription_id AND c.kind = 'cancellation'
                 AND c.pos < NEW.pos AND c.body::jsonb ->> 'kid' = p.kid) THEN
        RAISE EXCEPTION 'eprescrire: prescription % was cancelled before this dispensing',
            NEW.prescription_id USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER records_dispensing_allowed AFTER INSERT ON ledger.records
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.kind = 'dispensing')
    EXECUTE FUNCTION ledger.dispensing_allowed();

-- ---------------------------------------------------------------------------------------------
-- Privileges: sites reach the data only through the functions above and INSERT.

REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledger FROM PUBLIC;
GRANT USAGE ON SCHEMA ledger TO eprescrire_pharmacy, eprescrire_prescriber, eprescrire_auditor,
    eprescrire_admin;
GRANT ALL ON SCHEMA ledger TO eprescrire_admin;
GRANT SELECT ON ledger.meta, ledger.schema_migrations TO eprescrire_pharmacy,
    eprescrire_prescriber, eprescrire_auditor;
GRANT INSERT ON ledger.records TO eprescrire_pharmacy, eprescrire_prescriber;
GRANT USAGE ON SEQUENCE ledger.record_seq TO eprescrire_pharmacy, eprescrire_prescriber;
GRANT EXECUTE ON FUNCTION ledger.begin_update(text), ledger.history(text),
    ledger.request_done(text, uuid), ledger.genesis(text), ledger.is_admin()
    TO eprescrire_pharmacy, eprescrire_prescriber, eprescrire_auditor;
GRANT SELECT ON ledger.records, ledger.chain_heads, ledger.checkpoints,
    ledger.checkpoint_leaves, ledger.sites, ledger.imported_ledgers, ledger.imported_records
    TO eprescrire_auditor;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA ledger TO eprescrire_admin;
GRANT UPDATE ON ledger.chain_heads TO eprescrire_admin;
GRANT UPDATE, DELETE ON ledger.sites TO eprescrire_admin;
GRANT ALL ON SEQUENCE ledger.record_seq TO eprescrire_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ledger TO eprescrire_admin;
"""
)

# A write in two round trips: ``ledger.open_write`` (the chain head locked, a retried request
# recognised, sequence numbers reserved) with ``ledger.history`` in one pipeline; then
# ``ledger.append`` (the records in one INSERT, the row trigger checking each, then the
# read-back: the chain head moved to the last record appended and this request's records are
# exactly those) with COMMIT in another. Sites keep INSERT on ledger.records: whatever path a
# record takes, the same triggers apply, and the actor is always the session's.
_V2 = r"""
-- SQL-language helpers are planned again at every call (they are not inlined: SECURITY
-- DEFINER, SET search_path); PL/pgSQL keeps their plans for the session.
CREATE OR REPLACE FUNCTION ledger.genesis(pid text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
BEGIN
    RETURN encode(sha256(convert_to('eprescrire-ledger/1', 'UTF8') || '\x00'::bytea
        || convert_to((SELECT value FROM ledger.meta WHERE key = 'ledger_id') || '/' || pid,
                      'UTF8')), 'hex');
END $$;

CREATE OR REPLACE FUNCTION ledger.is_admin() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
    RETURN pg_has_role(session_user, 'eprescrire_admin', 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user);
END $$;

-- The row trigger, lighter: the chain head checked and moved in one UPDATE, the administrator
-- check and the prescription looked up only when needed; the JWS payload decoded without
-- translate()/rpad() (most of its cost).
CREATE OR REPLACE FUNCTION ledger.jws_payload(token text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
DECLARE
    part text := replace(replace(split_part(token, '.', 2), '-', '+'), '_', '/');
BEGIN
    RETURN convert_from(decode(part || repeat('=', (4 - length(part) % 4) % 4), 'base64'),
                        'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'eprescrire: the prescription record does not carry a readable JWS'
        USING ERRCODE = '22023';
END $$;

CREATE OR REPLACE FUNCTION ledger.records_before_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    site ledger.sites;
    admin boolean := false;
    head_pos integer;
    b jsonb;
    payload jsonb;
    p ledger.prescriptions;
BEGIN
    NEW.actor := session_user;
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        admin := ledger.is_admin();
        IF NOT admin THEN
            RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
                USING ERRCODE = '42501';
        END IF;
    END IF;
    IF NOT admin AND site.kind NOT IN ('pharmacy', 'prescriber') THEN
        RAISE EXCEPTION 'eprescrire: a % site does not write records', site.kind
            USING ERRCODE = '42501';
    END IF;
    BEGIN
        b := NEW.body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END;
    IF jsonb_typeof(b) <> 'object' THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END IF;

    IF NEW.seq IS NULL OR NEW.seq < 1 OR NEW.seq > (SELECT last_value FROM ledger.record_seq) THEN
        RAISE EXCEPTION 'eprescrire: a record''s sequence number comes from ledger.record_seq'
            USING ERRCODE = '22023';
    END IF;
    -- The chain: exactly the next position after the head, chained to it (the head moved in
    -- the same statement that checks it, its row locked until COMMIT).
    UPDATE ledger.chain_heads h SET pos = NEW.pos, seq = NEW.seq, hash = NEW.hash
        WHERE h.prescription_id = NEW.prescription_id AND h.pos = NEW.pos - 1
          AND h.hash = NEW.prev_hash;
    IF NOT FOUND THEN
        SELECT h.pos INTO head_pos FROM ledger.chain_heads h
            WHERE h.prescription_id = NEW.prescription_id FOR UPDATE;
        IF NOT FOUND AND NEW.pos = 1 AND NEW.prev_hash = ledger.genesis(NEW.prescription_id) THEN
            INSERT INTO ledger.chain_heads VALUES (NEW.prescription_id, 1, NEW.seq, NEW.hash);
        ELSE
            RAISE EXCEPTION 'eprescrire: record % of prescription % does not follow its chain head (%)',
                NEW.pos, NEW.prescription_id, coalesce(head_pos, 0) USING ERRCODE = '40001';
        END IF;
    END IF;

    IF NEW.kind IN ('dispensing', 'cancellation') THEN
        SELECT * INTO p FROM ledger.prescriptions x WHERE x.prescription_id = NEW.prescription_id;
    END IF;
    IF NEW.kind = 'prescription' THEN
        IF NOT admin AND site.kind NOT IN ('pharmacy', 'prescriber') THEN
            RAISE EXCEPTION 'eprescrire: % may not record prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
        payload := ledger.jws_payload(b ->> 'jws');
        IF payload ->> 'id' IS DISTINCT FROM NEW.prescription_id THEN
            RAISE EXCEPTION 'eprescrire: the signed prescription is not %', NEW.prescription_id
                USING ERRCODE = '22023';
        END IF;
        IF NOT admin AND site.kind = 'prescriber'
           AND payload -> 'prescriber' ->> 'rpps' IS DISTINCT FROM site.rpps THEN
            RAISE EXCEPTION 'eprescrire: % records only their own prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
        INSERT INTO ledger.prescriptions VALUES (
            NEW.prescription_id,
            payload -> 'prescriber' ->> 'rpps',
            b ->> 'kid',
            ARRAY(SELECT (l ->> 'quantity')::integer * (coalesce((l ->> 'renewals')::integer, 0) + 1)
                  FROM jsonb_array_elements(payload -> 'lines') WITH ORDINALITY AS t(l, n)
                  ORDER BY n),
            coalesce((payload ->> 'share_opposition')::boolean, false));
    ELSIF NEW.kind = 'dispensing' THEN
        IF NOT admin THEN
            IF site.kind <> 'pharmacy' THEN
                RAISE EXCEPTION 'eprescrire: only a pharmacy records dispensings'
                    USING ERRCODE = '42501';
            END IF;
            IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacist %)',
                    session_user, site.rpps USING ERRCODE = '42501';
            END IF;
            IF site.finess IS NOT NULL AND b ->> 'pharmacy' IS DISTINCT FROM site.finess THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacy %)',
                    session_user, site.finess USING ERRCODE = '42501';
            END IF;
        END IF;
        IF p.prescription_id IS NULL THEN
            RAISE EXCEPTION 'eprescrire: a dispensing of an unrecorded prescription'
                USING ERRCODE = '23503';
        END IF;
        NEW.line := (b ->> 'line')::integer;
        NEW.quantity := (b ->> 'quantity')::integer;
        IF NEW.line IS NULL OR NEW.quantity IS NULL OR NEW.quantity < 1 THEN
            RAISE EXCEPTION 'eprescrire: a dispensing names a line and a positive quantity'
                USING ERRCODE = '23514';
        END IF;
    ELSIF NEW.kind = 'consent' THEN
        IF NOT admin THEN
            IF site.kind <> 'pharmacy' THEN
                RAISE EXCEPTION 'eprescrire: only a pharmacy records the patient''s consent'
                    USING ERRCODE = '42501';
            END IF;
            IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records consent only in its own name', session_user
                    USING ERRCODE = '42501';
            END IF;
        END IF;
    ELSIF NEW.kind = 'cancellation' THEN
        IF NOT admin AND site.kind = 'prescriber' AND p.prescription_id IS NOT NULL
           AND p.prescriber_rpps IS DISTINCT FROM site.rpps THEN
            RAISE EXCEPTION 'eprescrire: % cancels only their own prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- The chain head locked (created if new), whether request ``rid`` was already committed,
-- ``reserve`` sequence numbers, and the prescription's history as the session may see it
-- (ledger.history): one row per record, the head's columns on each, or one row of head
-- columns alone when there is no record (or when the request was already committed).
CREATE FUNCTION ledger.open_write(pid text, rid uuid, reserve integer)
RETURNS TABLE (head_pos integer, head_hash text, done boolean, seqs bigint[], seq bigint,
               kind text, prescription_id text, recorded_at text, body text, prev_hash text,
               hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    h_pos integer;
    h_hash text;
    h_done boolean;
    h_seqs bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger.sites s WHERE s.role_name = session_user
                   AND s.kind IN ('pharmacy', 'prescriber'))
       AND NOT ledger.is_admin() THEN
        RAISE EXCEPTION 'eprescrire: % may not write to this ledger', session_user
            USING ERRCODE = '42501';
    END IF;
    -- A head this transaction creates is its own until COMMIT (a concurrent writer of the same
    -- prescription waits on the insertion); an existing one is locked. (Most prescriptions
    -- are dispensed once: creating first is the common case's one statement.)
    INSERT INTO ledger.chain_heads AS h VALUES (pid, 0, NULL, ledger.genesis(pid))
        ON CONFLICT ON CONSTRAINT chain_heads_pkey DO NOTHING
        RETURNING h.pos, h.hash INTO h_pos, h_hash;
    IF NOT FOUND THEN
        SELECT h.pos, h.hash INTO h_pos, h_hash FROM ledger.chain_heads h
            WHERE h.prescription_id = pid FOR UPDATE;
    END IF;
    h_done := rid IS NOT NULL AND h_pos > 0
        AND EXISTS (SELECT 1 FROM ledger.records r
                    WHERE r.prescription_id = pid AND r.request_id = rid
                      AND (r.actor = session_user OR ledger.is_admin()));
    -- Each SQL statement of a PL/pgSQL function costs far more than an expression: the usual
    -- reservation (two numbers) is one.
    IF reserve = 2 THEN
        h_seqs := ARRAY[nextval('ledger.record_seq'), nextval('ledger.record_seq')];
    ELSE
        h_seqs := ARRAY(SELECT nextval('ledger.record_seq')
                        FROM generate_series(1, least(greatest(reserve, 0), 64)));
    END IF;
    IF NOT h_done AND h_pos > 0 THEN
        RETURN QUERY SELECT h_pos, h_hash, h_done, h_seqs, r.seq, r.kind, r.prescription_id,
            r.recorded_at, r.body, r.prev_hash, r.hash FROM ledger.history(pid) r;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT h_pos, h_hash, h_done, h_seqs, NULL::bigint, NULL::text, NULL::text,
        NULL::text, NULL::text, NULL::text, NULL::text;
END $$;

CREATE FUNCTION ledger.append(pid text, rid uuid, pos0 integer, head0 text, seqs bigint[],
    kinds text[], recorded_at text, bodies text[], hashes text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    n integer := cardinality(hashes);
    head_pos integer;
    head_hash text;
    got text[];
BEGIN
    IF n IS NULL OR n < 1 OR cardinality(seqs) <> n OR cardinality(kinds) <> n
       OR cardinality(bodies) <> n THEN
        RAISE EXCEPTION 'eprescrire: append takes as many sequence numbers, kinds and bodies as hashes'
            USING ERRCODE = '22023';
    END IF;
    -- In order: the row trigger checks each record against the chain head and moves it.
    INSERT INTO ledger.records (prescription_id, pos, seq, kind, recorded_at, body, prev_hash,
                                hash, request_id)
        SELECT pid, pos0 + i, seqs[i], kinds[i], recorded_at, bodies[i],
               CASE WHEN i = 1 THEN head0 ELSE hashes[i - 1] END, hashes[i], rid
        FROM generate_series(1, n) AS i ORDER BY i;
    -- The read-back: what a foreign trigger or rule dropping or rewriting records leaves.
    SELECT h.pos, h.hash,
           (SELECT coalesce(array_agg(r.hash ORDER BY r.pos), ARRAY[]::text[])
            FROM ledger.records r WHERE r.prescription_id = pid AND r.request_id = rid)
        INTO head_pos, head_hash, got
        FROM ledger.chain_heads h WHERE h.prescription_id = pid;
    IF head_pos IS DISTINCT FROM pos0 + n OR head_hash IS DISTINCT FROM hashes[n]
       OR got IS DISTINCT FROM hashes THEN
        RAISE EXCEPTION 'eprescrire: the ledger did not keep the % record(s) just appended to prescription % (found %, chain head at position % instead of %): nothing was recorded; run `eprescrire ledger verify`',
            n, pid, cardinality(got), head_pos, pos0 + n USING ERRCODE = 'XX001';
    END IF;
    RETURN head_pos;
END $$;

REVOKE ALL ON FUNCTION ledger.open_write(text, uuid, integer),
    ledger.append(text, uuid, integer, text, bigint[], text[], text, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.open_write(text, uuid, integer),
    ledger.append(text, uuid, integer, text, bigint[], text[], text, text[], text[])
    TO eprescrire_pharmacy, eprescrire_prescriber, eprescrire_admin;
"""

_V3 = r"""
-- Prescriptions keyed by identifier AND signer (the kid of the key that signed them): a
-- prescription signed by another key under a known identifier is a lane of its own, whose
-- dispensings never count against the genuine one's. Rows recorded before this version (one
-- per identifier) stay, as their identifier's first signer.
ALTER TABLE ledger.prescriptions DROP CONSTRAINT prescriptions_pkey;
ALTER TABLE ledger.prescriptions ADD CONSTRAINT prescriptions_pkey
    PRIMARY KEY (prescription_id, kid);
ALTER TABLE ledger.prescriptions ADD COLUMN first_signer boolean NOT NULL DEFAULT true;
ALTER TABLE ledger.prescriptions ALTER COLUMN first_signer DROP DEFAULT;
-- A record's lane (derived by the row trigger, like line and quantity): the kid of the
-- prescription it is about; NULL for a consent about every lane, and for records written
-- before this version (then: the first signer's, a cancellation's own kid).
ALTER TABLE ledger.records ADD COLUMN lane text;

-- The lane of the identifier's first recorded signer.
CREATE FUNCTION ledger.first_lane(pid text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
BEGIN
    RETURN (SELECT x.kid FROM ledger.prescriptions x
            WHERE x.prescription_id = pid AND x.first_signer);
END $$;

CREATE OR REPLACE FUNCTION ledger.records_before_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    site ledger.sites;
    admin boolean := false;
    head_pos integer;
    b jsonb;
    payload jsonb;
    p ledger.prescriptions;
BEGIN
    NEW.actor := session_user;
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        admin := ledger.is_admin();
        IF NOT admin THEN
            RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
                USING ERRCODE = '42501';
        END IF;
    END IF;
    IF NOT admin AND site.kind NOT IN ('pharmacy', 'prescriber') THEN
        RAISE EXCEPTION 'eprescrire: a % site does not write records', site.kind
            USING ERRCODE = '42501';
    END IF;
    BEGIN
        b := NEW.body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END;
    IF jsonb_typeof(b) <> 'object' THEN
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END IF;

    IF NEW.seq IS NULL OR NEW.seq < 1
       OR NEW.seq > coalesce(pg_sequence_last_value('ledger.record_seq'), 0) THEN
        RAISE EXCEPTION 'eprescrire: a record''s sequence number comes from ledger.record_seq'
            USING ERRCODE = '22023';
    END IF;
    -- The chain: exactly the next position after the head, chained to it (the head moved in
    -- the same statement that checks it, its row locked until COMMIT).
    UPDATE ledger.chain_heads h SET pos = NEW.pos, seq = NEW.seq, hash = NEW.hash
        WHERE h.prescription_id = NEW.prescription_id AND h.pos = NEW.pos - 1
          AND h.hash = NEW.prev_hash;
    IF NOT FOUND THEN
        SELECT h.pos INTO head_pos FROM ledger.chain_heads h
            WHERE h.prescription_id = NEW.prescription_id FOR UPDATE;
        IF NOT FOUND AND NEW.pos = 1 AND NEW.prev_hash = ledger.genesis(NEW.prescription_id) THEN
            INSERT INTO ledger.chain_heads VALUES (NEW.prescription_id, 1, NEW.seq, NEW.hash);
        ELSE
            RAISE EXCEPTION 'eprescrire: record % of prescription % does not follow its chain head (%)',
                NEW.pos, NEW.prescription_id, coalesce(head_pos, 0) USING ERRCODE = '40001';
        END IF;
    END IF;

    IF NEW.kind = 'prescription' THEN
        payload := ledger.jws_payload(b ->> 'jws');
        IF payload ->> 'id' IS DISTINCT FROM NEW.prescription_id THEN
            RAISE EXCEPTION 'eprescrire: the signed prescription is not %', NEW.prescription_id
                USING ERRCODE = '22023';
        END IF;
        IF NOT admin AND site.kind = 'prescriber'
           AND payload -> 'prescriber' ->> 'rpps' IS DISTINCT FROM site.rpps THEN
            RAISE EXCEPTION 'eprescrire: % records only their own prescriptions', session_user
                USING ERRCODE = '42501';
        END IF;
        NEW.lane := b ->> 'kid';
        IF NEW.lane IS NULL THEN
            RAISE EXCEPTION 'eprescrire: a prescription record names the key that signed it (kid)'
                USING ERRCODE = '22023';
        END IF;
        INSERT INTO ledger.prescriptions (prescription_id, prescriber_rpps, kid, totals,
                                          share_opposition, first_signer)
        VALUES (
            NEW.prescription_id,
            payload -> 'prescriber' ->> 'rpps',
            NEW.lane,
            ARRAY(SELECT (l ->> 'quantity')::integer * (coalesce((l ->> 'renewals')::integer, 0) + 1)
                  FROM jsonb_array_elements(payload -> 'lines') WITH ORDINALITY AS t(l, n)
                  ORDER BY n),
            coalesce((payload ->> 'share_opposition')::boolean, false),
            NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                        WHERE x.prescription_id = NEW.prescription_id))
        ON CONFLICT ON CONSTRAINT prescriptions_pkey DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'eprescrire: prescription % signed by % is already recorded',
                NEW.prescription_id, NEW.lane USING ERRCODE = '23514';
        END IF;
    ELSIF NEW.kind = 'dispensing' THEN
        IF NOT admin THEN
            IF site.kind <> 'pharmacy' THEN
                RAISE EXCEPTION 'eprescrire: only a pharmacy records dispensings'
                    USING ERRCODE = '42501';
            END IF;
            IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacist %)',
                    session_user, site.rpps USING ERRCODE = '42501';
            END IF;
            IF site.finess IS NOT NULL AND b ->> 'pharmacy' IS DISTINCT FROM site.finess THEN
                RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacy %)',
                    session_user, site.finess USING ERRCODE = '42501';
            END IF;
        END IF;
        -- The lane it names (a dispensing without one: the first signer's).
        NEW.lane := coalesce(b ->> 'lane', ledger.first_lane(NEW.prescription_id));
        IF NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                       WHERE x.prescription_id = NEW.prescription_id AND x.kid = NEW.lane) THEN
            RAISE EXCEPTION 'eprescrire: a dispensing of an unrecorded prescription'
                USING ERRCODE = '23503';
        END IF;
        NEW.line := (b ->> 'line')::integer;
        NEW.quantity := (b ->> 'quantity')::integer;
        IF NEW.line IS NULL OR NEW.quantity IS NULL OR NEW.quantity < 1 THEN
            RAISE EXCEPTION 'eprescrire: a dispensing names a line and a positive quantity'
                USING ERRCODE = '23514';
        END IF;
    ELSIF NEW.kind = 'consent' THEN
        NEW.lane := b ->> 'lane';  -- NULL: about every lane of the identifier
        IF NOT admin THEN
            IF site.kind = 'pharmacy' THEN
                IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % records consent only in its own name',
                        session_user USING ERRCODE = '42501';
                END IF;
            ELSE
                -- The prescriber: in their own name, about their own prescription only.
                IF b ->> 'actor' IS DISTINCT FROM 'prescriber'
                   OR b ->> 'rpps' IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % records consent only in their own name (prescriber %)',
                        session_user, site.rpps USING ERRCODE = '42501';
                END IF;
                IF NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                               WHERE x.prescription_id = NEW.prescription_id
                                 AND (NEW.lane IS NULL OR x.kid = NEW.lane))
                   OR EXISTS (SELECT 1 FROM ledger.prescriptions x
                              WHERE x.prescription_id = NEW.prescription_id
                                AND (NEW.lane IS NULL OR x.kid = NEW.lane)
                                AND x.prescriber_rpps IS DISTINCT FROM site.rpps) THEN
                    RAISE EXCEPTION 'eprescrire: % records consent only for their own prescriptions',
                        session_user USING ERRCODE = '42501';
                END IF;
            END IF;
        END IF;
    ELSIF NEW.kind = 'cancellation' THEN
        NEW.lane := b ->> 'kid';
        IF NOT admin AND site.kind = 'prescriber' THEN
            SELECT * INTO p FROM ledger.prescriptions x
                WHERE x.prescription_id = NEW.prescription_id
                  AND x.kid = coalesce(NEW.lane, ledger.first_lane(NEW.prescription_id));
            IF FOUND AND p.prescriber_rpps IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % cancels only their own prescriptions', session_user
                    USING ERRCODE = '42501';
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- At commit, per lane: no dispensing beyond a line's prescribed total, none after the lane's
-- cancellation.
CREATE OR REPLACE FUNCTION ledger.dispensing_allowed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    p ledger.prescriptions;
    given bigint;
BEGIN
    SELECT * INTO p FROM ledger.prescriptions x
        WHERE x.prescription_id = NEW.prescription_id
          AND x.kid = coalesce(NEW.lane, ledger.first_lane(NEW.prescription_id));
    IF NEW.line < 1 OR NEW.line > coalesce(array_length(p.totals, 1), 0) THEN
        RAISE EXCEPTION 'eprescrire: prescription % has no line %', NEW.prescription_id, NEW.line
            USING ERRCODE = '23514';
    END IF;
    SELECT sum(r.quantity) INTO given FROM ledger.records r
        WHERE r.prescription_id = NEW.prescription_id AND r.kind = 'dispensing'
          AND r.line = NEW.line
          AND (r.lane = p.kid OR (r.lane IS NULL AND p.first_signer));
    IF given > p.totals[NEW.line] THEN
        RAISE EXCEPTION 'eprescrire: line % of prescription % would be dispensed % times, % prescribed',
            NEW.line, NEW.prescription_id, given, p.totals[NEW.line] USING ERRCODE = '23514';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger.records c
               WHERE c.prescription_id = NEW.prescription_id AND c.kind = 'cancellation'
                 AND c.pos < NEW.pos AND c.body::jsonb ->> 'kid' = p.kid) THEN
        RAISE EXCEPTION 'eprescrire: prescription % was cancelled before this dispensing',
            NEW.prescription_id USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;

-- Reading: a prescriber sees the lanes of their own prescriptions; another signer's
-- prescription under the same identifier shows only as its kid (the conflict is shown to
-- both, its content to neither); a lane's dispensings are withheld when its patient opposed.
CREATE OR REPLACE FUNCTION ledger.history(pid text)
RETURNS TABLE (seq bigint, kind text, prescription_id text, recorded_at text, body text,
               prev_hash text, hash text, pos integer, request_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ledger AS $$
DECLARE
    site ledger.sites;
    first text;
BEGIN
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        IF NOT ledger.is_admin() THEN
            RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
                USING ERRCODE = '42501';
        END IF;
    END IF;
    IF site.role_name IS NULL OR site.kind IN ('pharmacy', 'auditor') THEN
        RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
            r.prev_hash, r.hash, r.pos, r.request_id
            FROM ledger.records r WHERE r.prescription_id = pid ORDER BY r.pos;
        RETURN;
    END IF;
    first := ledger.first_lane(pid);
    IF first IS NULL THEN
        -- Unknown here: only what this prescriber recorded (a cancellation made in advance).
        RETURN QUERY SELECT r.seq, r.kind, r.prescription_id, r.recorded_at, r.body,
            r.prev_hash, r.hash, r.pos, r.request_id
            FROM ledger.records r
            WHERE r.prescription_id = pid AND r.actor = session_user ORDER BY r.pos;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                   WHERE x.prescription_id = pid AND x.prescriber_rpps = site.rpps) THEN
        RAISE EXCEPTION 'eprescrire: prescription % is not one of %''s', pid, session_user
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    WITH mine AS (
        SELECT x.kid,
               coalesce((SELECT (c.body::jsonb ->> 'share_opposition')::boolean
                         FROM ledger.records c
                         WHERE c.prescription_id = pid AND c.kind = 'consent'
                           AND (c.lane IS NULL OR c.lane = x.kid)
                         ORDER BY c.pos DESC LIMIT 1), x.share_opposition) AS opposed
        FROM ledger.prescriptions x
        WHERE x.prescription_id = pid AND x.prescriber_rpps = site.rpps
    ), placed AS (
        SELECT r.*, coalesce(r.lane, CASE r.kind WHEN 'prescription' THEN first
                                                 WHEN 'dispensing' THEN first
                                                 WHEN 'cancellation' THEN r.body::jsonb ->> 'kid'
                                     END) AS in_lane
        FROM ledger.records r WHERE r.prescription_id = pid
    )
    SELECT r.seq, r.kind, r.prescription_id, r.recorded_at,
           CASE WHEN r.kind = 'prescription' AND m.kid IS NULL
                THEN jsonb_build_object('kid', r.in_lane,
                                        'withheld', 'another signer''s prescription')::text
                ELSE r.body END,
           r.prev_hash, r.hash, r.pos, r.request_id
    FROM placed r LEFT JOIN mine m ON m.kid = r.in_lane
    WHERE r.kind = 'prescription'
       OR (r.kind = 'consent' AND (r.lane IS NULL OR m.kid IS NOT NULL))
       OR (r.kind = 'dispensing' AND m.kid IS NOT NULL AND NOT m.opposed)
       OR (r.kind = 'cancellation' AND (m.kid IS NOT NULL OR r.actor = session_user))
    ORDER BY r.pos;
END $$;

REVOKE ALL ON FUNCTION ledger.first_lane(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.first_lane(text) TO eprescrire_admin;
"""

# A write's checks in ``ledger.append`` alone (version 4). Sites lose INSERT on ledger.records:
# the only way a record gets in, for every role but the owner and the superuser (who can switch
# any trigger off anyway), is ``ledger.append`` (SECURITY DEFINER), which checks every record
# itself; the row trigger and the deferred totals trigger are gone. The chain head is checked
# and moved in one UPDATE for all the records of a call, and that UPDATE is the lock: the totals
# and cancellations are then read in a fresh snapshot that sees every committed record of the
# prescription, and no other writer of the prescription can commit before this one (what the
# deferred trigger gave). A first dispensing reads nothing back from ledger.records but the
# read-back.
_V4 = r"""
DROP TRIGGER records_before_insert ON ledger.records;
DROP TRIGGER records_dispensing_allowed ON ledger.records;
DROP FUNCTION ledger.records_before_insert();
DROP FUNCTION ledger.dispensing_allowed();
REVOKE INSERT ON ledger.records FROM eprescrire_pharmacy, eprescrire_prescriber, eprescrire_admin;
-- The same hash checks, ten times cheaper (evaluated for every record written): the regular
-- expression under the "C" collation, not the database's.
ALTER TABLE ledger.records
    DROP CONSTRAINT records_prev_hash_check,
    DROP CONSTRAINT records_hash_check,
    ADD CONSTRAINT records_prev_hash_check
        CHECK (octet_length(prev_hash) = 64 AND prev_hash COLLATE "C" ~ '^[0-9a-f]+$'),
    ADD CONSTRAINT records_hash_check
        CHECK (octet_length(hash) = 64 AND hash COLLATE "C" ~ '^[0-9a-f]+$');
-- A prescription record's body (about 3.4 KB) is compressed when stored: with lz4, 30 µs a
-- body, against 70 µs with the default pglz. Only on a server built with lz4 (most packaged
-- ones are); one built without it keeps pglz (the same data, read back the same).
DO $lz4$
BEGIN
    ALTER TABLE ledger.records ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $lz4$;

-- The statements of open_write and append are planned once per session (generic plans): with
-- the default plan_cache_mode, those over generate_series or arrays keep a custom plan, made
-- again at every call (the planner expects fewer rows from a custom plan).
--
-- open_write as version 2's, without a call to ledger.genesis (its own search_path and query)
-- nor the final query when there is no history.
CREATE OR REPLACE FUNCTION ledger.open_write(pid text, rid uuid, reserve integer)
RETURNS TABLE (head_pos integer, head_hash text, done boolean, seqs bigint[], seq bigint,
               kind text, prescription_id text, recorded_at text, body text, prev_hash text,
               hash text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger
    SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    h_pos integer;
    h_hash text;
    h_done boolean;
    h_seqs bigint[];
BEGIN
    -- A head this transaction creates is its own until COMMIT (a concurrent writer of the same
    -- prescription waits on the insertion); an existing one is locked. Its genesis hash as
    -- ledger.genesis computes it. The usual case, a site writing about a new prescription, is
    -- this one statement.
    INSERT INTO ledger.chain_heads AS h
        SELECT pid, 0, NULL,
               encode(sha256(convert_to('eprescrire-ledger/1', 'UTF8') || '\x00'::bytea
                             || convert_to(m.value || '/' || pid, 'UTF8')), 'hex')
        FROM ledger.meta m
        WHERE m.key = 'ledger_id'
          AND EXISTS (SELECT 1 FROM ledger.sites s WHERE s.role_name = session_user
                      AND s.kind IN ('pharmacy', 'prescriber'))
        ON CONFLICT ON CONSTRAINT chain_heads_pkey DO NOTHING
        RETURNING h.pos, h.hash INTO h_pos, h_hash;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM ledger.sites s WHERE s.role_name = session_user
                       AND s.kind IN ('pharmacy', 'prescriber')) THEN
            IF NOT ledger.is_admin() THEN
                RAISE EXCEPTION 'eprescrire: % may not write to this ledger', session_user
                    USING ERRCODE = '42501';
            END IF;
            INSERT INTO ledger.chain_heads AS h
                SELECT pid, 0, NULL,
                       encode(sha256(convert_to('eprescrire-ledger/1', 'UTF8') || '\x00'::bytea
                                     || convert_to(m.value || '/' || pid, 'UTF8')), 'hex')
                FROM ledger.meta m WHERE m.key = 'ledger_id'
                ON CONFLICT ON CONSTRAINT chain_heads_pkey DO NOTHING
                RETURNING h.pos, h.hash INTO h_pos, h_hash;
        END IF;
        IF h_pos IS NULL THEN
            SELECT h.pos, h.hash INTO h_pos, h_hash FROM ledger.chain_heads h
                WHERE h.prescription_id = pid FOR UPDATE;
        END IF;
    END IF;
    -- (A statement runs the executor even when its condition is false: only when needed.)
    h_done := false;
    IF rid IS NOT NULL AND h_pos > 0 THEN
        h_done := EXISTS (SELECT 1 FROM ledger.records r
                          WHERE r.prescription_id = pid AND r.request_id = rid
                            AND (r.actor = session_user OR ledger.is_admin()));
    END IF;
    IF reserve = 2 THEN
        h_seqs := ARRAY[nextval('ledger.record_seq'), nextval('ledger.record_seq')];
    ELSE
        h_seqs := ARRAY(SELECT nextval('ledger.record_seq')
                        FROM generate_series(1, least(greatest(reserve, 0), 64)));
    END IF;
    IF NOT h_done AND h_pos > 0 THEN
        RETURN QUERY SELECT h_pos, h_hash, h_done, h_seqs, r.seq, r.kind, r.prescription_id,
            r.recorded_at, r.body, r.prev_hash, r.hash FROM ledger.history(pid) r;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    head_pos := h_pos;
    head_hash := h_hash;
    done := h_done;
    seqs := h_seqs;
    RETURN NEXT;
END $$;

-- Append records to a prescription's chain, as the session: every rule a record is subject to
-- (the session's identity and what its site may record, the chain, the sequence numbers, the
-- prescribed totals and cancellations per lane, the derived columns), then the records in one
-- INSERT and the read-back (the chain head at the last record, this request's records exactly
-- those: what a foreign trigger or rule dropping or rewriting records leaves).
CREATE OR REPLACE FUNCTION ledger.append(pid text, rid uuid, pos0 integer, head0 text,
    seqs bigint[], kinds text[], recorded_at text, bodies text[], hashes text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger
    SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    n integer := cardinality(hashes);
    site ledger.sites;
    admin boolean := false;
    top bigint;
    bs jsonb[];
    payloads jsonb[];
    b jsonb;
    payload jsonb;
    part text;
    p_rpps text;
    stage text;
    lanes text[] := ARRAY[]::text[];
    lines integer[] := ARRAY[]::integer[];
    quantities integer[] := ARRAY[]::integer[];
    lane text;
    d_line integer;
    d_qty integer;
    known_kid text;          -- the prescription recorded by this call (its lane), if any
    known_totals integer[];
    known_first boolean;
    line_totals integer[];
    l jsonb;
    p_kid text;
    p_totals integer[];
    p_first boolean;
    given bigint;
    cancelled boolean;
    head_pos integer;
    head_hash text;
    got text[];
BEGIN
    IF n IS NULL OR n < 1 OR cardinality(seqs) IS DISTINCT FROM n
       OR cardinality(kinds) IS DISTINCT FROM n OR cardinality(bodies) IS DISTINCT FROM n
       OR pid IS NULL OR rid IS NULL OR pos0 IS NULL OR pos0 < 0 OR head0 IS NULL
       OR recorded_at IS NULL THEN
        RAISE EXCEPTION 'eprescrire: append takes a prescription, a request, the chain head and as many sequence numbers, kinds and bodies as hashes'
            USING ERRCODE = '22023';
    END IF;
    -- Who writes.
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        admin := ledger.is_admin();
        IF NOT admin THEN
            RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
                USING ERRCODE = '42501';
        END IF;
    ELSIF site.kind NOT IN ('pharmacy', 'prescriber') THEN
        RAISE EXCEPTION 'eprescrire: a % site does not write records', site.kind
            USING ERRCODE = '42501';
    END IF;
    -- Sequence numbers come from ledger.record_seq.
    top := coalesce(pg_sequence_last_value('ledger.record_seq'::regclass), 0);
    FOR i IN 1 .. n LOOP
        IF seqs[i] IS NULL OR seqs[i] < 1 OR seqs[i] > top THEN
            RAISE EXCEPTION 'eprescrire: a record''s sequence number comes from ledger.record_seq'
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    -- The chain: the records follow the head (the first chained to it, each next one to the
    -- one before, as the INSERT below writes them), and the head moves to the last, in one
    -- statement that locks it until COMMIT (a concurrent writer of the prescription waits, then
    -- finds the head moved and is refused).
    UPDATE ledger.chain_heads h SET pos = pos0 + n, seq = seqs[n], hash = hashes[n]
        WHERE h.prescription_id = pid AND h.pos = pos0 AND h.hash = head0;
    IF NOT FOUND THEN
        SELECT h.pos INTO head_pos FROM ledger.chain_heads h
            WHERE h.prescription_id = pid FOR UPDATE;
        IF NOT FOUND AND pos0 = 0 AND head0 = ledger.genesis(pid) THEN
            INSERT INTO ledger.chain_heads VALUES (pid, n, seqs[n], hashes[n]);
        ELSE
            RAISE EXCEPTION 'eprescrire: record % of prescription % does not follow its chain head (%)',
                pos0 + 1, pid, coalesce(head_pos, 0) USING ERRCODE = '40001';
        END IF;
    END IF;
    -- The bodies (JSON objects) and a prescription's signed payload, parsed once.
    BEGIN
        stage := 'body';
        bs := bodies::jsonb[];
        FOR i IN 1 .. n LOOP
            stage := 'body';
            IF jsonb_typeof(bs[i]) IS DISTINCT FROM 'object' THEN
                RAISE EXCEPTION 'not an object';
            END IF;
            IF kinds[i] = 'prescription' THEN
                stage := 'jws';
                part := replace(replace(split_part(bs[i] ->> 'jws', '.', 2), '-', '+'), '_', '/');
                payloads[i] := convert_from(decode(part || repeat('=', (4 - length(part) % 4) % 4),
                                                   'base64'), 'UTF8')::jsonb;
            END IF;
        END LOOP;
    EXCEPTION WHEN others THEN
        IF stage = 'jws' THEN
            RAISE EXCEPTION 'eprescrire: the prescription record does not carry a readable JWS'
                USING ERRCODE = '22023';
        END IF;
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END;
    FOR i IN 1 .. n LOOP
        b := bs[i];
        lane := NULL;
        d_line := NULL;
        d_qty := NULL;
        IF kinds[i] = 'prescription' THEN
            payload := payloads[i];
            IF payload ->> 'id' IS DISTINCT FROM pid THEN
                RAISE EXCEPTION 'eprescrire: the signed prescription is not %', pid
                    USING ERRCODE = '22023';
            END IF;
            IF NOT admin AND site.kind = 'prescriber'
               AND payload -> 'prescriber' ->> 'rpps' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records only their own prescriptions', session_user
                    USING ERRCODE = '42501';
            END IF;
            lane := b ->> 'kid';
            IF lane IS NULL THEN
                RAISE EXCEPTION 'eprescrire: a prescription record names the key that signed it (kid)'
                    USING ERRCODE = '22023';
            END IF;
            -- Each line's total: quantity x (renewals + 1).
            line_totals := ARRAY[]::integer[];
            FOR k IN 0 .. coalesce(jsonb_array_length(payload -> 'lines'), 0) - 1 LOOP
                l := payload -> 'lines' -> k;
                line_totals := line_totals || ((l ->> 'quantity')::integer
                                     * (coalesce((l ->> 'renewals')::integer, 0) + 1));
            END LOOP;
            INSERT INTO ledger.prescriptions AS x (prescription_id, prescriber_rpps, kid, totals,
                                                   share_opposition, first_signer)
            VALUES (
                pid,
                payload -> 'prescriber' ->> 'rpps',
                lane,
                line_totals,
                coalesce((payload ->> 'share_opposition')::boolean, false),
                NOT EXISTS (SELECT 1 FROM ledger.prescriptions y WHERE y.prescription_id = pid))
            ON CONFLICT ON CONSTRAINT prescriptions_pkey DO NOTHING
            RETURNING x.kid, x.totals, x.first_signer INTO known_kid, known_totals, known_first;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'eprescrire: prescription % signed by % is already recorded',
                    pid, lane USING ERRCODE = '23514';
            END IF;
        ELSIF kinds[i] = 'dispensing' THEN
            IF NOT admin THEN
                IF site.kind <> 'pharmacy' THEN
                    RAISE EXCEPTION 'eprescrire: only a pharmacy records dispensings'
                        USING ERRCODE = '42501';
                END IF;
                IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacist %)',
                        session_user, site.rpps USING ERRCODE = '42501';
                END IF;
                IF site.finess IS NOT NULL AND b ->> 'pharmacy' IS DISTINCT FROM site.finess THEN
                    RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacy %)',
                        session_user, site.finess USING ERRCODE = '42501';
                END IF;
            END IF;
            -- Its lane (a dispensing without one: the first signer's), recorded by this call or
            -- before.
            lane := b ->> 'lane';
            IF known_kid IS NOT NULL AND (lane = known_kid OR (lane IS NULL AND known_first)) THEN
                p_kid := known_kid;
                p_totals := known_totals;
                p_first := known_first;
            ELSE
                SELECT x.kid, x.totals, x.first_signer INTO p_kid, p_totals, p_first
                    FROM ledger.prescriptions x
                    WHERE x.prescription_id = pid
                      AND (x.kid = lane OR (lane IS NULL AND x.first_signer));
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'eprescrire: a dispensing of an unrecorded prescription'
                        USING ERRCODE = '23503';
                END IF;
            END IF;
            lane := p_kid;
            d_line := (b ->> 'line')::integer;
            d_qty := (b ->> 'quantity')::integer;
            IF d_line IS NULL OR d_qty IS NULL OR d_qty < 1 THEN
                RAISE EXCEPTION 'eprescrire: a dispensing names a line and a positive quantity'
                    USING ERRCODE = '23514';
            END IF;
            IF d_line < 1 OR d_line > coalesce(array_length(p_totals, 1), 0) THEN
                RAISE EXCEPTION 'eprescrire: prescription % has no line %', pid, d_line
                    USING ERRCODE = '23514';
            END IF;
            -- The line's total and the lane's cancellation: what was committed before (read
            -- after the head's lock, so nothing the prescription commits can be missed), then
            -- what this call appends before it.
            given := d_qty;
            cancelled := false;
            IF pos0 > 0 THEN
                SELECT coalesce(sum(r.quantity) FILTER (
                           WHERE r.kind = 'dispensing' AND r.line = d_line
                             AND (r.lane = p_kid OR (r.lane IS NULL AND p_first))), 0),
                       coalesce(bool_or(r.kind = 'cancellation'
                                        AND r.body::jsonb ->> 'kid' = p_kid), false)
                    INTO given, cancelled
                    FROM ledger.records r WHERE r.prescription_id = pid;
                given := given + d_qty;
            END IF;
            FOR j IN 1 .. i - 1 LOOP
                IF kinds[j] = 'dispensing' AND lanes[j] = p_kid AND lines[j] = d_line THEN
                    given := given + quantities[j];
                ELSIF kinds[j] = 'cancellation' AND lanes[j] = p_kid THEN
                    cancelled := true;
                END IF;
            END LOOP;
            IF given > p_totals[d_line] THEN
                RAISE EXCEPTION 'eprescrire: line % of prescription % would be dispensed % times, % prescribed',
                    d_line, pid, given, p_totals[d_line] USING ERRCODE = '23514';
            END IF;
            IF cancelled THEN
                RAISE EXCEPTION 'eprescrire: prescription % was cancelled before this dispensing',
                    pid USING ERRCODE = '23514';
            END IF;
        ELSIF kinds[i] = 'consent' THEN
            lane := b ->> 'lane';  -- NULL: about every lane of the identifier
            IF NOT admin THEN
                IF site.kind = 'pharmacy' THEN
                    IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only in its own name',
                            session_user USING ERRCODE = '42501';
                    END IF;
                ELSE
                    -- The prescriber: in their own name, about their own prescription only.
                    IF b ->> 'actor' IS DISTINCT FROM 'prescriber'
                       OR b ->> 'rpps' IS DISTINCT FROM site.rpps THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only in their own name (prescriber %)',
                            session_user, site.rpps USING ERRCODE = '42501';
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                                   WHERE x.prescription_id = pid
                                     AND (lane IS NULL OR x.kid = lane))
                       OR EXISTS (SELECT 1 FROM ledger.prescriptions x
                                  WHERE x.prescription_id = pid
                                    AND (lane IS NULL OR x.kid = lane)
                                    AND x.prescriber_rpps IS DISTINCT FROM site.rpps) THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only for their own prescriptions',
                            session_user USING ERRCODE = '42501';
                    END IF;
                END IF;
            END IF;
        ELSIF kinds[i] = 'cancellation' THEN
            lane := b ->> 'kid';
            IF NOT admin AND site.kind = 'prescriber' THEN
                SELECT x.prescriber_rpps INTO p_rpps FROM ledger.prescriptions x
                    WHERE x.prescription_id = pid
                      AND (x.kid = lane OR (lane IS NULL AND x.first_signer));
                IF FOUND AND p_rpps IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % cancels only their own prescriptions', session_user
                        USING ERRCODE = '42501';
                END IF;
            END IF;
        END IF;
        lanes := lanes || lane;
        lines := lines || d_line;
        quantities := quantities || d_qty;
    END LOOP;
    -- The records, in order, in the session's name (the table's checks apply: kind, hashes).
    INSERT INTO ledger.records (prescription_id, pos, seq, kind, recorded_at, body, prev_hash,
                                hash, actor, request_id, line, quantity, lane)
        SELECT pid, pos0 + i, seqs[i], kinds[i], recorded_at, bodies[i],
               CASE WHEN i = 1 THEN head0 ELSE hashes[i - 1] END, hashes[i], session_user, rid,
               lines[i], quantities[i], lanes[i]
        FROM generate_series(1, n) AS i ORDER BY i;
    -- The read-back: what a foreign trigger or rule dropping or rewriting records leaves.
    SELECT h.pos, h.hash,
           (SELECT coalesce(array_agg(r.hash ORDER BY r.pos), ARRAY[]::text[])
            FROM ledger.records r WHERE r.prescription_id = pid AND r.request_id = rid)
        INTO head_pos, head_hash, got
        FROM ledger.chain_heads h WHERE h.prescription_id = pid;
    IF head_pos IS DISTINCT FROM pos0 + n OR head_hash IS DISTINCT FROM hashes[n]
       OR got IS DISTINCT FROM hashes THEN
        RAISE EXCEPTION 'eprescrire: the ledger did not keep the % record(s) just appended to prescription % (found %, chain head at position % instead of %): nothing was recorded; run `eprescrire ledger verify`',
            n, pid, cardinality(got), head_pos, pos0 + n USING ERRCODE = 'XX001';
    END IF;
    RETURN head_pos;
END $$;
"""

# A first write in one round trip (version 5). The client does not ask for the history of a
# prescription it is about to record: it appends the prescription record and its dispensing to
# an empty chain (chained to the genesis hash, with sequence numbers its session reserved
# earlier through open_write), and ledger.append creates the chain head in the same statement
# that checks it was empty. When the chain has records, append writes nothing and returns NULL
# (or raises 40001 when another writer created them meanwhile), and the client takes the two
# round trips (open_write, then append).
_V5 = r"""
-- Every statement of a write or a read looks up one prescription by its key: planned while
-- the tables are small (a new ledger; a session keeps its plans), they would scan the whole
-- tables as these grow. They are planned without sequential scans.
ALTER FUNCTION ledger.open_write(text, uuid, integer) SET enable_seqscan = off;
ALTER FUNCTION ledger.history(text) SET enable_seqscan = off;
ALTER FUNCTION ledger.request_done(text, uuid) SET enable_seqscan = off;

-- ledger.append as version 4's, but for a write at position 0 (a new chain): the chain head is
-- created, or taken while still empty (after open_write), in one statement, instead of an
-- UPDATE, a SELECT ... FOR UPDATE and an INSERT; the records inserted from their arrays in
-- order (unnest) rather than through generate_series and a sort.
CREATE OR REPLACE FUNCTION ledger.append(pid text, rid uuid, pos0 integer, head0 text,
    seqs bigint[], kinds text[], recorded_at text, bodies text[], hashes text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ledger
    SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
    n integer := cardinality(hashes);
    site ledger.sites;
    admin boolean := false;
    top bigint;
    bs jsonb[];
    payloads jsonb[];
    b jsonb;
    payload jsonb;
    part text;
    p_rpps text;
    stage text;
    lanes text[] := ARRAY[]::text[];
    lines integer[] := ARRAY[]::integer[];
    quantities integer[] := ARRAY[]::integer[];
    lane text;
    d_line integer;
    d_qty integer;
    known_kid text;          -- the prescription recorded by this call (its lane), if any
    known_totals integer[];
    known_first boolean;
    line_totals integer[];
    l jsonb;
    p_kid text;
    p_totals integer[];
    p_first boolean;
    given bigint;
    cancelled boolean;
    head_pos integer;
    head_hash text;
    got text[];
BEGIN
    IF n IS NULL OR n < 1 OR cardinality(seqs) IS DISTINCT FROM n
       OR cardinality(kinds) IS DISTINCT FROM n OR cardinality(bodies) IS DISTINCT FROM n
       OR pid IS NULL OR rid IS NULL OR pos0 IS NULL OR pos0 < 0 OR head0 IS NULL
       OR recorded_at IS NULL THEN
        RAISE EXCEPTION 'eprescrire: append takes a prescription, a request, the chain head and as many sequence numbers, kinds and bodies as hashes'
            USING ERRCODE = '22023';
    END IF;
    -- Who writes.
    SELECT * INTO site FROM ledger.sites s WHERE s.role_name = session_user;
    IF NOT FOUND THEN
        admin := ledger.is_admin();
        IF NOT admin THEN
            RAISE EXCEPTION 'eprescrire: % is not a site of this ledger', session_user
                USING ERRCODE = '42501';
        END IF;
    ELSIF site.kind NOT IN ('pharmacy', 'prescriber') THEN
        RAISE EXCEPTION 'eprescrire: a % site does not write records', site.kind
            USING ERRCODE = '42501';
    END IF;
    -- Sequence numbers come from ledger.record_seq.
    top := coalesce(pg_sequence_last_value('ledger.record_seq'::regclass), 0);
    FOR i IN 1 .. n LOOP
        IF seqs[i] IS NULL OR seqs[i] < 1 OR seqs[i] > top THEN
            RAISE EXCEPTION 'eprescrire: a record''s sequence number comes from ledger.record_seq'
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    -- The chain: the records follow the head (the first chained to it, each next one to the
    -- one before, as the INSERT below writes them), and the head moves to the last, in one
    -- statement that locks it until COMMIT (a concurrent writer of the prescription waits, then
    -- finds the head moved and is refused).
    IF pos0 = 0 THEN
        -- A chain that has records already: nothing is appended and NULL returned (the caller
        -- reads the history and appends after it). Not an error: a first write tried in one
        -- round trip that finds the prescription recorded is routine, and the server logs a
        -- failed statement with its text, which holds the prescription.
        SELECT h.pos INTO head_pos FROM ledger.chain_heads h WHERE h.prescription_id = pid;
        IF head_pos > 0 THEN
            RETURN NULL;
        END IF;
        -- A new chain (a first write in one round trip, without open_write): the head is
        -- created at the last record if the first is chained to the prescription's genesis
        -- hash; an existing head is taken only while it is still empty. Either way the row
        -- is this transaction's until COMMIT (a concurrent writer of the prescription waits,
        -- then finds the head moved: 40001 below).
        INSERT INTO ledger.chain_heads AS h
            SELECT pid, n, seqs[n], hashes[n] FROM ledger.meta m
            WHERE m.key = 'ledger_id'
              AND head0 = encode(sha256(convert_to('eprescrire-ledger/1', 'UTF8') || '\x00'::bytea
                                        || convert_to(m.value || '/' || pid, 'UTF8')), 'hex')
            ON CONFLICT ON CONSTRAINT chain_heads_pkey DO UPDATE
                SET pos = excluded.pos, seq = excluded.seq, hash = excluded.hash
                WHERE h.pos = 0 AND h.hash = head0;
    ELSE
        UPDATE ledger.chain_heads h SET pos = pos0 + n, seq = seqs[n], hash = hashes[n]
            WHERE h.prescription_id = pid AND h.pos = pos0 AND h.hash = head0;
    END IF;
    IF NOT FOUND THEN
        SELECT h.pos INTO head_pos FROM ledger.chain_heads h WHERE h.prescription_id = pid;
        RAISE EXCEPTION 'eprescrire: record % of prescription % does not follow its chain head (%)',
            pos0 + 1, pid, coalesce(head_pos, 0) USING ERRCODE = '40001';
    END IF;
    -- The bodies (JSON objects) and a prescription's signed payload, parsed once.
    BEGIN
        stage := 'body';
        bs := bodies::jsonb[];
        FOR i IN 1 .. n LOOP
            stage := 'body';
            IF jsonb_typeof(bs[i]) IS DISTINCT FROM 'object' THEN
                RAISE EXCEPTION 'not an object';
            END IF;
            IF kinds[i] = 'prescription' THEN
                stage := 'jws';
                part := replace(replace(split_part(bs[i] ->> 'jws', '.', 2), '-', '+'), '_', '/');
                payloads[i] := convert_from(decode(part || repeat('=', (4 - length(part) % 4) % 4),
                                                   'base64'), 'UTF8')::jsonb;
            END IF;
        END LOOP;
    EXCEPTION WHEN others THEN
        IF stage = 'jws' THEN
            RAISE EXCEPTION 'eprescrire: the prescription record does not carry a readable JWS'
                USING ERRCODE = '22023';
        END IF;
        RAISE EXCEPTION 'eprescrire: a record body is a JSON object' USING ERRCODE = '22023';
    END;
    FOR i IN 1 .. n LOOP
        b := bs[i];
        lane := NULL;
        d_line := NULL;
        d_qty := NULL;
        IF kinds[i] = 'prescription' THEN
            payload := payloads[i];
            IF payload ->> 'id' IS DISTINCT FROM pid THEN
                RAISE EXCEPTION 'eprescrire: the signed prescription is not %', pid
                    USING ERRCODE = '22023';
            END IF;
            IF NOT admin AND site.kind = 'prescriber'
               AND payload -> 'prescriber' ->> 'rpps' IS DISTINCT FROM site.rpps THEN
                RAISE EXCEPTION 'eprescrire: % records only their own prescriptions', session_user
                    USING ERRCODE = '42501';
            END IF;
            lane := b ->> 'kid';
            IF lane IS NULL THEN
                RAISE EXCEPTION 'eprescrire: a prescription record names the key that signed it (kid)'
                    USING ERRCODE = '22023';
            END IF;
            -- Each line's total: quantity x (renewals + 1).
            line_totals := ARRAY[]::integer[];
            FOR k IN 0 .. coalesce(jsonb_array_length(payload -> 'lines'), 0) - 1 LOOP
                l := payload -> 'lines' -> k;
                line_totals := line_totals || ((l ->> 'quantity')::integer
                                     * (coalesce((l ->> 'renewals')::integer, 0) + 1));
            END LOOP;
            INSERT INTO ledger.prescriptions AS x (prescription_id, prescriber_rpps, kid, totals,
                                                   share_opposition, first_signer)
            VALUES (
                pid,
                payload -> 'prescriber' ->> 'rpps',
                lane,
                line_totals,
                coalesce((payload ->> 'share_opposition')::boolean, false),
                NOT EXISTS (SELECT 1 FROM ledger.prescriptions y WHERE y.prescription_id = pid))
            ON CONFLICT ON CONSTRAINT prescriptions_pkey DO NOTHING
            RETURNING x.kid, x.totals, x.first_signer INTO known_kid, known_totals, known_first;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'eprescrire: prescription % signed by % is already recorded',
                    pid, lane USING ERRCODE = '23514';
            END IF;
        ELSIF kinds[i] = 'dispensing' THEN
            IF NOT admin THEN
                IF site.kind <> 'pharmacy' THEN
                    RAISE EXCEPTION 'eprescrire: only a pharmacy records dispensings'
                        USING ERRCODE = '42501';
                END IF;
                IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacist %)',
                        session_user, site.rpps USING ERRCODE = '42501';
                END IF;
                IF site.finess IS NOT NULL AND b ->> 'pharmacy' IS DISTINCT FROM site.finess THEN
                    RAISE EXCEPTION 'eprescrire: % records dispensings only in its own name (pharmacy %)',
                        session_user, site.finess USING ERRCODE = '42501';
                END IF;
            END IF;
            -- Its lane (a dispensing without one: the first signer's), recorded by this call or
            -- before.
            lane := b ->> 'lane';
            IF known_kid IS NOT NULL AND (lane = known_kid OR (lane IS NULL AND known_first)) THEN
                p_kid := known_kid;
                p_totals := known_totals;
                p_first := known_first;
            ELSE
                SELECT x.kid, x.totals, x.first_signer INTO p_kid, p_totals, p_first
                    FROM ledger.prescriptions x
                    WHERE x.prescription_id = pid
                      AND (x.kid = lane OR (lane IS NULL AND x.first_signer));
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'eprescrire: a dispensing of an unrecorded prescription'
                        USING ERRCODE = '23503';
                END IF;
            END IF;
            lane := p_kid;
            d_line := (b ->> 'line')::integer;
            d_qty := (b ->> 'quantity')::integer;
            IF d_line IS NULL OR d_qty IS NULL OR d_qty < 1 THEN
                RAISE EXCEPTION 'eprescrire: a dispensing names a line and a positive quantity'
                    USING ERRCODE = '23514';
            END IF;
            IF d_line < 1 OR d_line > coalesce(array_length(p_totals, 1), 0) THEN
                RAISE EXCEPTION 'eprescrire: prescription % has no line %', pid, d_line
                    USING ERRCODE = '23514';
            END IF;
            -- The line's total and the lane's cancellation: what was committed before (read
            -- after the head's lock, so nothing the prescription commits can be missed), then
            -- what this call appends before it.
            given := d_qty;
            cancelled := false;
            IF pos0 > 0 THEN
                SELECT coalesce(sum(r.quantity) FILTER (
                           WHERE r.kind = 'dispensing' AND r.line = d_line
                             AND (r.lane = p_kid OR (r.lane IS NULL AND p_first))), 0),
                       coalesce(bool_or(r.kind = 'cancellation'
                                        AND r.body::jsonb ->> 'kid' = p_kid), false)
                    INTO given, cancelled
                    FROM ledger.records r WHERE r.prescription_id = pid;
                given := given + d_qty;
            END IF;
            FOR j IN 1 .. i - 1 LOOP
                IF kinds[j] = 'dispensing' AND lanes[j] = p_kid AND lines[j] = d_line THEN
                    given := given + quantities[j];
                ELSIF kinds[j] = 'cancellation' AND lanes[j] = p_kid THEN
                    cancelled := true;
                END IF;
            END LOOP;
            IF given > p_totals[d_line] THEN
                RAISE EXCEPTION 'eprescrire: line % of prescription % would be dispensed % times, % prescribed',
                    d_line, pid, given, p_totals[d_line] USING ERRCODE = '23514';
            END IF;
            IF cancelled THEN
                RAISE EXCEPTION 'eprescrire: prescription % was cancelled before this dispensing',
                    pid USING ERRCODE = '23514';
            END IF;
        ELSIF kinds[i] = 'consent' THEN
            lane := b ->> 'lane';  -- NULL: about every lane of the identifier
            IF NOT admin THEN
                IF site.kind = 'pharmacy' THEN
                    IF site.rpps IS NOT NULL AND b ->> 'pharmacist' IS DISTINCT FROM site.rpps THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only in its own name',
                            session_user USING ERRCODE = '42501';
                    END IF;
                ELSE
                    -- The prescriber: in their own name, about their own prescription only.
                    IF b ->> 'actor' IS DISTINCT FROM 'prescriber'
                       OR b ->> 'rpps' IS DISTINCT FROM site.rpps THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only in their own name (prescriber %)',
                            session_user, site.rpps USING ERRCODE = '42501';
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM ledger.prescriptions x
                                   WHERE x.prescription_id = pid
                                     AND (lane IS NULL OR x.kid = lane))
                       OR EXISTS (SELECT 1 FROM ledger.prescriptions x
                                  WHERE x.prescription_id = pid
                                    AND (lane IS NULL OR x.kid = lane)
                                    AND x.prescriber_rpps IS DISTINCT FROM site.rpps) THEN
                        RAISE EXCEPTION 'eprescrire: % records consent only for their own prescriptions',
                            session_user USING ERRCODE = '42501';
                    END IF;
                END IF;
            END IF;
        ELSIF kinds[i] = 'cancellation' THEN
            lane := b ->> 'kid';
            IF NOT admin AND site.kind = 'prescriber' THEN
                SELECT x.prescriber_rpps INTO p_rpps FROM ledger.prescriptions x
                    WHERE x.prescription_id = pid
                      AND (x.kid = lane OR (lane IS NULL AND x.first_signer));
                IF FOUND AND p_rpps IS DISTINCT FROM site.rpps THEN
                    RAISE EXCEPTION 'eprescrire: % cancels only their own prescriptions', session_user
                        USING ERRCODE = '42501';
                END IF;
            END IF;
        END IF;
        lanes := lanes || lane;
        lines := lines || d_line;
        quantities := quantities || d_qty;
    END LOOP;
    -- The records, in order, in the session's name (the table's checks apply: kind, hashes).
    INSERT INTO ledger.records (prescription_id, pos, seq, kind, recorded_at, body, prev_hash,
                                hash, actor, request_id, line, quantity, lane)
        SELECT pid, pos0 + r.i, r.seq, r.kind, recorded_at, r.body,
               CASE WHEN r.i = 1 THEN head0 ELSE hashes[r.i - 1] END, r.hash, session_user, rid,
               r.line, r.quantity, r.lane
        FROM unnest(seqs, kinds, bodies, hashes, lines, quantities, lanes)
             WITH ORDINALITY AS r (seq, kind, body, hash, line, quantity, lane, i);
    -- The read-back: what a foreign trigger or rule dropping or rewriting records leaves.
    SELECT h.pos, h.hash,
           (SELECT coalesce(array_agg(r.hash ORDER BY r.pos), ARRAY[]::text[])
            FROM ledger.records r WHERE r.prescription_id = pid AND r.request_id = rid)
        INTO head_pos, head_hash, got
        FROM ledger.chain_heads h WHERE h.prescription_id = pid;
    IF head_pos IS DISTINCT FROM pos0 + n OR head_hash IS DISTINCT FROM hashes[n]
       OR got IS DISTINCT FROM hashes THEN
        RAISE EXCEPTION 'eprescrire: the ledger did not keep the % record(s) just appended to prescription % (found %, chain head at position % instead of %): nothing was recorded; run `eprescrire ledger verify`',
            n, pid, cardinality(got), head_pos, pos0 + n USING ERRCODE = 'XX001';
    END IF;
    RETURN head_pos;
END $$;
"""

_V6 = r"""
-- A record's own checks (its position, kind and hashes), as one constraint calling a PL/pgSQL
-- function instead of four: PostgreSQL reads a table's check constraints back from their stored
-- text and plans them again in every INSERT statement, which cost each write about a tenth of
-- its server instructions (the kind list and the patterns are constants serialised byte by
-- byte); a function's body is compiled once per session. The same conditions, every operator
-- and function schema-qualified (nothing resolved through the caller's search_path).
CREATE FUNCTION ledger.record_ok(pos integer, kind text, prev_hash text, hash text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN pos OPERATOR(pg_catalog.>=) 1
       AND kind OPERATOR(pg_catalog.=) ANY (ARRAY['prescription', 'dispensing', 'cancellation',
                                                  'consent']::pg_catalog.text[])
       AND pg_catalog.octet_length(prev_hash) OPERATOR(pg_catalog.=) 64
       AND prev_hash COLLATE "C" OPERATOR(pg_catalog.~) '^[0-9a-f]+$'
       AND pg_catalog.octet_length(hash) OPERATOR(pg_catalog.=) 64
       AND hash COLLATE "C" OPERATOR(pg_catalog.~) '^[0-9a-f]+$';
END $$;
REVOKE ALL ON FUNCTION ledger.record_ok(integer, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.record_ok(integer, text, text, text) TO eprescrire_admin;
ALTER TABLE ledger.records
    DROP CONSTRAINT records_pos_check,
    DROP CONSTRAINT records_kind_check,
    DROP CONSTRAINT records_prev_hash_check,
    DROP CONSTRAINT records_hash_check,
    ADD CONSTRAINT records_check CHECK (ledger.record_ok(pos, kind, prev_hash, hash));
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "per-prescription hash chains, sites, database-enforced rules", _V1),
    Migration(2, "a write in two round trips: open_write, then append with its read-back", _V2),
    Migration(3, "prescriptions per identifier and signer (lanes); the prescriber's consent", _V3),
    Migration(4, "every check of a write in ledger.append, the only way in", _V4),
    Migration(5, "a first write in one round trip; lookups by key planned as such", _V5),
    Migration(6, "a record's checks in one constraint, not planned again by every write", _V6),
)

LATEST = MIGRATIONS[-1].version
