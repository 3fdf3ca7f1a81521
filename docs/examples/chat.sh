#!/usr/bin/env bash
# docs/examples/chat.sh: a chat between two terminals, alice and bob, each
# typing into dgram chat (here through a pipe: every line is a message).
# bob leaves before alice's last message, which fails at once: his closed
# port answers ICMP port unreachable. Prints the block after
# <!-- example: chat -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

a=127.0.0.1:20020
b=127.0.0.1:20021
background alice dgram chat --bind "$a" --peer "$b" --name alice --no-history
background bob dgram chat --bind "$b" --peer "$a" --name bob --no-history
wait_for alice '^chat on'
wait_for bob '^chat on'
type_line alice "hi bob"
wait_for alice '"hi bob"  ok'
wait_for bob '"hi bob"'
type_line bob "hi alice! bye for now"
wait_for bob '"hi alice! bye for now"  ok'
wait_for alice '"hi alice! bye for now"'
close_input bob
finish bob
type_line alice "bob? are you still there?"
wait_for alice 'failed'
close_input alice
finish alice
echo "terminal 1:"
echo "\$ dgram chat --bind $a --peer $b --name alice"
output alice
echo
echo "terminal 2:"
echo "\$ dgram chat --bind $b --peer $a --name bob"
output bob
