#!/usr/bin/env bash
# docs/examples/json-ping.sh: dgram ping --json to dgram listen --echo.
# Prints the block after <!-- example: json-ping -->.
# How many histogram rows the round trips fill depends on the machine:
# docs-mask: "histogram":\[[^\]]*\]
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20210
background echo dgram listen "$addr" --echo --echo-rate 0
wait_for echo '^reports:'
show dgram ping "$addr" --count 2 --interval 100 --json
