#!/usr/bin/env bash
# A counter session on the demo material: what a USB 2D scanner types, one code per line
# (ended by CR, as many scanners do), then a prescription number typed by hand from the paper,
# and dispensing from the session. Usage: examples/counter.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$ROOT/.venv/bin/eprescrire" ] && PATH="$ROOT/.venv/bin:$PATH"
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
WORK=$ROOT/demo-out/counter-session
TRUST=$ROOT/keys/demo-trust
LEDGER=$WORK/ledger.sqlite3
PHARMACIST=10012345673
chmod 600 "$ROOT"/keys/*.p12
rm -rf "$WORK" && mkdir -p "$WORK"

# Two prescriptions, and their QR codes as images.
for name in reference antibiotic; do
  eprescrire issue "$ROOT/examples/$name.toml" --key "$ROOT/keys/demo-prescriber.p12" \
    --out "$WORK/$name.json" --qr "$WORK/$name.png" --quiet
done
# What the scanner types: the text of each QR code (read here from the images with zxing-cpp).
python - "$WORK/reference.png" "$WORK/antibiotic.png" > "$WORK/codes.txt" <<'PY'
import sys
import zxingcpp
from PIL import Image
for path in sys.argv[1:]:
    print(zxingcpp.read_barcodes(Image.open(path))[0].text)
PY
REFERENCE=$(sed -n 1p "$WORK/codes.txt")
ANTIBIOTIC=$(sed -n 2p "$WORK/codes.txt")
NUMBER=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/reference.json")
# The number as a person types it from the paper: lower case, spaces for dashes.
TYPED=$(echo "${NUMBER:0:5} ${NUMBER:5:5} ${NUMBER:10}" | tr 'A-Z' 'a-z')

# The session: scan the first paper, dispense 1 box of its line 1; scan the second, dispense
# everything due; later the first paper's code is smudged: type its number, dispense the rest;
# then a code that is not a prescription.
echo "== session: scan, +1:1, scan, +, typed number, +, a foreign code" >&2
status=0
printf '%s\r+1:1\r%s\r+\r%s\r+\rhttps://example.org/not-a-prescription\r' \
    "$REFERENCE" "$ANTIBIOTIC" "$TYPED" \
  | eprescrire counter --trust "$TRUST" --ledger "$LEDGER" --pharmacist "$PHARMACIST" || status=$?

echo "== the same codes for other software: one JSON verdict per line" >&2
printf '%s\r\n%s\r\n' "$REFERENCE" "$ANTIBIOTIC" \
  | eprescrire counter --trust "$TRUST" --ledger "$LEDGER" --json --quiet > "$WORK/verdicts.ndjson" || true
echo "$(wc -l < "$WORK/verdicts.ndjson") verdicts in $WORK/verdicts.ndjson" >&2
eprescrire ledger verify --ledger "$LEDGER"
# The session's exit code: 3 here, because the last line was not a prescription.
echo "counter session exit $status" >&2
[ "$status" -eq 3 ]
