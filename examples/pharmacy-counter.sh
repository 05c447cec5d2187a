#!/usr/bin/env bash
# A pharmacy counter session: verify and dispense every scan in a folder, keeping a JSON log.
# Without an argument, makes a folder of scans first (five examples printed and scanned at
# 150 dpi). Usage: examples/pharmacy-counter.sh [SCANS_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
WORK=$ROOT/demo-out/counter
TRUST=$ROOT/keys/demo-trust
LEDGER=$WORK/ledger.sqlite3
PHARMACIST=10012345673
PHARMACY=690004569
mkdir -p "$WORK"
chmod 600 "$ROOT"/keys/*.p12

SCANS=${1:-}
if [ -z "$SCANS" ]; then
  SCANS=$WORK/scans
  rm -rf "$SCANS" "$WORK/issued" && mkdir -p "$SCANS"
  eprescrire issue "$ROOT"/examples/*.toml --key "$ROOT/keys/demo-prescriber.p12" \
    --out-dir "$WORK/issued" --with-pdf --quiet
  python - "$WORK/issued" "$SCANS" <<'PY'
import pathlib, sys
import pypdfium2
for pdf in sorted(pathlib.Path(sys.argv[1]).glob("*.pdf")):
    page = pypdfium2.PdfDocument(pdf)[0]
    page.render(scale=150 / 72, grayscale=True).to_pil().save(pathlib.Path(sys.argv[2]) / (pdf.stem + ".png"))
PY
fi

LOG=$WORK/counter-log.ndjson
: > "$LOG"
# Verify the whole folder at once (both cores), then dispense each valid prescription.
# (The ledger, once it exists, makes verify report cancelled and fully dispensed prescriptions.)
LEDGER_OPTION=()
[ -f "$LEDGER" ] && LEDGER_OPTION=(--ledger "$LEDGER")
eprescrire verify "$SCANS"/* --trust "$TRUST" "${LEDGER_OPTION[@]}" --json --jobs 2 --quiet \
  > "$WORK/verify.ndjson" || true
while IFS= read -r line; do
  input=$(printf '%s' "$line" | python -c 'import json,sys; v=json.load(sys.stdin); print(v["input"] if v["status"]=="valid" else "")')
  [ -n "$input" ] || { printf '%s\n' "$line" >> "$LOG"; continue; }
  eprescrire dispense "$input" --trust "$TRUST" --ledger "$LEDGER" --all \
    --pharmacist "$PHARMACIST" --pharmacy "$PHARMACY" --json --quiet >> "$LOG" || true
done < "$WORK/verify.ndjson"
echo "counter session: $(wc -l < "$LOG") records in $LOG" >&2
eprescrire ledger verify --ledger "$LEDGER"
