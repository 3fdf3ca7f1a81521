#!/usr/bin/env bash
# docs/examples/groups.sh: a multicast group chat of three members on the
# loopback interface (each typing through a pipe): every member
# acknowledges each message (each member binds its own port, so that the
# summaries list them in one order); cat vanishes without a bye before bob's
# message, whose line then names who is missing. Prints the block after
# <!-- example: groups -->.
# The order of the names after a tick is the order the receipts came:
# docs-mask: \((bob, cat|cat, bob)\)
set -euo pipefail
source "$(dirname "$0")/lib.bash"

group=239.1.2.3:20100
background ann dgram chat --group "$group" --iface lo --bind 127.0.0.1:20101 --name ann --no-history
wait_for ann '^chat on'
background bob dgram chat --group "$group" --iface lo --bind 127.0.0.1:20102 --name bob --no-history
wait_for ann 'bob .* joined'
wait_for bob 'ann .* joined'
background cat dgram chat --group "$group" --iface lo --bind 127.0.0.1:20103 --name cat --no-history
wait_for ann '2 members now'
wait_for bob '2 members now'
wait_for cat '2 members now'
type_line ann "hello room, ann here"
wait_for ann '✓ 2/2'
wait_for bob '"hello room, ann here"'
wait_for cat '"hello room, ann here"'
cat_pid=$(pid cat)
{ kill -KILL "$cat_pid" && wait "$cat_pid"; } 2>/dev/null || true
type_line bob "did everyone get this?"
wait_for bob 'cat missing'
wait_for ann '"did everyone get this\?"'
close_input bob
finish bob
wait_for ann 'bob .* left'
close_input ann
finish ann
echo "terminal 1:"
echo "\$ dgram chat --group $group --iface lo --bind 127.0.0.1:20101 --name ann"
output ann
echo
echo "terminal 2:"
echo "\$ dgram chat --group $group --iface lo --bind 127.0.0.1:20102 --name bob"
output bob
