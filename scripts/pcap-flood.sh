#!/usr/bin/env bash
# scripts/pcap-flood.sh: what `--pcap` costs a receiver under a flood
# (docs/PERFORMANCE.md, "`--pcap` under a flood"). A paced flood into
# `dgram bench --serve` on 127.0.0.1 (server pinned to CPU 0, sender to
# CPU 1), three ways per round: no --pcap, --pcap /dev/null (the capture's
# own work: headers, checksums, copies) and --pcap to a file (plus the
# writes). Prints the server's CPU time per datagram received (utime +
# stime from /proc/PID/stat, 10 ms ticks) and the run's loss.
#
# Usage: scripts/pcap-flood.sh [SIZE [RATE [FIRST_PORT [ROUNDS]]]]
#   (defaults 64 100k 25500 3; each run takes the next port). Needs
#   `dgram` on PATH (or DGRAM=path), taskset, python3; Linux.
set -euo pipefail
D=${DGRAM:-dgram}
dir=$(mktemp -d)
size=${1:-64}; rate=${2:-100k}; port=${3:-25500}; rounds=${4:-3}
server=
cleanup() { [[ -n $server ]] && kill -INT "$server" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
run() { # $1: none, null or file
  local sp=()
  case $1 in null) sp=(--pcap /dev/null) ;; file) sp=(--pcap "$dir/serve.pcap") ;; esac
  taskset -c 0 "$D" bench --serve 127.0.0.1:$port --json "${sp[@]}" >"$dir/serve.json" 2>&1 &
  server=$!
  for _ in $(seq 100); do [[ -s $dir/serve.json ]] && break; sleep 0.05; done
  local t0; t0=$(awk '{print $14+$15}' /proc/$server/stat)
  taskset -c 1 "$D" bench 127.0.0.1:$port -t 3 -s "$size" --rate "$rate" --json | tail -1 > "$dir/report.json"
  local t1; t1=$(awk '{print $14+$15}' /proc/$server/stat)
  kill -INT $server; wait $server || true; server=
  python3 - "$dir/report.json" $((t1 - t0)) <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); ticks=int(sys.argv[2])
rx=r["receiver"]["received"]
print("received %8d  loss %5.2f%%  server CPU %5.2f s  %5.0f ns/datagram" % (rx, r["loss_percent"], ticks/100, ticks*1e7/max(rx,1)))
PY
  rm -f "$dir"/*.pcap
  port=$((port + 1))
}
for _ in $(seq "$rounds"); do
  for mode in none null file; do
    printf -- '-s %-5s --rate %-4s --pcap %-4s ' "$size" "$rate" $mode; run $mode
  done
done
