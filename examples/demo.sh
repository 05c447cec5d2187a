#!/usr/bin/env bash
# The main job on the demo material: issue the reference prescription, verify it.
set -euo pipefail
cd "$(dirname "$0")/.."
export EPRESCRIRE_PASSPHRASE=demo-only
OUT=demo-out
rm -rf "$OUT" && mkdir -p "$OUT"
eprescrire issue examples/reference.toml --key keys/demo-prescriber.p12 --out "$OUT/rx.json"
eprescrire verify "$OUT/rx.json" --trust keys/demo-trust
