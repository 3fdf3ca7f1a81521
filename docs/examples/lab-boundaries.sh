#!/usr/bin/env bash
# docs/examples/lab-boundaries.sh: dgram lab's first experiment, for the
# README's tour. Prints the block after <!-- example: lab-boundaries -->.
# docs-mask: TCP read +\d+ +[0-9, ]+
# docs-mask: came back in \d+ reads?
# docs-mask: \d+ bytes in 9 messages
set -euo pipefail

echo "\$ dgram lab boundaries"
dgram lab boundaries
