#!/usr/bin/env bash
# Run every benchmark in turn (each prints its figures and its ratio to a baseline measured in
# the same run). Takes about half an hour on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in qr_size startup verify_latency counter_latency verify_throughput bare_page issue_throughput token_throughput robustness \
              ledger_throughput ledger_concurrency ledger_crash ledger_tamper; do
  echo "=== bench/$script.py"
  python "bench/$script.py"
done
