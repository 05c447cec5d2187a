#!/usr/bin/env bash
# Two pharmacies and a prescriber on one shared ledger (a local PostgreSQL): a paper fully
# dispensed at pharmacy A is refused at pharmacy B, and the prescriber sees both pharmacies'
# records unless the patient opposed it. Run as root on Debian (PostgreSQL is installed and a
# local cluster started by scripts/postgres-test-cluster.sh when missing).
# Sites log in with SCRAM passwords here; docs/scaling.md shows client certificates.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
PORT=${PGTEST_PORT:-54329}
WORK=$ROOT/demo-out/shared-ledger
TRUST=$ROOT/keys/demo-trust
rm -rf "$WORK" && mkdir -p "$WORK" && chmod 700 "$WORK"
chmod 600 "$ROOT"/keys/*.p12

bash "$ROOT/scripts/postgres-test-cluster.sh"
SUPERUSER_PASSWORD=$(cat /var/lib/postgresql/eprescrire-test-superuser.password)
DB=shared_demo
runuser -u postgres -- psql -q -p "$PORT" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
for role in pharmacie_a pharmacie_b dr_martin; do
  runuser -u postgres -- psql -q -p "$PORT" -c "DROP ROLE IF EXISTS $role" >/dev/null
done
runuser -u postgres -- createdb -p "$PORT" "$DB"
ADMIN="postgresql://postgres:$SUPERUSER_PASSWORD@127.0.0.1:$PORT/$DB"

echo "== the administrator creates the ledger's schema, roles and grants"
eprescrire ledger init --ledger "$ADMIN"

echo "== each site is added from its certificate"
site() {  # NAME: a key and a certificate whose common name is the role, and a password
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$1" -keyout "$WORK/$1.key" -out "$WORK/$1.pem" 2>/dev/null
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/$1.password")
}
site pharmacie_a && site pharmacie_b
(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/dr_martin.password")
eprescrire ledger add-site "$WORK/pharmacie_a.pem" --kind pharmacy --finess 750001232 \
  --rpps 10009876540 --password-file "$WORK/pharmacie_a.password" --ledger "$ADMIN"
eprescrire ledger add-site "$WORK/pharmacie_b.pem" --kind pharmacy --finess 750001240 \
  --password-file "$WORK/pharmacie_b.password" --ledger "$ADMIN"
eprescrire ledger add-site "$ROOT/keys/demo-prescriber.pem" --kind prescriber --role dr_martin \
  --password-file "$WORK/dr_martin.password" --ledger "$ADMIN"
url() { echo "postgresql://$1:$(cat "$WORK/$1.password")@127.0.0.1:$PORT/$DB"; }
A=$(url pharmacie_a); B=$(url pharmacie_b); DR=$(url dr_martin)

echo "== Dr Martin issues a prescription"
eprescrire issue "$ROOT/examples/antibiotic.toml" --key "$ROOT/keys/demo-prescriber.p12" \
  --out "$WORK/rx.json" --quiet
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/rx.json")

echo "== pharmacy A dispenses the whole prescription"
eprescrire dispense "$WORK/rx.json" --trust "$TRUST" --ledger "$A" --all \
  --pharmacist 10009876540 --pharmacy 750001232
echo "== pharmacy B is shown the same paper (a photocopy): refused"
set +e
eprescrire dispense "$WORK/rx.json" --trust "$TRUST" --ledger "$B" --all \
  --pharmacist 10003456786 --pharmacy 750001240
echo "(exit $?: refused)"
set -e
echo "== the prescriber follows what was dispensed"
eprescrire status "$ID" --ledger "$DR" --as-prescriber --key "$ROOT/keys/demo-prescriber.p12"
echo "== the patient opposes sharing at pharmacy A; the prescriber no longer sees dispensings"
# Consent is signed by who records it: here the demo pharmacy's credentials (its pharmacist,
# RPPS 10009876540, is pharmacie_a's registered pharmacist).
eprescrire consent "$ID" --oppose --ledger "$A" --key "$ROOT/keys/demo-pharmacy.p12" --trust "$TRUST"
eprescrire status "$ID" --ledger "$DR" --as-prescriber --key "$ROOT/keys/demo-prescriber.p12"
echo "== as pharmacy A, plain SQL cannot rewrite history"
set +e
PGPASSWORD=$(cat "$WORK/pharmacie_a.password") psql -h 127.0.0.1 -p "$PORT" -U pharmacie_a "$DB" \
  -c "DELETE FROM ledger.records" 2>&1 | tail -1
set -e
echo "== the administrator checks every prescription's chain"
eprescrire ledger verify --ledger "$ADMIN"
