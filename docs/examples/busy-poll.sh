#!/usr/bin/env bash
# busy-poll.sh: the example of docs/pacing.md "Busy polling": ping and
# its echo both spinning, each on a CPU of its own. Ports 27350-27359 on
# 127.0.0.1.
# A paced sender keeps its schedule only as well as the machine lets it: the
# rate achieved, the sends that fell behind and the time taken vary with load:
# docs-mask: achieved [0-9.,]+/s
# docs-mask: [0-9]+ late \(
# docs-mask: "(achieved_rate|elapsed_s)":[0-9.e+-]+
# docs-mask: "late":[0-9]+(?=,"(slipped_us|rate)")
set -euo pipefail
echo_pid=
trap '[[ -n $echo_pid ]] && kill "$echo_pid" 2>/dev/null || true' EXIT
taskset -c 0 dgram listen 127.0.0.1:27350 --echo --echo-rate 0 --busy-poll >/dev/null &
echo_pid=$!
for _ in $(seq 1 100); do
  grep -q ":$(printf '%04X' 27350) " /proc/net/udp && break
  sleep 0.05
done
echo '$ taskset -c 0 dgram listen 127.0.0.1:27350 --echo --echo-rate 0 --busy-poll &'
echo '$ taskset -c 1 dgram ping 127.0.0.1:27350 --count 2000 --interval 0 --busy-poll --bind 127.0.0.1:27351 | head -3'
taskset -c 1 dgram ping 127.0.0.1:27350 --count 2000 --interval 0 --busy-poll --bind 127.0.0.1:27351 | head -3
