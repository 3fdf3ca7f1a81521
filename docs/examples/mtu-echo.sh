#!/usr/bin/env bash
# docs/examples/mtu-echo.sh: docs/examples/mtu.sh with MODE=echo. Needs
# root. Prints the block after <!-- example: mtu-echo -->.
# docs-needs: root
set -euo pipefail
MODE=echo exec "$(dirname "$0")/mtu.sh"
