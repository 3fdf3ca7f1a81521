#!/usr/bin/env bash
# docs/examples/wireshark.sh: prints the example of docs/wireshark.md (the
# block after `<!-- example: wireshark -->`). dumpcap captures loopback
# while a chat sends a line to a listener, a plain `dgram send` and a
# malformed envelope reach it too, and a keyed chat talks to a keyed
# listener; tshark reads the capture with contrib/wireshark/dgram.lua.
# Needs: dgram on PATH, dumpcap (as root, or with the capture
# capabilities), tshark. Ports 24700-24709 on 127.0.0.1.
# docs-needs: root
set -euo pipefail

plugin=$(cd "$(dirname "$0")/../.." && pwd)/contrib/wireshark/dgram.lua
dir=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

# wait_line FILE REGEX: until FILE has a line matching REGEX (5 s at most).
wait_line() {
    for _ in $(seq 250); do
        grep -qE -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.02
    done
    echo "example: $2 never showed /$1/:" >&2
    cat "$2" >&2
    exit 1
}

# ends PID: waits (5 s at most) for a background process to end.
ends() {
    for _ in $(seq 250); do
        kill -0 "$1" 2>/dev/null || {
            wait "$1" 2>/dev/null || true
            return 0
        }
        sleep 0.02
    done
    echo "example: process $1 did not end" >&2
    exit 1
}

# dumpcap says "Capturing on" before its filter sees packets: datagrams to
# a closed port (24709, in the filter too) until it has counted one; they
# are left out of the capture afterwards.
echo "\$ dumpcap -i lo -f 'udp portrange 24700-24709' -w raw.pcapng &"
dumpcap -i lo -f 'udp portrange 24700-24709' -w raw.pcapng >dumpcap.out 2>&1 &
dumpcap=$!
pids+=("$dumpcap")
for _ in $(seq 250); do
    grep -q 'Packets: ' dumpcap.out && break
    echo sentinel >/dev/udp/127.0.0.1/24709 2>/dev/null || true
    sleep 0.02
done
wait_line 'Packets: ' dumpcap.out

echo '$ dgram keygen key'
dgram keygen key >/dev/null 2>&1
echo '$ dgram listen 127.0.0.1:24700 &'
dgram listen 127.0.0.1:24700 >listen.out 2>&1 &
pids+=("$!")
echo '$ dgram listen 127.0.0.1:24702 --key-file key &'
dgram listen 127.0.0.1:24702 --key-file key >keyed.out 2>&1 &
pids+=("$!")
wait_line '^listening on' listen.out
wait_line '^listening on' keyed.out

echo "\$ echo 'hi, bob' | dgram chat --peer 127.0.0.1:24700 --bind 127.0.0.1:24701 --name alice --no-history"
echo 'hi, bob' |
    dgram chat --peer 127.0.0.1:24700 --bind 127.0.0.1:24701 --name alice --no-history >/dev/null 2>&1
echo '$ dgram send 127.0.0.1:24700 "plain text" --bind 127.0.0.1:24703'
dgram send 127.0.0.1:24700 "plain text" --bind 127.0.0.1:24703 >/dev/null 2>&1
echo '$ dgram send 127.0.0.1:24700 --hex f50163 --bind 127.0.0.1:24704'
dgram send 127.0.0.1:24700 --hex f50163 --bind 127.0.0.1:24704 >/dev/null 2>&1
echo '$ echo hi | dgram chat --peer 127.0.0.1:24702 --bind 127.0.0.1:24705 --key-file key --name bob'
echo hi | dgram chat --peer 127.0.0.1:24702 --bind 127.0.0.1:24705 --key-file key --name bob >/dev/null 2>&1
wait_line 'unknown kind 99' listen.out
wait_line 'hi' keyed.out

echo '$ kill -INT %1'
kill -INT "$dumpcap"
ends "$dumpcap"
echo "\$ tshark -r raw.pcapng -Y 'udp.dstport != 24709' -w chat.pcapng"
tshark -r raw.pcapng -Y 'udp.dstport != 24709' -w chat.pcapng 2>/dev/null

tshark=(tshark -X "lua_script:$plugin" -o udp.try_heuristic_first:TRUE -r chat.pcapng)
# quote WORD...: the words as one command line, quoted where a shell needs it.
quote() {
    local out=() word safe='^[][A-Za-z0-9_./:@%+=,-]+$'
    for word in "$@"; do
        if [[ $word =~ $safe ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}
show_tshark() {
    echo "\$ tshark -X lua_script:contrib/wireshark/dgram.lua -r chat.pcapng $(quote "$@")"
    "${tshark[@]}" "$@" 2>/dev/null
}
show_tshark -Y 'udp.port == 24700' -T fields -e udp.srcport -e udp.dstport -e _ws.col.Protocol -e _ws.col.Info
show_tshark -Y 'dgram.kind == message' -T fields -e dgram.seq -e dgram.try -e dgram.name -e dgram.text
show_tshark -Y dgram.malformed -T fields -e udp.srcport -e _ws.expert.message
show_tshark -Y 'dgram.kind == handshake || dgram.kind == secured' -T fields -e udp.srcport -e dgram.kind -e dgram.step \
    -e dgram.method -e dgram.epoch -e dgram.counter -e dgram.ciphertext_len
