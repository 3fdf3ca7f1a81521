#!/usr/bin/env bash
# docs/examples/send-one-peer.sh: dgram send to a port held by a program
# that takes datagrams from one peer only (a UDP socket connected to its
# first peer, as nc -u -l does; here three lines of Python). Prints the
# block after <!-- example: send-one-peer -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20160
background onepeer python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 20160))
print("bound", flush=True)
data, peer = s.recvfrom(65535)
s.connect(peer)
print("connected", flush=True)
sys.stdin.read()
'
wait_for onepeer '^bound'
show dgram send "$addr" first
wait_for onepeer '^connected'
show dgram send "$addr" second || echo "(exit status $?)"
