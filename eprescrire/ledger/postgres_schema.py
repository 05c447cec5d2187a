"""The shared PostgreSQL ledger's catalogue checked against the one its migrations define.

``ledger verify`` runs as the auditor or the administrator, who may not create a scratch
database; so the reference is a canonical description of what the migrations create
(:data:`EXPECTED`), kept here and checked by ``tests/test_ledger_schema_postgres.py`` against a
freshly migrated database. Described: the ``ledger`` schema's tables (and whether row-level
security is enabled or forced), columns (type, nullability), constraints, indexes, views,
sequences and functions (their source, language, volatility, security and settings), and on its
tables every trigger (its definition and whether it is enabled: ``ALTER TABLE … DISABLE
TRIGGER`` counts), rewrite rule and row-level-security policy, wherever their functions live.

Anything the migrations do not create is *foreign*, anything they create that is absent is
*missing*, anything whose definition differs is *altered*: a foreign ``BEFORE INSERT`` trigger or
``DO INSTEAD NOTHING`` rule can silently drop records, a disabled append-only trigger lets a
script edit history.
"""

from __future__ import annotations

import hashlib
from typing import Any

SCHEMA = "ledger"

_TRIGGER_STATE = {"O": "enabled", "D": "disabled", "R": "enabled on replica only", "A": "always"}

# (kind, name) -> definition; each query returns rows (kind, name, definition).
_QUERIES = (
    # Relations of the schema: tables (with their row-level security), views, sequences...
    """SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' ELSE 'relation' END,
              c.relname,
              CASE WHEN c.relkind IN ('r', 'p') THEN
                  'row level security ' || CASE WHEN NOT c.relrowsecurity THEN 'off'
                      WHEN c.relforcerowsecurity THEN 'forced' ELSE 'on' END
                  WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END
       FROM pg_class c WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind <> 'i'
         AND c.relkind <> 't'""",
    # Columns.
    """SELECT 'column', c.relname || '.' || a.attname,
              format_type(a.atttypid, a.atttypmod)
              || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
              || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND a.attnum > 0 AND NOT a.attisdropped""",
    # Constraints (primary keys, checks...).
    """SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
       WHERE c.relnamespace = %(ns)s::regnamespace""",
    # Indexes.
    """SELECT 'index', i.relname, pg_get_indexdef(i.oid)
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       WHERE i.relnamespace = %(ns)s::regnamespace""",
    # Triggers on the schema's tables (their functions may live anywhere).
    """SELECT 'trigger', t.tgname || ' on ' || c.relname,
              t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       WHERE c.relnamespace = %(ns)s::regnamespace AND NOT t.tgisinternal""",
    # Rewrite rules on the schema's tables (a view's own rule is its definition).
    """SELECT 'rule', r.rulename || ' on ' || c.relname, r.ev_enabled::text || ' ' || pg_get_ruledef(r.oid)
       FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
       WHERE c.relnamespace = %(ns)s::regnamespace AND r.rulename <> '_RETURN'""",
    # Row-level-security policies.
    """SELECT 'policy', p.polname || ' on ' || c.relname,
              p.polcmd::text || ' ' || p.polpermissive::text || ' '
              || coalesce(array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'public'
                                                ELSE r::regrole::text END
                                                FROM unnest(p.polroles) r ORDER BY 1), ','), '')
              || ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
              || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
       FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
       WHERE c.relnamespace = %(ns)s::regnamespace""",
    # Privileges on the tables, sequences and functions, but their owner's: since version 4 the
    # only way a site writes a record is ledger.append, because no site may INSERT itself.
    """SELECT 'privileges', CASE WHEN c.relkind = 'S' THEN 'sequence ' ELSE 'table ' END
                             || c.relname,
              coalesce(string_agg(x.granted, ', ' ORDER BY x.granted), '')
       FROM pg_class c LEFT JOIN LATERAL (
           SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END
                  || ' ' || a.privilege_type AS granted
           FROM aclexplode(coalesce(c.relacl, acldefault(
                    CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
           WHERE a.grantee <> c.relowner) x ON true
       WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       GROUP BY c.relname, c.relkind""",
    """SELECT 'privileges', 'function ' || p.proname || '('
                            || pg_get_function_identity_arguments(p.oid) || ')',
              coalesce(string_agg(x.granted, ', ' ORDER BY x.granted), '')
       FROM pg_proc p LEFT JOIN LATERAL (
           SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END
                  || ' ' || a.privilege_type AS granted
           FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
           WHERE a.grantee <> p.proowner) x ON true
       WHERE p.pronamespace = %(ns)s::regnamespace
       GROUP BY p.oid, p.proname""",
    # Functions and procedures.
    """SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
              l.lanname || ' ' || p.prokind::text || ' ' || p.provolatile::text || ' '
              || p.prosecdef::text || ' ' || pg_get_function_result(p.oid) || ' '
              || coalesce(array_to_string(p.proconfig, ','), '') || ' ' || p.prosrc
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = %(ns)s::regnamespace""",
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(kind: str, definition: str) -> str:
    """What is compared: readable for a table, a column and a trigger's state, a digest of the
    full definition otherwise."""
    if kind in ("table", "column", "sequence", "privileges"):
        return definition
    if kind == "trigger":
        state, _, text = definition.partition(" ")
        return f"{_TRIGGER_STATE.get(state, state)} {_digest(text)}"
    return _digest(definition)


def describe(db: Any) -> dict[str, str]:
    """The catalogue of the ledger schema at ``db`` (a psycopg connection): ``"kind name"`` to
    its canonical definition."""
    found: dict[str, str] = {}
    for query in _QUERIES:
        for kind, name, definition in db.execute(query, {"ns": SCHEMA}).fetchall():
            found[f"{kind} {name}"] = _canonical(str(kind), str(definition or ""))
    return found


def problems(db: Any) -> list[str]:
    """What differs between the database's ledger schema and the migrations' (empty if none)."""
    have = describe(db)
    found = [f"{key} is missing" for key in sorted(set(EXPECTED) - set(have))]
    found += [f"foreign {key}" for key in sorted(set(have) - set(EXPECTED))]
    for key in sorted(set(have) & set(EXPECTED)):
        got, wanted = have[key], EXPECTED[key]
        if got == wanted:
            continue
        kind = key.split(" ", 1)[0]
        if kind == "trigger" and got.rsplit(" ", 1)[1] == wanted.rsplit(" ", 1)[1]:
            found.append(f"{key} is {got.rsplit(' ', 1)[0]}")
        elif kind in ("table", "column", "sequence", "privileges"):
            found.append(f"{key} altered: {got or '(none)'} instead of {wanted or '(none)'}")
        else:
            found.append(f"{key} altered (its definition differs from the migrations')")
    return found


# Generated from a freshly migrated database (see tests/test_ledger_schema_postgres.py, which
# prints the new value when a migration changes it).
EXPECTED: dict[str, str] = {
    "column chain_heads.hash": "text not null",
    "column chain_heads.pos": "integer not null",
    "column chain_heads.prescription_id": "text not null",
    "column chain_heads.seq": "bigint",
    "column checkpoint_leaves.hash": "text not null",
    "column checkpoint_leaves.pos": "integer not null",
    "column checkpoint_leaves.prescription_id": "text not null",
    "column checkpoint_leaves.root": "text not null",
    "column checkpoints.leaves": "bigint not null",
    "column checkpoints.max_seq": "bigint not null",
    "column checkpoints.root": "text not null",
    "column checkpoints.taken_at": "timestamp with time zone not null default now()",
    "column imported_ledgers.head_hash": "text",
    "column imported_ledgers.head_seq": "bigint not null",
    "column imported_ledgers.imported_at": "timestamp with time zone not null default now()",
    "column imported_ledgers.records": "bigint not null",
    "column imported_ledgers.source_ledger": "text not null",
    "column imported_records.body": "text not null",
    "column imported_records.hash": "text not null",
    "column imported_records.kind": "text not null",
    "column imported_records.prescription_id": "text not null",
    "column imported_records.prev_hash": "text not null",
    "column imported_records.recorded_at": "text not null",
    "column imported_records.source_ledger": "text not null",
    "column imported_records.source_seq": "bigint not null",
    "column meta.key": "text not null",
    "column meta.value": "text not null",
    "column prescriptions.first_signer": "boolean not null",
    "column prescriptions.kid": "text not null",
    "column prescriptions.prescriber_rpps": "text not null",
    "column prescriptions.prescription_id": "text not null",
    "column prescriptions.share_opposition": "boolean not null",
    "column prescriptions.totals": "integer[] not null",
    "column records.actor": "name not null default SESSION_USER",
    "column records.body": "text not null",
    "column records.hash": "text not null",
    "column records.kind": "text not null",
    "column records.lane": "text",
    "column records.line": "integer",
    "column records.pos": "integer not null",
    "column records.prescription_id": "text not null",
    "column records.prev_hash": "text not null",
    "column records.quantity": "integer",
    "column records.recorded_at": "text not null",
    "column records.request_id": "uuid not null",
    "column records.seq": "bigint not null",
    "column schema_migrations.applied_at": "timestamp with time zone not null default now()",
    "column schema_migrations.description": "text not null",
    "column schema_migrations.version": "integer not null",
    "column sites.added_at": "timestamp with time zone not null default now()",
    "column sites.certificate_sha256": "text",
    "column sites.finess": "text",
    "column sites.kind": "text not null",
    "column sites.role_name": "name not null",
    "column sites.rpps": "text",
    "constraint chain_heads.chain_heads_pkey": "29de8ae38adf881b",
    "constraint checkpoint_leaves.checkpoint_leaves_pkey": "733a3c147827846c",
    "constraint checkpoints.checkpoints_pkey": "ab21cf280ca48693",
    "constraint imported_ledgers.imported_ledgers_pkey": "34e856a0c3e2ef50",
    "constraint imported_records.imported_records_pkey": "39556f99d1a13d89",
    "constraint meta.meta_pkey": "7483afa65f6d0ea8",
    "constraint prescriptions.prescriptions_pkey": "23ea3c36f5d74887",
    "constraint records.records_check": "fe7b3bd185bd511e",
    "constraint records.records_pkey": "768ee89a5f0fd3c7",
    "constraint schema_migrations.schema_migrations_pkey": "51b255af119395e0",
    "constraint sites.sites_check": "19219ba6eec8f0d4",
    "constraint sites.sites_check1": "9558a61651adb827",
    "constraint sites.sites_finess_check": "72ace12c64380745",
    "constraint sites.sites_kind_check": "c098b46a45d04ee2",
    "constraint sites.sites_pkey": "f220177ac2be4216",
    "constraint sites.sites_rpps_check": "10c4d87cfefdff33",
    "function append(pid text, rid uuid, pos0 integer, head0 text, seqs bigint[], kinds text[], recorded_at text, bodies text[], hashes text[])": "5a657d4cf99149e8",
    "function append_only()": "53118db968e48f8d",
    "function begin_update(pid text, OUT pos integer, OUT hash text)": "c80a3fb29983ccc8",
    "function first_lane(pid text)": "413414712aad841d",
    "function genesis(pid text)": "fbcd697eec3f24f1",
    "function history(pid text)": "c3280f0aebddc022",
    "function is_admin()": "8170c29ae43e6f68",
    "function jws_payload(token text)": "d59b3a049d12757b",
    "function open_write(pid text, rid uuid, reserve integer)": "5f651d044fc86a65",
    "function record_ok(pos integer, kind text, prev_hash text, hash text)": "dfd47bfa9eec07ff",
    "function request_done(pid text, rid uuid)": "7153508f96e02455",
    "index chain_heads_pkey": "08c18215e42c27f7",
    "index checkpoint_leaves_pkey": "485d6ed7226c479c",
    "index checkpoints_pkey": "0f72e64a6e8823be",
    "index imported_ledgers_pkey": "43def5664a2686a0",
    "index imported_records_pkey": "acdbfffbb3900af1",
    "index meta_pkey": "f5fbef5f9cff984d",
    "index prescriptions_pkey": "9df34cdf336be61c",
    "index records_by_seq": "2a249643ea1891a2",
    "index records_pkey": "00aa56dd1743f48c",
    "index schema_migrations_pkey": "ec500ac4f59f8c86",
    "index sites_pkey": "62d41e33085e98c0",
    "privileges function append(pid text, rid uuid, pos0 integer, head0 text, seqs bigint[], kinds text[], recorded_at text, bodies text[], hashes text[])": "eprescrire_admin EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function append_only()": "eprescrire_admin EXECUTE",
    "privileges function begin_update(pid text, OUT pos integer, OUT hash text)": "eprescrire_admin EXECUTE, eprescrire_auditor EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function first_lane(pid text)": "eprescrire_admin EXECUTE",
    "privileges function genesis(pid text)": "eprescrire_admin EXECUTE, eprescrire_auditor EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function history(pid text)": "eprescrire_admin EXECUTE, eprescrire_auditor EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function is_admin()": "eprescrire_admin EXECUTE, eprescrire_auditor EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function jws_payload(token text)": "eprescrire_admin EXECUTE",
    "privileges function open_write(pid text, rid uuid, reserve integer)": "eprescrire_admin EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges function record_ok(pos integer, kind text, prev_hash text, hash text)": "eprescrire_admin EXECUTE",
    "privileges function request_done(pid text, rid uuid)": "eprescrire_admin EXECUTE, eprescrire_auditor EXECUTE, eprescrire_pharmacy EXECUTE, eprescrire_prescriber EXECUTE",
    "privileges sequence record_seq": "eprescrire_admin SELECT, eprescrire_admin UPDATE, eprescrire_admin USAGE, eprescrire_pharmacy USAGE, eprescrire_prescriber USAGE",
    "privileges table chain_heads": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_admin UPDATE, eprescrire_auditor SELECT",
    "privileges table checkpoint_leaves": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT",
    "privileges table checkpoints": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT",
    "privileges table imported_ledgers": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT",
    "privileges table imported_records": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT",
    "privileges table meta": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT, eprescrire_pharmacy SELECT, eprescrire_prescriber SELECT",
    "privileges table prescriptions": "eprescrire_admin INSERT, eprescrire_admin SELECT",
    "privileges table records": "eprescrire_admin SELECT, eprescrire_auditor SELECT",
    "privileges table schema_migrations": "eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_auditor SELECT, eprescrire_pharmacy SELECT, eprescrire_prescriber SELECT",
    "privileges table sites": "eprescrire_admin DELETE, eprescrire_admin INSERT, eprescrire_admin SELECT, eprescrire_admin UPDATE, eprescrire_auditor SELECT",
    "sequence record_seq": "",
    "table chain_heads": "row level security off",
    "table checkpoint_leaves": "row level security off",
    "table checkpoints": "row level security off",
    "table imported_ledgers": "row level security off",
    "table imported_records": "row level security off",
    "table meta": "row level security off",
    "table prescriptions": "row level security off",
    "table records": "row level security off",
    "table schema_migrations": "row level security off",
    "table sites": "row level security off",
    "trigger imported_no_update on imported_records": "enabled d057d680ba3cedff",
    "trigger prescriptions_no_truncate on prescriptions": "enabled b9c9eb67e9149710",
    "trigger prescriptions_no_update on prescriptions": "enabled 6d4da6d30e574bd0",
    "trigger records_no_truncate on records": "enabled 9e1598ba35490c93",
    "trigger records_no_update on records": "enabled 9b00d137e5320a10",
}
