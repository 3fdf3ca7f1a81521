#!/usr/bin/env bash
# docs/examples/bench.sh: dgram bench against dgram bench --serve, paced at
# 2,000 datagrams a second for half a second. Prints the block after
# <!-- example: bench -->.
# Rates and the counts of send and receive calls depend on the machine:
# docs-mask: [0-9,.]+/s
# docs-mask: [0-9.]+ MB/s
# docs-mask: [0-9,]+ (send|receive) calls
# A paced sender keeps its schedule only as well as the machine lets it: the
# rate achieved, the sends that fell behind and the time taken vary with load:
# docs-mask: achieved [0-9.,]+/s
# and on a busy machine the line may say the rate was not kept:
# docs-ignore: ; the sender could not keep this rate[^\n]*
# docs-mask: [0-9]+ late \(
# docs-mask: "(achieved_rate|elapsed_s)":[0-9.e+-]+
# docs-mask: "late":[0-9]+(?=,"(slipped_us|rate)")
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20080
echo "\$ dgram bench --serve $addr &"
background server dgram bench --serve "$addr"
wait_for server "$addr"
show dgram bench "$addr" --duration 0.5 --rate 2k
kill -INT "$(pid server)"
finish server
echo
echo "the server's terminal:"
output server | sed 's/^summary/^Csummary/'
