#!/usr/bin/env bash
# docs/examples/ping.sh: dgram ping, ping-pong, to dgram listen --echo.
# Prints the block after <!-- example: ping -->.
# The histogram's rows (their ranges and counts) depend on the machine:
# docs-mask: (?m)(^ *[0-9.]+ (ns|µs|ms|s) to .*(\n|$))+
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20070
background echo dgram listen "$addr" --echo --echo-rate 0
wait_for echo '^reports:'
show dgram ping "$addr" --count 1000 --interval 0
