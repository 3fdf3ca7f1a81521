#!/usr/bin/env bash
# bench-sessions.sh: figures for secure sessions (issue 18), on loopback.
#
#   handshake  RUNS runs each of `dgram send --key-file` against
#              `dgram listen --key-file`, and of `dgram send --code` against
#              a fresh `dgram chat --code` (a code is spent per run): the
#              handshake's time at the side that began it (`handshake_ms` of
#              `session_opened`) and the first message's round trip
#              (`rtt_ms` of its receipt); their sum is the time from the
#              first init to the first delivered message. Median and p99.
#   throughput N chat messages with receipts, piped into `dgram chat` as fast
#              as its window lets them go, to `dgram listen`: messages per
#              second, unkeyed and with a key file (median of 3).
#   answers    what a responder sends back for each handshake datagram an
#              attacker can send (a copy of a real init, a forged init, a
#              flood of inits, replies, finishes, fails, secured datagrams
#              of no session): bytes out / bytes in, which must be <= 1.
#
# Usage: scripts/bench-sessions.sh  (RUNS=100 N=2000 SECTIONS="handshake
# throughput answers" to change). Needs a release build (built when
# missing) and python3. Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-100}
N=${N:-2000}
SECTIONS=${SECTIONS:-"handshake throughput answers"}
cargo build --release --quiet
dgram=$PWD/target/release/dgram
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$dgram" keygen "$work/k.key" >/dev/null

free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 5 s) until something listens on UDP port $1.
wait_bound() {
  for _ in $(seq 1 100); do
    grep -qi ":$(printf '%04X' "$1") " /proc/net/udp && return 0
    sleep 0.05
  done
  echo "nothing bound port $1" >&2
  return 1
}

# Median and p99 of the numbers on stdin.
stats() {
  python3 -c '
import sys, statistics
v = sorted(float(x) for x in sys.stdin if x.strip())
if not v:
    print("no samples"); sys.exit()
p99 = v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
print(f"median {statistics.median(v):.3f} ms, p99 {p99:.3f} ms, {len(v)} runs")'
}

# Pulls handshake_ms and rtt_ms from a send's JSON lines.
times() {
  python3 -c '
import json, sys
h = r = None
for line in sys.stdin:
    e = json.loads(line)
    if e.get("event") == "session_opened" and "handshake_ms" in e:
        h = e["handshake_ms"]
    if e.get("event") == "receipt" and e.get("status") == "delivered" and r is None:
        r = e["rtt_ms"]
if h is not None and r is not None:
    print(h, r)'
}

if [[ $SECTIONS == *handshake* ]]; then
  port=$(free_port)
  "$dgram" listen "127.0.0.1:$port" --key-file "$work/k.key" --json >/dev/null 2>&1 &
  pids+=($!)
  wait_bound "$port"
  : >"$work/key.times"
  for _ in $(seq 1 "$RUNS"); do
    "$dgram" send "127.0.0.1:$port" x --key-file "$work/k.key" --json --wait 0 2>/dev/null |
      times >>"$work/key.times" || true
  done
  : >"$work/code.times"
  for i in $(seq 1 "$RUNS"); do
    port=$(free_port)
    code="$((i % 999 + 1))-clockwork-crossover-ragtime"
    "$dgram" chat --bind "127.0.0.1:$port" --code "$code" --json < <(sleep 5) >/dev/null 2>&1 &
    responder=$!
    wait_bound "$port"
    "$dgram" send "127.0.0.1:$port" x --code "$code" --json --wait 0 2>/dev/null |
      times >>"$work/code.times" || true
    kill "$responder" 2>/dev/null || true
    wait "$responder" 2>/dev/null || true
  done
  for method in key code; do
    echo "$method: handshake        $(awk '{print $1}' "$work/$method.times" | stats)"
    echo "$method: first round trip $(awk '{print $2}' "$work/$method.times" | stats)"
    echo "$method: to first delivery $(awk '{print $1 + $2}' "$work/$method.times" | stats)"
  done
fi

if [[ $SECTIONS == *throughput* ]]; then
  # Rounds alternate unkeyed and keyed, so that the machine's moods fall on
  # both alike; the rates spread widely from run to run here (the piped
  # chat's window and the receiver's batching meet the scheduler), so all
  # are printed with the median.
  declare -A rates=([no]="" [yes]="")
  for _ in $(seq 1 "${ROUNDS:-7}"); do
    for keyed in no yes; do
      port=$(free_port)
      key=()
      [[ $keyed == yes ]] && key=(--key-file "$work/k.key")
      "$dgram" listen "127.0.0.1:$port" "${key[@]}" --json >/dev/null 2>&1 &
      listener=$!
      wait_bound "$port"
      start=$(date +%s.%N)
      seq 1 "$N" | "$dgram" chat --peer "127.0.0.1:$port" "${key[@]}" --linger 0 --json >"$work/chat.json" 2>/dev/null || true
      end=$(date +%s.%N)
      kill "$listener" 2>/dev/null || true
      wait "$listener" 2>/dev/null || true
      delivered=$(grep -c '"status":"delivered"' "$work/chat.json" || true)
      rates[$keyed]+="$(python3 -c "print(round($delivered / ($end - $start)))") "
      [[ $delivered == "$N" ]] || echo "warning: $delivered of $N delivered" >&2
    done
  done
  for keyed in no yes; do
    median=$(printf '%s\n' ${rates[$keyed]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "throughput, keyed=$keyed: median $median messages/s with receipts (runs: ${rates[$keyed]% })"
  done
fi

if [[ $SECTIONS == *answers* ]]; then
  port=$(free_port)
  "$dgram" listen "127.0.0.1:$port" --key-file "$work/k.key" --json >/dev/null 2>&1 &
  pids+=($!)
  wait_bound "$port"
  cport=$(free_port)
  "$dgram" chat --bind "127.0.0.1:$cport" --code 7-clockwork-crossover-ragtime --json < <(sleep 30) >/dev/null 2>&1 &
  pids+=($!)
  wait_bound "$cport"
  # Real inits, captured: dgram sends its init to a socket that only
  # records (the send is then stopped).
  capture() {
    python3 - "$@" <<'EOF'
import socket, subprocess, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(5)
p = subprocess.Popen(sys.argv[1:] + [f"127.0.0.1:{s.getsockname()[1]}", "x"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
data, _ = s.recvfrom(65535)
p.kill()
sys.stdout.write(data.hex())
EOF
  }
  key_init=$(capture "$dgram" send --key-file "$work/k.key" --wait 0)
  code_init=$(capture "$dgram" send --code 8-clockwork-crossover-ragtime --wait 0)
  python3 - "$port" "$cport" "$key_init" "$code_init" <<'EOF'
import os, socket, sys
port, cport = int(sys.argv[1]), int(sys.argv[2])
key_init, code_init = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])

def exchange(target, datagrams, wait=0.3):
    """Sends each datagram from one fresh socket; returns bytes in, out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    for d in datagrams:
        s.sendto(d, ("127.0.0.1", target))
    s.settimeout(wait)
    back = 0
    try:
        while True:
            back += len(s.recv(65535))
    except OSError:
        pass
    return sum(len(d) for d in datagrams), back

def head(step, method, sender=None, receiver=bytes(8)):
    return bytes([0xF5, 1, 6, step, method]) + (sender or os.urandom(8)) + receiver

rows = [
    ("key file init (a copy of a real one)", port, [key_init]),
    ("the same copy again", port, [key_init]),
    ("key file init, forged (random bytes)", port, [head(1, 1) + os.urandom(72)]),
    ("flood: 200 forged inits, one source", port, [head(1, 1) + os.urandom(72) for _ in range(200)]),
    ("code init (a real one, another code)", cport, [code_init]),
    ("code reply, unsolicited", cport, [head(2, 2, receiver=os.urandom(8)) + os.urandom(89)]),
    ("code finish, unsolicited", cport, [head(3, 2, receiver=os.urandom(8)) + os.urandom(56)]),
    ("code fail, unsolicited", cport, [head(5, 2, receiver=os.urandom(8))]),
    ("key file reply, unsolicited", port, [head(2, 1, receiver=os.urandom(8)) + os.urandom(56)]),
    ("secured datagram of no session", port, [bytes([0xF5, 1, 7]) + os.urandom(60)]),
]
print(f"{'datagram an attacker sends':44} {'in':>7} {'out':>7} {'out/in':>7}")
for name, target, datagrams in rows:
    sent, back = exchange(target, datagrams)
    print(f"{name:44} {sent:7d} {back:7d} {back / sent:7.2f}")
EOF
fi
