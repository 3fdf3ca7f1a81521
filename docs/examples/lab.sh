#!/usr/bin/env bash
# docs/examples/lab.sh: three of dgram lab's experiments on loopback.
# Prints the block after <!-- example: lab -->.
# docs-mask: TCP read +\d+ +[0-9, ]+
# docs-mask: came back in \d+ reads?
# docs-mask: \d+ bytes in 9 messages
set -euo pipefail
source "$(dirname "$0")/lib.bash"

show dgram lab boundaries empty truncation
