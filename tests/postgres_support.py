"""The PostgreSQL cluster the shared-ledger tests run against.

``server()`` finds it: ``EPRESCRIRE_TEST_PG_URL`` (a superuser URL) when set, else the Debian
cluster ``eprescrire-test`` on 127.0.0.1:54329 made and started by
``scripts/postgres-test-cluster.sh`` (run here when the cluster is not up; it installs PostgreSQL
when missing). Each test module gets fresh databases (:meth:`Server.fresh_ledger`), initialised
with ``eprescrire ledger init``'s code; sites are login roles with random SCRAM passwords, or
client certificates issued by a test authority for PostgreSQL's ``cert`` method
(:meth:`Server.enable_tls`). Nothing is skipped: a missing server is an error.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eprescrire.ledger import postgres

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "postgres-test-cluster.sh"
PORT = int(os.environ.get("PGTEST_PORT", "54329"))
CLUSTER = os.environ.get("PGTEST_CLUSTER", "eprescrire-test")
PASSWORD_FILE = Path(
    os.environ.get("PGTEST_STATE", "/var/lib/postgresql/eprescrire-test-superuser.password")
)
HOST = "127.0.0.1"


def _version() -> str:
    return sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]


def conf_dir() -> Path:
    return Path("/etc/postgresql") / _version() / CLUSTER


@dataclass
class Site:
    role: str
    url: str
    kind: str
    finess: str | None = None
    rpps: str | None = None


class Server:
    def __init__(self, superuser_url: str) -> None:
        self.superuser_url = superuser_url
        self.tls_dir: Path | None = None
        self.authority: tuple[Any, x509.Certificate] | None = None
        self._pooled: set[str] = set()  # databases made by fresh_ledger, reused once dropped
        self._spare: list[str] = []

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            base = self.superuser_url.rsplit("/", 1)[0]
            return f"{base}/{database}"
        secret = f":{quote(password, safe='')}" if password else ""
        return f"postgresql://{quote(user, safe='')}{secret}@{HOST}:{PORT}/{database}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def create_database(self) -> str:
        name = f"ept_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return name

    def fresh_ledger(self) -> str:
        """A database holding a newly initialised ledger (its own ledger id, no record, no
        site); returns its superuser URL. Give it back with :meth:`drop`.

        Creating and dropping a database costs seconds here (the copy of ``template1`` is
        written and synced, ``DROP DATABASE`` forces a checkpoint), initialising a schema a
        fraction of that: a dropped ledger's database is emptied, initialised again and kept
        for the next test of this process (:meth:`_recycle`); the databases left are dropped
        when the process exits."""
        if self._spare:
            return self.url(self._spare.pop())
        url = self.url(self.create_database())
        postgres.initialise(url)
        self._pooled.add(url.rsplit("/", 1)[1])
        return url

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        if name in self._pooled:
            try:
                self._recycle(name)
            except (psycopg.Error, postgres.LedgerError):
                self._pooled.discard(name)
            else:
                self._spare.append(name)
                return
        self._drop_database(name)

    def _drop_database(self, name: str) -> None:
        with self.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._drop_roles(db, name)

    @staticmethod
    def _drop_roles(db: psycopg.Connection[Any], name: str) -> None:
        """The login roles made for the database ``name`` (named ``name_…``)."""
        for (role,) in db.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"{name}\\_%",)
        ).fetchall():
            db.execute(f'DROP ROLE IF EXISTS "{role}"')

    def _recycle(self, name: str) -> None:
        """Back to a newly initialised ledger: every session on it ended, every schema a test
        made dropped with ``public`` made again, its site roles dropped, ``ledger init`` run."""
        with self.admin() as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            self._drop_roles(db, name)
        with psycopg.connect(self.url(name), autocommit=True) as db, db.transaction():
            schemas = db.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                " AND nspname <> 'information_schema'"
            ).fetchall()
            for (schema,) in schemas:
                db.execute(f'DROP SCHEMA "{schema}" CASCADE')
            db.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            db.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            db.execute(f'ALTER DATABASE "{name}" RESET ALL')
        with self.admin() as db:
            self._drop_roles(db, name)  # a session ended above may have made one meanwhile
        postgres.initialise(self.url(name))

    def sweep_orphans(self) -> list[str]:
        """Drop the test databases (and their roles) whose making process is gone: a run
        killed before its exit handlers leaves them behind, and thousands of them make the
        cluster's crash recovery outlast any start-up timeout. The process id is in the name
        (``ept_<pid>_…``); names in any other form are left alone."""
        dropped = []
        with self.admin() as db:
            names = [
                name
                for (name,) in db.execute(
                    "SELECT datname FROM pg_database WHERE datname ~ '^ept_[0-9]+_'"
                ).fetchall()
            ]
            for name in names:
                if _alive(int(name.split("_")[1])):
                    continue
                with contextlib.suppress(psycopg.Error):
                    db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    dropped.append(name)
            for (role,) in db.execute(
                "SELECT rolname FROM pg_roles WHERE rolname ~ '^ept_[0-9]+_'"
            ).fetchall():
                if not _alive(int(role.split("_")[1])):
                    with contextlib.suppress(psycopg.Error):
                        db.execute(f'DROP ROLE IF EXISTS "{role}"')
        return dropped

    def close(self) -> None:
        """Drop the databases kept for reuse."""
        while self._spare:
            name = self._spare.pop()
            self._pooled.discard(name)
            with contextlib.suppress(psycopg.Error):
                self._drop_database(name)

    def site(
        self,
        ledger_url: str,
        name: str,
        kind: str,
        *,
        finess: str | None = None,
        rpps: str | None = None,
        certificate: x509.Certificate | None = None,
    ) -> Site:
        """A login role for a site of the ledger at ``ledger_url`` (names prefixed by the
        database's, roles being cluster-wide), with a random SCRAM password."""
        database = ledger_url.rsplit("/", 1)[1]
        role = f"{database}_{name}"
        password = secrets.token_urlsafe(18)
        cert = certificate or self._self_named(role)
        postgres.add_site(
            ledger_url, cert, kind, finess=finess, rpps=rpps, role=role, password=password
        )
        return Site(role, self.url(database, role, password), kind, finess, rpps)

    @staticmethod
    def _self_named(role: str) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)])
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )

    # --------------------------------------------------------------------------------- TLS

    def enable_tls(
        self, authority_key: Any, authority_cert: x509.Certificate, workdir: Path
    ) -> None:
        """Serve TLS with a certificate from ``authority`` and trust it for client certificates
        (``ssl_ca_file``), then reload the server."""
        from eprescrire import keys

        self.authority = (authority_key, authority_cert)
        # The server's certificate as `eprescrire keys server --host localhost --ip 127.0.0.1`
        # makes it: the sites' verify-full checks it.
        served = keys.new_server(
            keys.Credentials(key=authority_key, certificate=authority_cert),
            hosts=["localhost"],
            addresses=[HOST],
            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
            days=2,
        )
        key, cert = served.key, served.certificate
        target = conf_dir()
        files = {
            "server.crt": cert.public_bytes(serialization.Encoding.PEM),
            "server.key": key_pem(key),
            "client-ca.crt": authority_cert.public_bytes(serialization.Encoding.PEM),
        }
        for filename, data in files.items():
            path = target / filename
            tmp = target / (filename + ".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            shutil.chown(tmp, "postgres", "postgres")
            os.replace(tmp, path)
        with self.admin() as db:
            db.execute(f"ALTER SYSTEM SET ssl_ca_file = '{target / 'client-ca.crt'}'")
            db.execute("SELECT pg_reload_conf()")
        self.tls_dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "root.crt").write_bytes(files["client-ca.crt"])

    def cert_url(self, database: str, role: str, key: Any, cert: x509.Certificate) -> str:
        """A URL that logs ``role`` in with its client certificate (no password)."""
        assert self.tls_dir is not None
        crt = self.tls_dir / f"{role}.crt"
        pem = self.tls_dir / f"{role}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem(key))
        root = self.tls_dir / "root.crt"
        return (
            f"postgresql://{role}@localhost:{PORT}/{database}?sslmode=verify-full"
            f"&sslrootcert={root}&sslcert={crt}&sslkey={pem}&hostaddr={HOST}"
        )


def key_pem(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


def issue(
    authority_key: Any, authority_cert: x509.Certificate, common_name: str
) -> tuple[Any, x509.Certificate]:
    """A P-256 key and a TLS client certificate for ``common_name`` (the database role) signed
    by the authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    return key, builder.sign(authority_key, hashes.SHA256())


_SERVER: Server | None = None


def server() -> Server:
    """The test server, started (and installed) when needed."""
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    url = os.environ.get("EPRESCRIRE_TEST_PG_URL")
    if url:
        candidate = Server(url)
        with candidate.admin() as db:
            db.execute("SELECT 1")
    else:
        if not _reachable() or not PASSWORD_FILE.exists():
            subprocess.run(["bash", str(SCRIPT)], check=True, stdin=subprocess.DEVNULL)
        try:
            candidate = _local()
        except psycopg.OperationalError:
            # A cluster made again since the password file was written: the script sets it.
            subprocess.run(["bash", str(SCRIPT)], check=True, stdin=subprocess.DEVNULL)
            candidate = _local()
        candidate.sweep_orphans()  # only on the local cluster: the ids are this host's
    _SERVER = candidate
    atexit.register(_SERVER.close)
    return _SERVER


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _local() -> Server:
    password = PASSWORD_FILE.read_text().strip()
    local = Server(f"postgresql://postgres:{quote(password, safe='')}@{HOST}:{PORT}/postgres")
    with local.admin() as db:
        db.execute("SELECT 1")
    return local


def _reachable() -> bool:
    try:
        with psycopg.connect(f"postgresql://nobody@{HOST}:{PORT}/postgres", connect_timeout=3):
            pass
    except psycopg.OperationalError as e:
        return "authentication" in str(e) or "password" in str(e) or "does not exist" in str(e)
    return True


def stop_immediately() -> None:
    """``pg_ctlcluster VERSION CLUSTER stop -m immediate`` (a crash: no shutdown checkpoint)."""
    subprocess.run(
        ["pg_ctlcluster", _version(), CLUSTER, "stop", "-m", "immediate"],
        check=True,
        capture_output=True,
    )


def start() -> None:
    subprocess.run(
        ["pg_ctlcluster", _version(), CLUSTER, "start", "--", "-t", "300"],
        check=True,
        capture_output=True,
    )
