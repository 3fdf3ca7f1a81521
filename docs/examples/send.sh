#!/usr/bin/env bash
# docs/examples/send.sh: dgram send to an echo server (dgram listen --echo),
# lines from stdin, and to a port where nothing listens. Prints the block
# after <!-- example: send -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

echo_addr=127.0.0.1:20060
closed=127.0.0.1:20061
background echo dgram listen "$echo_addr" --echo
wait_for echo '^reports:'
show dgram send "$echo_addr" hello
show dgram send "$echo_addr" --hex 00ff10
echo "\$ printf 'a\\n\\nb\\r\\n' | dgram send $echo_addr --wait 100"
printf 'a\n\nb\r\n' | dgram send "$echo_addr" --wait 100 2>&1
show dgram send "$closed" hello || echo "(exit status $?)"
