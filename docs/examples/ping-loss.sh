#!/usr/bin/env bash
# docs/examples/ping-loss.sh: dgram ping to a Python echo server that
# drops every third datagram. Prints the block after
# <!-- example: ping-loss -->.
# The histogram's rows (their ranges and counts) depend on the machine:
# docs-mask: (?m)(^ *[0-9.]+ (ns|µs|ms|s) to .*(\n|$))+
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20170
background echo python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 20170))
print("bound", flush=True)
n = 0
while True:
    data, peer = s.recvfrom(65535)
    n += 1
    if n % 3:
        s.sendto(data, peer)
'
wait_for echo '^bound'
show dgram ping "$addr" --count 6 --interval 200 --timeout 300
