#!/usr/bin/env bash
# docs/examples/json.sh: dgram listen --json as an echo server, sent a
# datagram by dgram send and a message by a piped dgram chat --json; then
# stopped. Prints the block after <!-- example: json -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20110
echo "\$ dgram listen $addr --json --echo"
background listener dgram listen "$addr" --json --echo
wait_for listener '"event":"listening"'
dgram send "$addr" hello --wait 0 >/dev/null 2>&1
wait_for listener '"kind":"echo"'
echo hi >"$DOCS_TMP/line"
dgram chat --peer "$addr" --name ann --no-history --json --linger 0 <"$DOCS_TMP/line" >"$DOCS_TMP/chat.out" 2>&1
wait_for listener '"event":"message"'
kill -INT "$(pid listener)"
finish listener
output listener
echo
echo "\$ echo hi | dgram chat --peer $addr --name ann --json"
output chat
