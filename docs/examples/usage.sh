#!/usr/bin/env bash
# docs/examples/usage.sh: addresses and numbers dgram refuses, and the exit
# status of a usage error. Prints the block after <!-- example: usage -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

for args in "send fe80::1:9000 hi" "send 127.0.0.1:20050 --size 1.5" "ping 127.0.0.1:20050 --count 2h"; do
    # shellcheck disable=SC2086 # the words of each command
    show dgram $args || echo "(exit status $?)"
done
