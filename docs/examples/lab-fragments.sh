#!/usr/bin/env bash
# docs/examples/lab-fragments.sh: dgram lab fragments, which builds and
# removes its own network namespaces. Needs root. Prints the block after
# <!-- example: lab-fragments -->.
# docs-needs: root
set -euo pipefail
echo "\$ dgram lab fragments"
timeout 30 dgram lab fragments
