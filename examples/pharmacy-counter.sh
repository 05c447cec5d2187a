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
# Verify and dispense everything due on every scan of the folder, decoding on both cores;
# one object per scan in the log (dispensed, refused, rejected or unreadable).
status=0
eprescrire dispense "$SCANS"/* --trust "$TRUST" --ledger "$LEDGER" --all \
  --pharmacist "$PHARMACIST" --pharmacy "$PHARMACY" --jobs 2 --json --quiet > "$LOG" || status=$?
echo "counter session: $(grep -c '"status":"dispensed"' "$LOG" || true) of $(wc -l < "$LOG") scans dispensed (log: $LOG), exit $status" >&2
eprescrire ledger verify --ledger "$LEDGER"
exit "$status"     # the dispense exit code: 1 if any scan was refused, 3 if any was unreadable
