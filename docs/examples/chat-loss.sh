#!/usr/bin/env bash
# docs/examples/chat-loss.sh: a chat over a lossy path. Between alice and
# bob sits a small UDP relay in Python that drops, from alice to bob, the
# first copy of any datagram holding "retried" and every copy of one
# holding "lost". alice's second message is delivered by its retry, her
# third fails after its tries, and bob sees its number missing when the
# fourth comes. Each side types through a pipe. Prints the block after
# <!-- example: chat-loss -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

a=127.0.0.1:20120
b=127.0.0.1:20121
background relay python3 -c '
import select, socket
to_bob = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to_bob.bind(("127.0.0.1", 20122))  # alice sends here; bob hears alice from 20123
to_alice = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to_alice.bind(("127.0.0.1", 20123))
print("relaying", flush=True)
seen = set()
while True:
    ready, _, _ = select.select([to_bob, to_alice], [], [])
    for sock in ready:
        data, _ = sock.recvfrom(65535)
        if sock is to_bob:
            if b"lost" in data or (b"retried" in data and b"retried" not in seen):
                seen.add(b"retried")
                continue
            to_alice.sendto(data, ("127.0.0.1", 20121))
        else:
            to_bob.sendto(data, ("127.0.0.1", 20120))
'
wait_for relay '^relaying'
background alice dgram chat --bind "$a" --peer 127.0.0.1:20122 --name alice --retries 1 --no-history
background bob dgram chat --bind "$b" --peer 127.0.0.1:20123 --name bob --no-history
wait_for alice '^chat on'
wait_for bob '^chat on'
type_line alice "one"
wait_for alice '"one"  ok'
type_line alice "two, retried"
wait_for alice '#2 to .* delivered'
type_line alice "three, lost"
wait_for alice '#3 to .* failed'
type_line alice "four"
wait_for alice '"four"  ok'
wait_for bob '"four"'
close_input bob
finish bob
close_input alice
finish alice
echo "terminal 1:"
echo "\$ dgram chat --bind $a --peer 127.0.0.1:20122 --name alice --retries 1"
output alice
echo
echo "terminal 2:"
echo "\$ dgram chat --bind $b --peer 127.0.0.1:20123 --name bob"
output bob
