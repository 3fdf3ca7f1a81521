#!/usr/bin/env bash
# chat-demo.sh: two `dgram chat` sessions side by side in tmux, typed into
# as a person would (each line only once the prompt is back), then both
# screens printed as tmux's capture-pane sees them.
#
# Prerequisites: tmux; a built dgram (DGRAM=/path/to/dgram, or this script
# builds target/debug/dgram with cargo). Uses a private tmux server and
# removes it on exit; talks only on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${DGRAM:-} ]]; then
  cargo build --quiet
  DGRAM=$PWD/target/debug/dgram
fi
command -v tmux >/dev/null || { echo "chat-demo: tmux is missing (scripts/setup-test-deps.sh installs it)" >&2; exit 1; }

server="dgram-demo-$$"
tmx() { tmux -L "$server" "$@"; }
trap 'tmx kill-server 2>/dev/null || true' EXIT

# Waits (at most 20 s) until pane $1 shows the fixed string $2.
wait_for() {
  local pane=$1 text=$2
  for _ in $(seq 1 400); do
    if tmx capture-pane -p -t "$pane" | grep -qF -- "$text"; then return 0; fi
    sleep 0.05
  done
  echo "chat-demo: pane $pane never showed: $text" >&2
  tmx capture-pane -p -t "$pane" >&2
  exit 1
}

# Types $2 into pane $1 and presses Enter, once the prompt $3 (with any
# "[N waiting]" count before its ">") is the last
# line the pane shows (a person waits for the prompt too).
say() {
  local pane=$1 line=$2 prompt=$3
  for _ in $(seq 1 200); do
    if [[ $(tmx capture-pane -p -t "$pane" | sed -e '/^[[:space:]]*$/d' | tail -n1) == "${prompt%>}"*">" ]]; then break; fi
    sleep 0.05
  done
  tmx send-keys -t "$pane" -l -- "$line"
  tmx send-keys -t "$pane" Enter
}

chat="env TERM=xterm $DGRAM chat --no-history --bind 127.0.0.1:0"
tmx new-session -d -s demo -x 220 -y 24 "$chat --name alice"
# Bob leaves before the end: keep his pane (and his summary) on screen.
tmx set-option -g remain-on-exit on
alice=demo:0.0
wait_for "$alice" "chat on 127.0.0.1:"
alice_addr=$(tmx capture-pane -p -t "$alice" | grep -o 'chat on 127\.0\.0\.1:[0-9]*' | head -n1 | cut -d' ' -f3)
tmx split-window -h -t demo "$chat --name bob --peer $alice_addr"
bob=demo:0.1
wait_for "$bob" "chat on 127.0.0.1:"
bob_addr=$(tmx capture-pane -p -t "$bob" | grep -o 'chat on 127\.0\.0\.1:[0-9]*' | head -n1 | cut -d' ' -f3)

say "$bob" "hi alice, bob here" "$alice_addr>"
wait_for "$alice" "hi alice, bob here"
say "$alice" "/reply" "(no peer: /to ADDR)>"
wait_for "$alice" "talking to $bob_addr"
say "$alice" "hello bob! sending you an empty datagram" "bob ($bob_addr)>"
say "$alice" "/empty" "bob ($bob_addr)>"
wait_for "$bob" "<empty>"
say "$bob" "got it: 0 bytes, still a datagram. bye!" "$alice_addr>"
wait_for "$alice" "bye!"
say "$bob" "/quit" "alice ($alice_addr)>"
wait_for "$bob" "summary:"
# Bob is gone: his port answers ICMP port unreachable, and Alice's next
# message fails at once (where the platform hears ICMP errors; elsewhere
# after its tries).
say "$alice" "bob? are you still there?" "bob ($bob_addr)>"
wait_for "$alice" "failed: "
say "$alice" "/peers" "bob ($bob_addr)>"
wait_for "$alice" "messages out 2"

for who in alice bob; do
  pane=${!who}
  echo "=== $who's screen ($pane) ==="
  tmx capture-pane -p -t "$pane" | sed -e '/^[[:space:]]*$/d' -e '/^Pane is dead/d'
done
