#!/usr/bin/env bash
# pacing-json.sh: the example of docs/pacing.md "In JSON": the summary
# event of a paced send, with its "pacing" object. Ports 27360-27369 on
# 127.0.0.1.
# A paced sender keeps its schedule only as well as the machine lets it: the
# rate achieved, the sends that fell behind and the time taken vary with load:
# docs-mask: achieved [0-9.,]+/s
# docs-mask: [0-9]+ late \(
# docs-mask: "(achieved_rate|elapsed_s)":[0-9.e+-]+
# docs-mask: "late":[0-9]+(?=,"(slipped_us|rate)")
set -euo pipefail
listener=
trap '[[ -n $listener ]] && kill "$listener" 2>/dev/null || true' EXIT
dgram listen 127.0.0.1:27360 --count 2000 >/dev/null &
listener=$!
for _ in $(seq 1 100); do
  grep -q ":$(printf '%04X' 27360) " /proc/net/udp && break
  sleep 0.05
done
echo '$ dgram send 127.0.0.1:27360 --size 100 --count 2000 --rate 20k --wait 0 --json | tail -1'
dgram send 127.0.0.1:27360 --size 100 --count 2000 --rate 20k --wait 0 --json | tail -1
timeout 5 tail --pid="$listener" -f /dev/null || true
