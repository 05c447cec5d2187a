#!/usr/bin/env bash
# Regenerate the DEMO credentials in keys/ (demo authority, demo prescriber, demo pharmacy, demo trust store).
# Demo only: the passphrase is public ("demo-only"). Never use these keys for real prescriptions.
set -euo pipefail
cd "$(dirname "$0")/.."
E=${EPRESCRIRE:-eprescrire}
export EPRESCRIRE_PASSPHRASE=demo-only EPRESCRIRE_AUTHORITY_PASSPHRASE=demo-only
rm -rf keys/demo-trust keys/demo-authority.* keys/demo-prescriber.* keys/demo-pharmacy.*
$E keys authority --name "eprescrire DEMO authority (not for real use)" \
  --organization "eprescrire demo" --out keys/demo-authority \
  --not-before 2025-01-01 --days 7300 --crl-days 3650
$E keys prescriber --authority keys/demo-authority.p12 --name "Dr Claire Martin" \
  --rpps 10003456786 --specialty "Médecine générale" --out keys/demo-prescriber.p12 \
  --not-before 2025-01-01 --days 3650
# The demo pharmacy (checkpoints, consent records; role pharmacy_750001232 on a shared ledger).
$E keys pharmacy --authority keys/demo-authority.p12 \
  --name "Pharmacie DEMO du Parc (not for real use)" --finess 750001232 --rpps 10009876540 \
  --out keys/demo-pharmacy.p12 --not-before 2025-01-01 --days 3650
$E trust add --trust keys/demo-trust keys/demo-authority.pem keys/demo-authority.crl.pem \
  keys/demo-prescriber.pem
