#!/usr/bin/env bash
# docs/examples/mtu-blackhole.sh: docs/examples/mtu.sh with MODE=blackhole. Needs
# root. Prints the block after <!-- example: mtu-blackhole -->.
# docs-needs: root
set -euo pipefail
MODE=blackhole exec "$(dirname "$0")/mtu.sh"
