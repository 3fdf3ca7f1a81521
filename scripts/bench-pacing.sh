#!/usr/bin/env bash
# bench-pacing.sh: how well a paced UDP sender keeps its schedule, dgram
# (`dgram send --count N --rate R`) side by side with iperf3 (`iperf3 -u
# -b`, with -l set so that it sends the same datagrams per second), both
# measured the same way from outside (issue 20, part 4).
#
# Each sender sends N datagrams of SIZE bytes at RATE datagrams/s to a
# receiver on 127.0.0.1 (iperf3's own server; for dgram the plainest C
# receive loop, scripts/bench/recvloop.c, so that the receiver takes as
# little CPU from the sender as it can) while tshark captures them on lo: the capture's
# timestamps are the datagrams' departure times. From them, for both:
#   gap deviation       |gap between two datagrams - 1/RATE|: p50, p99, max
#   schedule deviation  departure - (t0 + k/RATE), t0 the earliest anchor
#                       that puts no datagram ahead of its schedule (so
#                       drift and bursts both count): p50, p99, max
#   back to back        gaps under a tenth of the interval (a burst)
#   achieved rate       (datagrams - 1) / (last departure - first)
# and dgram's own figure (its --json summary: the deviation of each send
# call from its due time, p50/p99/max, and the sends that fell more than
# one interval behind).
#
# Prerequisites: Linux, root (tshark captures on lo), python3, cargo, gcc,
# tshark; installs iperf3 with apt-get when missing. Talks only on
# 127.0.0.1. Takes about ROUNDS x 10 s. Environment: RATE (10000), N
# (10000), SIZE (100), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-10000}
N=${N:-10000}
SIZE=${SIZE:-100}
ROUNDS=${ROUNDS:-3}

if ! command -v iperf3 >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
fi
command -v tshark >/dev/null || { echo "bench-pacing: tshark is needed (scripts/setup-test-deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --quiet
dgram=$PWD/target/release/dgram
gcc -O2 -o "$work/recvloop" scripts/bench/recvloop.c

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts tshark capturing UDP to port $1 on lo into $work/cap.pcapng and
# waits (at most 10 s) until it captures.
capture() {
  rm -f "$work/cap.pcapng" "$work/tshark.err"
  tshark -i lo -f "udp dst port $1" -B 64 -w "$work/cap.pcapng" 2>"$work/tshark.err" &
  tshark_pid=$!
  pids+=("$tshark_pid")
  for _ in $(seq 1 200); do
    # It says so a moment before the first packet is written.
    grep -q "Capturing on" "$work/tshark.err" 2>/dev/null && sleep 0.5 && return 0
    sleep 0.05
  done
  echo "bench-pacing: tshark did not start capturing:" >&2
  cat "$work/tshark.err" >&2
  exit 1
}

# Stops the capture and prints the departure times (epoch seconds) of
# the datagrams of SIZE bytes in it, one a line.
departures() {
  sleep 0.3
  kill -INT "$tshark_pid"
  wait "$tshark_pid" 2>/dev/null || true
  tshark -r "$work/cap.pcapng" -T fields -e frame.time_epoch -e udp.length 2>/dev/null |
    awk -v len=$((SIZE + 8)) '$2 == len {print $1}'
}

# Prints one row of figures from departure times on stdin: tool name $1,
# round $2.
analyse() {
  python3 -c '
import sys
from decimal import Decimal
name, run, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = [Decimal(line) for line in sys.stdin if line.strip()]
interval = Decimal(1) / rate
gaps = [b - a for a, b in zip(t, t[1:])]
gap_dev = sorted(abs(g - interval) for g in gaps)
anchor = min(x - k * interval for k, x in enumerate(t))
sched = sorted(x - anchor - k * interval for k, x in enumerate(t))
def pct(xs, p):
    return xs[max(0, -(-len(xs) * p // 100) - 1)]
us = lambda d: float(d) * 1e6
burst = sum(1 for g in gaps if g < interval / 10)
achieved = (len(t) - 1) / float(t[-1] - t[0])
print(f"| {name} | {run} | {len(t)} | {achieved:.0f} | {us(pct(gap_dev, 50)):.1f} | {us(pct(gap_dev, 99)):.1f} | {us(gap_dev[-1]):.1f} | {us(pct(sched, 50)):.1f} | {us(pct(sched, 99)):.1f} | {us(sched[-1]):.1f} | {burst} |")
' "$1" "$2" "$RATE"
}

rows=()
internal=()
for round in $(seq 1 "$ROUNDS"); do
  # dgram: send --count N --rate R to the C receive loop (it ends 500 ms
  # after the last datagram).
  port=$(free_port)
  "$work/recvloop" "$port" >/dev/null 2>&1 &
  listener=$!
  pids+=("$listener")
  capture "$port"
  "$dgram" send "127.0.0.1:$port" --size "$SIZE" --count "$N" --rate "$RATE" --wait 0 --json >"$work/send.json"
  rows+=("$(departures | analyse "dgram send --rate" "$round")")
  wait "$listener" 2>/dev/null || true
  internal+=("$(tail -1 "$work/send.json" | python3 -c '
import json, sys
p = json.load(sys.stdin)["pacing"]
print("| %s | %d | %.0f | %.1f | %.1f | %.1f | %d |" % (sys.argv[1], p["datagrams"], p["achieved_rate"],
      p["deviation_p50_us"], p["deviation_p99_us"], p["deviation_max_us"], p["late"]))
' "$round")")

  # iperf3: -b so that SIZE-byte datagrams go at RATE per second, for as
  # long as N of them take.
  port=$(free_port)
  iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  server=$!
  pids+=("$server")
  sleep 0.3
  capture "$port"
  seconds=$(python3 -c "import math; print(math.ceil($N / $RATE))")
  iperf3 -c 127.0.0.1 -p "$port" -u -l "$SIZE" -b "$((RATE * SIZE * 8))" -t "$seconds" >/dev/null 2>&1 || true
  rows+=("$(departures | analyse "iperf3 -u -l $SIZE -b $((RATE * SIZE * 8))" "$round")")
  wait "$server" 2>/dev/null || true
done

echo "paced sending: $N datagrams of $SIZE B at $RATE/s on 127.0.0.1, departures captured by tshark on lo ($(nproc) CPUs, $(uname -r), $(iperf3 --version | head -1 | awk '{print $1, $2}'))"
echo
echo "| sender | run | datagrams | achieved /s | gap dev p50 (µs) | p99 | max | schedule dev p50 (µs) | p99 | max | back to back |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}" | sort -s -t'|' -k2,2
echo
echo "dgram's own figure (send call minus due time, from its --json summary):"
echo
echo "| run | datagrams | achieved /s | deviation p50 (µs) | p99 | max | late |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${internal[@]}"
