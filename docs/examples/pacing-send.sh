#!/usr/bin/env bash
# pacing-send.sh: the example of docs/pacing.md "Paced sending": 1000
# datagrams at 10,000 a second into a listener, and send's report on how
# it kept the schedule. Ports 27340-27349 on 127.0.0.1.
# A paced sender keeps its schedule only as well as the machine lets it: the
# rate achieved, the sends that fell behind and the time taken vary with load:
# docs-mask: achieved [0-9.,]+/s
# and on a busy machine the line may say the rate was not kept:
# docs-ignore: ; the sender could not keep this rate[^\n]*
# docs-mask: [0-9]+ late \(
# docs-mask: "(achieved_rate|elapsed_s)":[0-9.e+-]+
# docs-mask: "late":[0-9]+(?=,"(slipped_us|rate)")
set -euo pipefail
listener=
trap '[[ -n $listener ]] && kill "$listener" 2>/dev/null || true' EXIT
dgram listen 127.0.0.1:27340 --count 1000 >/dev/null &
listener=$!
# Wait (at most 5 s) until the listener's port is bound.
for _ in $(seq 1 100); do
  grep -q ":$(printf '%04X' 27340) " /proc/net/udp && break
  sleep 0.05
done
echo '$ dgram send 127.0.0.1:27340 --size 100 --count 1000 --rate 10k --bind 127.0.0.1:27341'
dgram send 127.0.0.1:27340 --size 100 --count 1000 --rate 10k --bind 127.0.0.1:27341 2>&1
timeout 5 tail --pid="$listener" -f /dev/null || true
