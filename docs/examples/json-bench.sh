#!/usr/bin/env bash
# docs/examples/json-bench.sh: dgram bench --loopback --json, paced.
# Prints the block after <!-- example: json-bench -->.
# Rates and the counts of calls depend on the machine:
# docs-mask: "[a-z_]*(per_sec|_calls)":[0-9.e+-]+
set -euo pipefail
source "$(dirname "$0")/lib.bash"

show dgram bench --loopback --json --duration 0.2 --rate 1k
