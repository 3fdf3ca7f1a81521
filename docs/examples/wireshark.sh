#!/usr/bin/env bash
# docs/examples/wireshark.sh: prints the example of docs/wireshark.md (the
# block after `<!-- example: wireshark -->`). Two listeners record what
# they receive and send (--pcap): a chat's line and its receipt, a plain
# `dgram send` and a malformed envelope reach the first, a keyed chat
# talks to the second; tshark reads both files with
# contrib/wireshark/dgram.lua.
# Needs: dgram on PATH, tshark. Ports 24700-24709 on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

plugin=$(cd "$(dirname "$0")/../.." && pwd)/contrib/wireshark/dgram.lua
cd "$DOCS_TMP"

echo '$ dgram keygen key'
dgram keygen key >/dev/null 2>&1
echo '$ dgram listen 127.0.0.1:24700 --pcap plain.pcap &'
background plain dgram listen 127.0.0.1:24700 --pcap plain.pcap
echo '$ dgram listen 127.0.0.1:24702 --key-file key --pcap keyed.pcap &'
background keyed dgram listen 127.0.0.1:24702 --key-file key --pcap keyed.pcap
wait_for plain '^listening on'
wait_for keyed '^listening on'

echo "\$ echo 'hi, bob' | dgram chat --peer 127.0.0.1:24700 --bind 127.0.0.1:24701 --name alice --no-history"
echo 'hi, bob' |
    dgram chat --peer 127.0.0.1:24700 --bind 127.0.0.1:24701 --name alice --no-history >/dev/null 2>&1
echo '$ dgram send 127.0.0.1:24700 "plain text" --bind 127.0.0.1:24703'
dgram send 127.0.0.1:24700 "plain text" --bind 127.0.0.1:24703 >/dev/null 2>&1
echo '$ dgram send 127.0.0.1:24700 --hex f50163 --bind 127.0.0.1:24704'
dgram send 127.0.0.1:24700 --hex f50163 --bind 127.0.0.1:24704 >/dev/null 2>&1
echo '$ echo hi | dgram chat --peer 127.0.0.1:24702 --bind 127.0.0.1:24705 --key-file key --name bob'
echo hi | dgram chat --peer 127.0.0.1:24702 --bind 127.0.0.1:24705 --key-file key --name bob \
    >/dev/null 2>&1
wait_for plain 'unknown kind 99'
wait_for keyed '"hi"'

# The listeners write their files out when they stop.
echo '$ kill -INT %1 %2'
kill -INT "$(pid plain)" "$(pid keyed)"
finish plain
finish keyed

show_tshark() {
    local file=$1
    shift
    echo "\$ tshark -X lua_script:contrib/wireshark/dgram.lua -r $file $(quote "$@")"
    tshark -X "lua_script:$plugin" -r "$file" "$@" 2>/dev/null
}
show_tshark plain.pcap -T fields -e udp.srcport -e udp.dstport -e _ws.col.Protocol -e _ws.col.Info
show_tshark plain.pcap -Y 'dgram.kind == message' -T fields -e dgram.session -e dgram.seq -e dgram.try \
    -e dgram.name -e dgram.text
show_tshark plain.pcap -Y dgram.malformed -T fields -e udp.srcport -e _ws.expert.message
show_tshark keyed.pcap -T fields -e udp.srcport -e _ws.col.Info
show_tshark keyed.pcap -T fields -e dgram.kind -e dgram.step -e dgram.method -e dgram.epoch \
    -e dgram.counter -e dgram.ciphertext_len -e udp.length
