#!/usr/bin/env bash
# docs/examples/chat-pipe.sh: a piped dgram chat as a delivery-checked
# send: every line is a message, dgram listen acknowledges each, and the
# exit status says whether all were delivered. Prints the block after
# <!-- example: chat-pipe -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20090
background listener dgram listen "$addr"
wait_for listener '^reports:'
echo "\$ printf 'a\\n\\nb\\n' | dgram chat --peer $addr --name alice --no-history"
status=0
printf 'a\n\nb\n' | dgram chat --peer "$addr" --name alice --no-history 2>&1 || status=$?
echo "\$ echo \$?"
echo "$status"
