#!/usr/bin/env bash
# Install the system packages the test suite needs when they are missing (Debian).
# zbar for the second QR engine (pyzbar), SoftHSM2 and OpenSC for the PKCS#11 token tests;
# the default path needs no system library.
set -euo pipefail

# PKCS#11 token tests: SoftHSM2 (a software token) and OpenSC's pkcs11-tool.
if ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null \
  || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "system-deps: installing softhsm2 and opensc" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 opensc >/dev/null
  else
    echo "system-deps: softhsm2/opensc missing and not installable here (root on Debian needed); the token tests will fail" >&2
  fi
fi
if ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0'; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: libzbar0 missing and cannot be installed here; zbar tests will be skipped" >&2
  exit 0
fi
echo "system-deps: installing libzbar0" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzbar0 >/dev/null
