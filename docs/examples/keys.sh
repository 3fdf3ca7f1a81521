#!/usr/bin/env bash
# docs/examples/keys.sh: a keyed chat. keygen makes a key file; a keyed
# listener refuses a plain datagram and takes the message of a chat that
# has the key, after the handshake (ann types her line once it is open);
# both show the same verify words.
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
# ann types once the session is open (a line given before waits for it,
# and goes out with the handshake's last step).
background ann dgram chat --peer "$addr" --key-file team.key --name ann --no-history
wait_for ann '^-- secure session'
type_line ann "meet at noon"
wait_for listener '"meet at noon"'
wait_for ann '"meet at noon"  ok'
close_input ann
finish ann
kill -INT "$(pid listener)"
finish listener
output listener | sed 's/^summary/^Csummary/'
echo
echo "terminal 2:"
echo "\$ dgram chat --peer $addr --key-file team.key --name ann"
output ann
