#!/usr/bin/env bash
# docs/examples/chat-plain.sh: dgram chat with nc -u -l, a plain peer: the
# messages go as the bytes typed plus --eol, without receipts. Prints the
# block after <!-- example: chat-plain -->.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

port=20190
background nc nc -u -l 127.0.0.1 "$port"
# nc prints nothing until a datagram comes: wait until its port is bound.
for ((i = 0; i < 250; i++)); do
    ss -Hlun "sport = :$port" | grep -q . && break
    sleep 0.02
done
printf 'hello nc\nsecond line\n' >"$DOCS_TMP/lines"
dgram chat --peer "127.0.0.1:$port" --plain --eol lf --no-history <"$DOCS_TMP/lines" >"$DOCS_TMP/chat.out" 2>&1
wait_for nc '^second line'
echo "terminal 1:"
echo "\$ nc -u -l 127.0.0.1 $port"
output nc
echo
echo "terminal 2:"
echo "\$ printf 'hello nc\\nsecond line\\n' | dgram chat --peer 127.0.0.1:$port --plain --eol lf"
output chat
