#!/usr/bin/env bash
# Hospital discharge batch: issue the 200 prescriptions of examples/discharge.csv (one row per
# line, rows sharing an `rx` key form one prescription) to signed JSON + printable PDFs, using
# both cores, with a JSON log of what was issued. Runs as it is against the demo material.
# Issuing is done once per output directory: a second run finds the batch issued and issues
# nothing again (two signed papers for one discharge would both be valid). Remove the directory,
# or give another one, to issue a new batch. Usage: examples/discharge-batch.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
OUT=${1:-$ROOT/demo-out/discharge}
LOG=$OUT/issue-log.ndjson
if [ -f "$LOG" ]; then
  echo "discharge batch: already issued to $OUT ($(grep -c '"status":"issued"' "$LOG" || true) prescriptions, log: $LOG); remove $OUT to issue a new batch" >&2
  exit 0
fi
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "discharge batch: $OUT is not empty and holds no issue log; choose an empty directory" >&2
  exit 2
fi
mkdir -p "$OUT"
chmod 600 "$ROOT"/keys/*.p12

status=0
# The log is written under another name and renamed at the end: its presence means "done".
eprescrire issue "$ROOT/examples/discharge.csv" --key "$ROOT/keys/demo-prescriber.p12" \
  --out-dir "$OUT" --with-pdf --page A4 --jobs 2 --json > "$LOG.partial" || status=$?
mv "$LOG.partial" "$LOG"

issued=$(grep -c '"status":"issued"' "$OUT/issue-log.ndjson" || true)
echo "discharge batch: $issued prescriptions issued to $OUT (log: $OUT/issue-log.ndjson), exit $status" >&2
exit "$status"
