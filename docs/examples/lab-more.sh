#!/usr/bin/env bash
# docs/examples/lab-more.sh: dgram lab's list, and two more experiments.
# Prints the block after <!-- example: lab-more -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

show dgram lab --list
show dgram lab max-payload downed
