#!/usr/bin/env bash
# docs/examples/mtu-cut.sh: dgram mtu on loopback against socat's PIPE
# echo, which sends back at most 8192 bytes of a datagram: the probe it
# cuts short ends the search with the echo's limit.
# Prints the block after <!-- example: mtu-cut -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

background echo socat -d -d UDP-RECVFROM:24310,fork,bind=127.0.0.1 PIPE
wait_for echo 'receiving on'
show dgram mtu 127.0.0.1:24310 --bind 127.0.0.1:24311
