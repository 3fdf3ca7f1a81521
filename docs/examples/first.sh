#!/usr/bin/env bash
# docs/examples/first.sh: the README's first exchange between two
# terminals: a listener in terminal 1, two sends from terminal 2. Prints
# the block after <!-- example: first -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20000
background listener dgram listen "$addr"
wait_for listener '^reports:'
{
    show dgram send "$addr" hello
    wait_for listener '"hello"'
    show dgram send "$addr" --empty
    wait_for listener '<empty>'
} >"$DOCS_TMP/sender.out"
kill -INT "$(pid listener)"
finish listener
echo "terminal 1:"
echo "\$ dgram listen $addr"
output listener | sed 's/^summary/^Csummary/'
echo
echo "terminal 2:"
cat "$DOCS_TMP/sender.out"
