#!/usr/bin/env bash
# A PostgreSQL cluster for the shared-ledger tests (Debian): installed when missing, created with
# pg_createcluster and started with pg_ctlcluster (both run the server as `postgres`; root may
# not run initdb). Idempotent. Listens on 127.0.0.1 only; the superuser's SCRAM password is
# random and kept in a 0600 file read by tests/postgres_support.py.
#   PGTEST_PORT (default 54329), PGTEST_CLUSTER (default eprescrire-test)
set -euo pipefail
# pg_createcluster refuses an environment locale that is not installed; C.UTF-8 always is.
export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE
PORT="${PGTEST_PORT:-54329}"
NAME="${PGTEST_CLUSTER:-eprescrire-test}"
STATE="${PGTEST_STATE:-/var/lib/postgresql/eprescrire-test-superuser.password}"

if ! command -v pg_createcluster >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "postgres-test-cluster: PostgreSQL is missing and cannot be installed here (need root on Debian)" >&2
    exit 1
  fi
  echo "postgres-test-cluster: installing postgresql" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if [ "$(id -u)" != 0 ]; then
  echo "postgres-test-cluster: run as root (pg_createcluster/pg_ctlcluster switch to postgres)" >&2
  exit 1
fi
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$NAME"; then
  echo "postgres-test-cluster: creating cluster $VERSION/$NAME on port $PORT" >&2
  pg_createcluster -q "$VERSION" "$NAME" -p "$PORT" --locale C.UTF-8 --start-conf=manual -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  CONF="/etc/postgresql/$VERSION/$NAME"
  cat >>"$CONF/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
max_connections = 200
recovery_init_sync_method = syncfs
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$CONF/server.crt'
ssl_key_file = '$CONF/server.key'
CONF
  # A placeholder server certificate; the tests install one from their own authority.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=localhost" -keyout "$CONF/server.key" -out "$CONF/server.crt" 2>/dev/null
  chown postgres:postgres "$CONF/server.key" "$CONF/server.crt"
  chmod 600 "$CONF/server.key"
  cat >"$CONF/pg_hba.conf" <<HBA
# eprescrire test cluster: the superuser over the socket (peer) or TCP (SCRAM); sites that
# authenticate with a client certificate are members of eprescrire_cert.
local   all  postgres                      peer
hostssl all  +eprescrire_cert 127.0.0.1/32 cert
host    all  all              127.0.0.1/32 scram-sha-256
HBA
fi
CONF="/etc/postgresql/$VERSION/$NAME"
# After an unclean stop the server syncs its data directory before recovery; syncfs does it
# in one call per file system instead of one fsync per file (clusters made before this line).
if ! grep -q '^recovery_init_sync_method' "$CONF/postgresql.conf"; then
  echo "recovery_init_sync_method = syncfs" >>"$CONF/postgresql.conf"
fi
if ! pg_lsclusters -h | awk -v n="$NAME" '$2 == n {print $4}' | grep -qx online; then
  # Crash recovery of a large data directory can outlast pg_ctl's default 60 s wait.
  if ! pg_ctlcluster "$VERSION" "$NAME" start -- -t 300; then
    # The cluster holds nothing but test databases: one that cannot start is made again.
    if [ -n "${PGTEST_REMADE:-}" ]; then
      echo "postgres-test-cluster: $VERSION/$NAME made again and still does not start" >&2
      exit 1
    fi
    echo "postgres-test-cluster: $VERSION/$NAME does not start; dropping and creating it again" >&2
    pg_dropcluster "$VERSION" "$NAME" --stop || pg_dropcluster "$VERSION" "$NAME"
    PGTEST_REMADE=1 exec bash "$0" "$@"
  fi
fi
# The superuser's password: made once, and set again on every run (a cluster made afresh, or
# dropped and made again, still matches the file the tests read).
if [ ! -s "$STATE" ]; then
  umask 077
  head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$STATE.tmp"
  printf '\n' >>"$STATE.tmp"
  mv "$STATE.tmp" "$STATE"
fi
PASSWORD="$(head -n 1 "$STATE")"
for _ in $(seq 1 30); do  # a cluster just started may not accept connections yet
  if runuser -u postgres -- psql -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
    -c "ALTER ROLE postgres PASSWORD '$PASSWORD'" </dev/null >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
runuser -u postgres -- psql -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -c "SELECT 1" </dev/null >/dev/null
echo "postgres-test-cluster: $VERSION/$NAME online on 127.0.0.1:$PORT" >&2
