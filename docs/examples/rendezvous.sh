#!/usr/bin/env bash
# docs/examples/rendezvous.sh: dgram rendezvous on loopback, and two chats
# that meet there by their code's number (chat --via; their own screens
# are on nat.md). Prints the block after <!-- example: rendezvous -->.
# The code's number is random; how many datagrams and bytes the chats
# send depends on how many addresses their host has:
# docs-mask: paired \d+:
# docs-mask: \d+ datagrams in \(\d+ B\), \d+ out \(\d+ B\)
# docs-mask: \d+ STUN answered
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20040
echo "\$ dgram rendezvous $addr"
background rendezvous dgram rendezvous "$addr"
wait_for rendezvous '^rendezvous on'
background ann dgram chat --via "$addr" --code --name ann --no-history
wait_for ann '^rendezvous: the code'
code=$(grep -oE '[0-9]+-[a-z]+-[a-z]+-[a-z]+' "$DOCS_TMP/ann.out" | head -1)
background bob dgram chat --via "$addr" --code "$code" --name bob --no-history
wait_for rendezvous '^paired'
wait_for ann '^-- secure session'
wait_for bob '^-- secure session'
close_input bob
close_input ann
finish bob
finish ann
kill -TERM "$(pid rendezvous)"
finish rendezvous
output rendezvous
