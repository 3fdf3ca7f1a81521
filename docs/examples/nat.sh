#!/usr/bin/env bash
# docs/examples/nat.sh: two chats behind two home routers (network
# namespaces this script builds: an "internet" bridge, a server running
# dgram rendezvous, two routers doing masquerade with a home router's
# input policy, a host behind each) meet by their code's number and find
# a direct path through both NATs. Needs root; removes its namespaces on
# every way out. Prints the block after <!-- example: nat -->.
# docs-needs: root
# The second STUN server's answer (and the NAT kind it tells) races the
# rendezvous's: its two lines come before or after the registration's.
# docs-ignore: (?m)^\S+:20141 sees this side at \S+\nthis side is behind a NAT[^\n]*\n
# How many probes and acks the search took depends on timing:
# docs-mask: the search sent [0-9]+ datagrams \([0-9]+ B\) and received [0-9]+ \([0-9]+ B\)
set -euo pipefail
source "$(dirname "$0")/lib.bash"

P=dgram-docs-nat-$$
made=()
remove_namespaces() {
    docs_cleanup
    local name
    for name in "${made[@]}"; do ip netns delete "$name" 2>/dev/null || true; done
}
trap remove_namespaces EXIT
ns() {
    made+=("$P-$1")
    ip netns add "$P-$1"
    ip -n "$P-$1" link set lo up
}
attach() { # bridge port, namespace, address
    ip -n "$P-net" link add "$1" type veth peer name eth0 netns "$P-$2"
    ip -n "$P-net" link set "$1" master br0 up
    ip -n "$P-$2" addr add "$3" dev eth0
    ip -n "$P-$2" link set eth0 up
}
ns net
ip -n "$P-net" link add br0 type bridge
ip -n "$P-net" link set br0 up
ns server
attach srv server 203.0.113.10/24
for n in 1 2; do
    ns "r$n"
    attach "r$n" "r$n" "203.0.113.$n/24"
    ns "h$n"
    ip -n "$P-r$n" link add lan type veth peer name eth0 netns "$P-h$n"
    ip -n "$P-r$n" addr add "192.168.$n.1/24" dev lan
    ip -n "$P-r$n" link set lan up
    ip -n "$P-h$n" addr add "192.168.$n.2/24" dev eth0
    ip -n "$P-h$n" link set eth0 up
    ip -n "$P-h$n" route add default via "192.168.$n.1"
    ip netns exec "$P-r$n" nft -f - <<NFT
table ip nat {
  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "eth0" masquerade; }
}
table inet home {
  chain input { type filter hook input priority 0; policy drop;
    iifname "lo" accept; iifname "lan" accept; ct state established,related accept; }
  chain forward { type filter hook forward priority 0; policy drop;
    iifname "lan" accept; ct state established,related accept; }
}
NFT
    ip netns exec "$P-r$n" sysctl -qw net.ipv4.ip_forward=1
done

rv=203.0.113.10:20140
background rendezvous ip netns exec "$P-server" dgram rendezvous "$rv"
wait_for rendezvous '^rendezvous on'
background ann ip netns exec "$P-h1" dgram chat --via "$rv" --code --name ann --no-history
wait_for ann '^rendezvous: the code'
code=$(grep -oE '[0-9]+-[a-z]+-[a-z]+-[a-z]+' "$DOCS_TMP/ann.out" | head -1)
background bob ip netns exec "$P-h2" dgram chat --via "$rv" --code "$code" --name bob --no-history
wait_for ann '^-- secure session' 10
wait_for bob '^-- secure session' 10
type_line bob "hi ann, straight through both routers"
wait_for ann '"hi ann, straight through both routers"'
wait_for bob 'routers"  ok'
close_input bob
finish bob
close_input ann
finish ann
echo "terminal 1 (192.168.1.2, behind 203.0.113.1):"
echo "\$ dgram chat --via $rv --code --name ann"
output ann
echo
echo "terminal 2 (192.168.2.2, behind 203.0.113.2):"
echo "\$ dgram chat --via $rv --code $code --name bob"
output bob
