#!/usr/bin/env bash
# docs/examples/listen.sh: dgram listen with a 64-byte application buffer
# and a small SO_RCVBUF, sent to by dgram send: text, an empty datagram,
# escapes, a truncated datagram, binary, then a burst of 1000 into the
# stopped listener. Prints the block after <!-- example: listen -->.
# docs-mask: dropped \d+
# docs-mask: \d+ dropped
# docs-mask: \d+ datagrams of the burst
# docs-mask: received \d+ datagrams \(\d+ B
set -euo pipefail
source "$(dirname "$0")/lib.bash"

addr=127.0.0.1:20010
echo "\$ dgram listen $addr --rcvbuf 4096 --max-size 64"
background listener dgram listen "$addr" --rcvbuf 4096 --max-size 64
wait_for listener '^reports:'
n=0
for payload in 'héllo ✓' --empty $'hi\e[2J\n' '--size 100' '--hex 00ff' '<empty>' $'café \xff ok'; do
    # shellcheck disable=SC2086 # the options are two words
    case $payload in
    --*) dgram send "$addr" $payload --wait 0 2>/dev/null ;;
    *) dgram send "$addr" "$payload" --wait 0 2>/dev/null ;;
    esac
    n=$((n + 1))
    wait_for listener "^([^ ]+  ){1}127.0.0.1:[0-9]+ .*" >/dev/null
    until [ "$(grep -c '^[0-9:.]*  127.0.0.1:' "$DOCS_TMP/listener.out")" -ge "$n" ]; do sleep 0.02; done
done
# A burst into a listener that is not reading: the kernel queues what fits
# in SO_RCVBUF and drops the rest.
kill -STOP "$(pid listener)"
dgram send "$addr" --size 64 --count 1000 --wait 0 2>/dev/null
kill -CONT "$(pid listener)"
wait_for listener '^!! the kernel dropped'
kill -INT "$(pid listener)"
finish listener
# The burst's lines, all alike, are shown as their first and a count; the
# kernel's drop report (which comes with a datagram of the burst or after
# it) follows that count.
output listener | awk '
    / 64 B  "0123/ && !/truncated/ { burst++; if (burst > 1) next }
    /^!! the kernel dropped/ { drops = $0; next }
    /^summary/ { print "… (" burst " datagrams of the burst in all)"; print drops }
    { print }'
