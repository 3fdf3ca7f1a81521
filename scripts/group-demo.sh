#!/usr/bin/env bash
# group-demo.sh: a three-host room. Three network namespaces on a bridge
# (made here, removed on exit), one `dgram chat --group` in each, in tmux
# panes, typed into as people would; one member vanishes (SIGKILL, no bye)
# before the last message; then the three screens as tmux's capture-pane
# sees them.
#
# Prerequisites: root, iproute2, tmux; a built dgram (DGRAM=/path, or
# this script builds target/debug/dgram). Traffic stays inside the
# namespaces. GROUP (default 239.1.2.3:5000) may be --broadcast's address
# with MODE=--broadcast (GROUP=10.77.0.255:5000).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${DGRAM:-} ]]; then
  cargo build --quiet
  DGRAM=$PWD/target/debug/dgram
fi
command -v tmux >/dev/null || { echo "group-demo: tmux is missing (scripts/setup-test-deps.sh installs it)" >&2; exit 1; }
MODE=${MODE:---group}
GROUP=${GROUP:-239.1.2.3:5000}

id="dgdemo$$"
server="dgram-group-demo-$$"
tmx() { tmux -L "$server" "$@"; }
cleanup() {
  tmx kill-server 2>/dev/null || true
  for ns in "$id-0" "$id-1" "$id-2" "$id-sw"; do ip netns delete "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

ip netns add "$id-sw"
ip -n "$id-sw" link add br0 type bridge
ip -n "$id-sw" link set br0 type bridge mcast_snooping 0
ip -n "$id-sw" link set br0 up
for i in 0 1 2; do
  ns="$id-$i"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$id-sw" link add "p$i" type veth peer name "h$i"
  ip -n "$id-sw" link set "h$i" netns "$ns"
  ip -n "$ns" link set "h$i" name eth0
  ip -n "$id-sw" link set "p$i" master br0
  ip -n "$id-sw" link set "p$i" up
  ip -n "$ns" addr add "10.77.0.$((i + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
done

# Waits (at most 20 s) until pane $1 shows the fixed string $2.
wait_for() {
  local pane=$1 text=$2
  for _ in $(seq 1 400); do
    if tmx capture-pane -p -t "$pane" | grep -qF -- "$text"; then return 0; fi
    sleep 0.05
  done
  echo "group-demo: pane $pane never showed: $text" >&2
  tmx capture-pane -p -t "$pane" >&2
  exit 1
}

# Types $2 into pane $1 and presses Enter once the prompt is back.
say() {
  local pane=$1 line=$2
  for _ in $(seq 1 200); do
    if [[ $(tmx capture-pane -p -t "$pane" | sed -e '/^[[:space:]]*$/d' | tail -n1) == *"> " || $(tmx capture-pane -p -t "$pane" | sed -e '/^[[:space:]]*$/d' | tail -n1) == *">" ]]; then break; fi
    sleep 0.05
  done
  tmx send-keys -t "$pane" -l -- "$line"
  tmx send-keys -t "$pane" Enter
}

chat() {
  echo "ip netns exec $id-$1 env TERM=xterm $DGRAM chat $MODE $GROUP --iface eth0 --name $2 --no-history --hello 1000 --retries 2"
}
tmx new-session -d -s demo -x 200 -y 66 "$(chat 0 ann)"
tmx set-option -g remain-on-exit on
tmx split-window -v -t demo "$(chat 1 bob)"
tmx split-window -v -t demo "$(chat 2 cat)"
tmx select-layout -t demo even-vertical
ann=demo:0.0 bob=demo:0.1 cat=demo:0.2
for pane in "$ann" "$bob" "$cat"; do wait_for "$pane" "member of $GROUP"; done
wait_for "$ann" "++ bob"
wait_for "$ann" "++ cat"
wait_for "$bob" "++ cat"

say "$ann" "hello room, ann here"
wait_for "$ann" "2/2"
say "$bob" "hi ann! bob on the second host"
wait_for "$bob" "2/2"
say "$cat" "cat here, leaving soon"
wait_for "$cat" "2/2"
say "$ann" "/members"
wait_for "$ann" "2 members of $GROUP heard"
# cat vanishes without a bye (SIGKILL: its host lost power, say).
kill -KILL "$(tmx display-message -p -t "$cat" '#{pane_pid}')"
say "$bob" "did everyone get this?"
wait_for "$bob" "1/2 (ann; cat missing)"
wait_for "$ann" "left: not heard for"
say "$bob" "/quit"
wait_for "$ann" "left (bye)"

for who in ann bob cat; do
  pane=${!who}
  echo "=== $who's screen ($pane) ==="
  tmx capture-pane -p -t "$pane" | sed -e '/^[[:space:]]*$/d'
done
