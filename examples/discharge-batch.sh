#!/usr/bin/env bash
# Hospital discharge batch: issue the 200 prescriptions of examples/discharge.csv (one row per
# line, rows sharing an `rx` key form one prescription) to signed JSON + printable PDFs, using
# both cores, with a JSON log of what was issued. Runs as it is against the demo material.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
OUT=${1:-$ROOT/demo-out/discharge}
mkdir -p "$OUT"
chmod 600 "$ROOT"/keys/*.p12

status=0
eprescrire issue "$ROOT/examples/discharge.csv" --key "$ROOT/keys/demo-prescriber.p12" \
  --out-dir "$OUT" --with-pdf --page A4 --jobs 2 --json > "$OUT/issue-log.ndjson" || status=$?

issued=$(grep -c '"status":"issued"' "$OUT/issue-log.ndjson" || true)
echo "discharge batch: $issued prescriptions issued to $OUT (log: $OUT/issue-log.ndjson), exit $status" >&2
exit "$status"
