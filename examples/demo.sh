#!/usr/bin/env bash
# The main job on the demo material, end to end:
# issue the reference prescription with its PDF -> "scan" the paper (rasterise the PDF at 150 dpi)
# -> verify the scan offline -> dispense everything due -> show the dispensing status.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/eprescrire ] && PATH="$PWD/.venv/bin:$PATH"   # works without an activated venv
if ! command -v eprescrire >/dev/null; then
  echo "demo.sh: eprescrire is not installed: run make demo (or make install) first" >&2
  exit 4
fi
chmod 600 keys/*.p12
export EPRESCRIRE_PASSPHRASE=demo-only          # demo key only: see keys/README.md
OUT=demo-out
TRUST=keys/demo-trust
LEDGER=$OUT/ledger.sqlite3
PHARMACIST=10012345673                          # a demo pharmacist RPPS
PHARMACY=690004569                              # a demo pharmacy FINESS
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== issue: examples/reference.toml -> $OUT/rx.json + $OUT/rx.pdf"
ID=$(eprescrire issue examples/reference.toml --key keys/demo-prescriber.p12 \
       --out "$OUT/rx.json" --pdf "$OUT/rx.pdf" --json \
     | python -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "identifier $ID"

echo "== scan: the printed page at 150 dpi -> $OUT/scan.png"
python - "$OUT/rx.pdf" "$OUT/scan.png" <<'PY'
import sys
import pypdfium2
page = pypdfium2.PdfDocument(sys.argv[1])[0]
page.render(scale=150 / 72, grayscale=True).to_pil().save(sys.argv[2])
PY

echo "== verify the scan offline"
eprescrire verify "$OUT/scan.png" --trust "$TRUST"

echo "== dispense everything due"
eprescrire dispense "$OUT/scan.png" --trust "$TRUST" --ledger "$LEDGER" --all \
  --pharmacist "$PHARMACIST" --pharmacy "$PHARMACY"

echo "== a second dispensing of the same paper is refused"
if eprescrire dispense "$OUT/scan.png" --trust "$TRUST" --ledger "$LEDGER" --all \
     --pharmacist "$PHARMACIST" --pharmacy "$PHARMACY"; then
  echo "unexpected: dispensed twice" >&2; exit 1
fi

echo "== status"
eprescrire status "$ID" --ledger "$LEDGER"
eprescrire ledger verify --ledger "$LEDGER"
