#!/usr/bin/env bash
# docs/examples/keys.sh: a keyed chat. keygen makes a key file; a keyed
# listener refuses a plain datagram and takes the message of a chat that
# has the key, after the handshake; both show the same verify words.
# Prints the block after <!-- example: keys -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

cd "$DOCS_TMP"
addr=127.0.0.1:20030
show dgram keygen team.key
echo
echo "terminal 1:"
echo "\$ dgram listen $addr --key-file team.key"
background listener dgram listen "$addr" --key-file team.key
wait_for listener '^messages and receipts'
dgram send "$addr" "plain hello" --wait 0 2>/dev/null
wait_for listener '^!! refused'
echo "meet at noon" >"$DOCS_TMP/line"
dgram chat --peer "$addr" --key-file team.key --name ann --no-history <"$DOCS_TMP/line" >"$DOCS_TMP/ann.out" 2>&1
wait_for listener '"meet at noon"'
kill -INT "$(pid listener)"
finish listener
output listener | sed 's/^summary/^Csummary/'
echo
echo "terminal 2:"
echo "\$ echo 'meet at noon' | dgram chat --peer $addr --key-file team.key --name ann"
output ann
