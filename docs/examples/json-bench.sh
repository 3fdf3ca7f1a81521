#!/usr/bin/env bash
# docs/examples/json-bench.sh: dgram bench --loopback --json, paced.
# Prints the block after <!-- example: json-bench -->.
# Rates and the counts of calls depend on the machine:
# docs-mask: "[a-z_]*(per_sec|_calls)":[0-9.e+-]+
# A paced sender keeps its schedule only as well as the machine lets it: the
# rate achieved, the sends that fell behind and the time taken vary with load:
# docs-mask: achieved [0-9.,]+/s
# docs-mask: [0-9]+ late \(
# docs-mask: "(achieved_rate|elapsed_s)":[0-9.e+-]+
# docs-mask: "late":[0-9]+(?=,"(slipped_us|rate)")
set -euo pipefail
source "$(dirname "$0")/lib.bash"

show dgram bench --loopback --json --duration 0.2 --rate 1k
