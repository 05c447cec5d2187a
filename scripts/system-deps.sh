#!/usr/bin/env bash
# Install the system packages the test suite needs when they are missing (Debian).
# Only zbar, for the second QR engine (pyzbar); the default path needs no system library.
set -euo pipefail
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
