#!/usr/bin/env bash
# bench-rendezvous.sh: capacity of `dgram rendezvous` (issue 19), on loopback.
#
#   memory    RSS of the service before and after N numbers are open (each
#             first registration reports 4 IPv6 candidates, the most a
#             registration holds), from /proc/PID/status: bytes per open
#             number.
#   pairings  the second registration of each of the N numbers, W at a time:
#             pairings per second of wall time, and per second of the
#             service's CPU time (utime + stime from /proc/PID/stat), which
#             does not count the Python client's own slowness.
#
# Every registration comes from its own source address (127.1.x.y: Linux
# routes all of 127.0.0.0/8 to loopback), so the per-source rate limit
# (20 at once, 10 a second) does not throttle the measurement. N is at most
# 999: a service holds at most one pairing per code number, and keeps a
# pairing 30 s; the sustained ceiling that implies is printed too.
#
# Usage: scripts/bench-rendezvous.sh  (N=999 W=64 to change). Needs a
# release build (built when missing), python3 and Linux's /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-999}
W=${W:-64}
cargo build --release --quiet
dgram=$PWD/target/release/dgram
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$dgram" rendezvous --json 127.0.0.1:0 >"$work/events" &
pid=$!
for _ in $(seq 100); do
  grep -q rendezvous_start "$work/events" 2>/dev/null && break
  sleep 0.05
done
addr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["local"])' "$work/events")

python3 - "$addr" "$pid" "$N" "$W" <<'PY'
import os, socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
service = (host, int(port))
pid, n, window = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert 1 <= n <= 999, "N is a code number count: 1 to 999"
tick = os.sysconf("SC_CLK_TCK")

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def register(number, session, candidates):
    body = bytes([0xF5, 1, 10]) + number.to_bytes(2, "big") + bytes([session]) * 8
    body += bytes([len(candidates)])
    for ip, p in candidates:
        body += bytes([6]) + p.to_bytes(2, "big") + socket.inet_pton(socket.AF_INET6, ip)
    return body + bytes(112 - len(body))

def sock(i, side):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"127.{1 + side}.{i // 250}.{i % 250 + 1}", 0))
    s.settimeout(5)
    return s

def run(socks, datagrams, expect):
    """Sends datagrams[i] from socks[i], at most `window` unanswered at
    once; returns when each socket has its `expect` answers."""
    got = [0] * len(socks)
    sent = 0
    for i in range(len(socks)):
        socks[i].sendto(datagrams[i], service)
        sent += 1
        if sent >= window:
            j = i - window + 1
            while got[j] < expect:
                socks[j].recv(2048); got[j] += 1
    for j in range(max(0, len(socks) - window), len(socks)):
        while got[j] < expect:
            socks[j].recv(2048); got[j] += 1

v6 = [(f"2001:db8::{k}", 40000 + k) for k in range(1, 5)]
firsts = [sock(i, 0) for i in range(n)]
seconds = [sock(i, 1) for i in range(n)]

time.sleep(0.2)
before = rss_kib()
run(firsts, [register(i + 1, 0xA1, v6) for i in range(n)], 1)
time.sleep(0.2)
after = rss_kib()
print(f"memory: RSS {before} KiB before, {after} KiB with {n} numbers open "
      f"(4 IPv6 candidates each): {(after - before) * 1024 / n:.0f} bytes per open number")

cpu0, t0 = cpu_seconds(), time.perf_counter()
run(seconds, [register(i + 1, 0xB1, v6) for i in range(n)], 1)
# Each first registrant gets its pair's candidates too.
for s in firsts:
    s.recv(2048)
wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
print(f"pairings: {n} in {wall * 1000:.1f} ms of wall time: {n / wall:.0f} per second "
      f"(client-bound: Python, {window} at a time)")
if cpu > 0:
    print(f"          {cpu * 1000:.0f} ms of the service's CPU time (read in clock ticks of "
          f"{1000 / tick:.0f} ms): about {n / cpu:.0f} pairings per CPU-second")
else:
    print(f"          under one clock tick ({1000 / tick:.0f} ms) of the service's CPU time")
print(f"ceiling:  999 numbers, each held 30 s after its pairing: at most {999 / 30:.1f} "
      f"pairings per second sustained, whatever the CPU")
PY
kill -TERM "$pid"
wait "$pid" || true
pid=
python3 -c 'import json,sys; s=[json.loads(l) for l in open(sys.argv[1])][-1]; print("service summary: received %(received)d (%(bytes_in)d B), sent %(sent)d (%(bytes_out)d B), pairings %(pairings)d, rate_limited %(rate_limited)d" % s)' "$work/events"
