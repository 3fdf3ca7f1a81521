#!/usr/bin/env bash
# docs/examples/mtu.sh: dgram mtu across a path with a 1400-byte link.
# Builds three network namespaces in a line, A - R - B (A-R at MTU 1500,
# R-B at MTU 1400, R routing), runs dgram listen in B and dgram mtu in A.
# With MODE=blackhole, R's ICMP "fragmentation needed" is dropped by
# nftables first; with MODE=echo, B runs a Python echo server instead of
# dgram listen. Needs root; removes its namespaces on every way out.
# Prints the block after <!-- example: mtu --> (mtu-blackhole, mtu-echo).
# docs-needs: root
set -euo pipefail

MODE=${MODE:-icmp}
P=dgram-docs-mtu-$$
PORT=24100
made=()
pids=()
cleanup() {
    local pid name
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for name in "${made[@]}"; do ip netns delete "$name" 2>/dev/null || true; done
}
trap cleanup EXIT
for h in a r b; do
    made+=("$P-$h")
    ip netns add "$P-$h"
    ip -n "$P-$h" link set lo up
done
ip -n "$P-a" link add eth0 type veth peer name eth0 netns "$P-r"
ip -n "$P-r" link add eth1 type veth peer name eth0 netns "$P-b"
ip -n "$P-r" link set eth1 mtu 1400
ip -n "$P-b" link set eth0 mtu 1400
for x in "a eth0 10.78.1.1/24" "r eth0 10.78.1.2/24" "r eth1 10.78.2.1/24" "b eth0 10.78.2.2/24"; do
    set -- $x
    ip -n "$P-$1" addr add "$3" dev "$2"
    ip -n "$P-$1" link set "$2" up
done
ip -n "$P-a" route add default via 10.78.1.2
ip -n "$P-b" route add default via 10.78.2.1
ip netns exec "$P-r" sysctl -qw net.ipv4.ip_forward=1
if [ "$MODE" = blackhole ]; then
    ip netns exec "$P-r" nft -f - <<'NFT'
table inet blackhole {
  chain out { type filter hook output priority 0; policy accept;
    icmp type destination-unreachable counter drop; }
}
NFT
fi
if [ "$MODE" = echo ]; then
    ip netns exec "$P-b" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.78.2.2', $PORT))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
" >/dev/null 2>&1 &
else
    ip netns exec "$P-b" dgram listen "10.78.2.2:$PORT" >/dev/null 2>&1 &
fi
pids=("$!")
# Bounded wait for B's port to be bound.
for _ in $(seq 100); do
    ip netns exec "$P-b" ss -Hlun "sport = :$PORT" | grep -q . && break
    sleep 0.05
done
echo "\$ dgram mtu 10.78.2.2:$PORT --bind 0.0.0.0:$((PORT + 1))"
ip netns exec "$P-a" timeout 20 dgram mtu "10.78.2.2:$PORT" --bind "0.0.0.0:$((PORT + 1))"
