#!/usr/bin/env bash
# docs/examples/pcap.sh: prints the example of docs/pcap.md (the block
# after `<!-- example: pcap -->`). A listener records what it receives with
# --pcap (its --max-size cuts the second datagram short); two sends, one
# of them recording too; tshark reads both files.
# Needs: dgram on PATH, tshark. Ports 24200-24209 on 127.0.0.1.
set -euo pipefail

dir=$(mktemp -d)
listener=
cleanup() {
    if [[ -n $listener ]]; then
        kill "$listener" 2>/dev/null || true
        wait "$listener" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

# The listener's own lines are not part of the example: they go to a file,
# and the script waits (bounded) for its first one, the sign it is bound.
echo '$ dgram listen 127.0.0.1:24200 --max-size 16 --count 2 --pcap in.pcap &'
dgram listen 127.0.0.1:24200 --max-size 16 --count 2 --pcap in.pcap >listen.out 2>&1 &
listener=$!
for _ in $(seq 100); do
    [[ -s listen.out ]] && break
    sleep 0.05
done

echo '$ dgram send 127.0.0.1:24200 hello --bind 127.0.0.1:24201 --pcap out.pcap'
dgram send 127.0.0.1:24200 hello --bind 127.0.0.1:24201 --pcap out.pcap 2>&1
echo '$ dgram send 127.0.0.1:24200 --size 1000 --bind 127.0.0.1:24202'
dgram send 127.0.0.1:24200 --size 1000 --bind 127.0.0.1:24202 2>&1

# --count 2: the listener ends by itself; a bounded wait all the same.
for _ in $(seq 100); do
    kill -0 "$listener" 2>/dev/null || break
    sleep 0.05
done
wait "$listener" 2>/dev/null || true
listener=

fields=(-T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e udp.length -e frame.cap_len -e frame.len)
echo '$ tshark -r out.pcap -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e udp.length -e frame.cap_len -e frame.len'
tshark -r out.pcap "${fields[@]}" 2>/dev/null
echo '$ tshark -r in.pcap -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport -e udp.length -e frame.cap_len -e frame.len'
tshark -r in.pcap "${fields[@]}" 2>/dev/null
echo '$ tshark -r in.pcap -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE -T fields -e udp.checksum.status -e ip.checksum.status'
tshark -r in.pcap -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE -T fields -e udp.checksum.status -e ip.checksum.status 2>/dev/null
