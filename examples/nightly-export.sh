#!/usr/bin/env bash
# Nightly job: check the ledger's hash chain, write a signed checkpoint of its head, and export
# every record as JSON lines and CSV with a dated name. Exits non-zero (and exports nothing) if
# the ledger was tampered with. File names carry the date and time, so that the job may run
# several times a day. Usage: examples/nightly-export.sh [LEDGER] [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
LEDGER=${1:-$ROOT/demo-out/counter/ledger.sqlite3}
OUT=${2:-$ROOT/demo-out/exports}
DAY=$(date +%Y-%m-%dT%H%M%S)
mkdir -p "$OUT"
chmod 600 "$ROOT"/keys/*.p12

eprescrire ledger verify --ledger "$LEDGER"
# Checkpoints are signed with pharmacy credentials (keys pharmacy), never a prescriber's key.
eprescrire ledger checkpoint --ledger "$LEDGER" --key "$ROOT/keys/demo-pharmacy.p12" \
  --out "$OUT/checkpoint-$DAY.json"
# Checked against the trust store: only a pharmacy certificate of a trusted authority counts.
eprescrire ledger verify --ledger "$LEDGER" --checkpoint "$OUT/checkpoint-$DAY.json" \
  --trust "$ROOT/keys/demo-trust" --quiet
eprescrire ledger export --ledger "$LEDGER" --format jsonl --out "$OUT/ledger-$DAY.jsonl"
eprescrire ledger export --ledger "$LEDGER" --format csv --out "$OUT/ledger-$DAY.csv"
echo "nightly export: $(wc -l < "$OUT/ledger-$DAY.jsonl") records to $OUT/ledger-$DAY.*" >&2
