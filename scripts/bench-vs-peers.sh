#!/usr/bin/env bash
# bench-vs-peers.sh: dgram's round trips measured side by side with the
# plainest C programs and with sockperf, interleaved in one sitting, and
# printed as a table of medians and ratios (issue 8's ping and echo targets).
#
# Rows, each the median over ROUNDS rounds (the order of the rows rotates
# from round to round) of the p50 round trip of N ping-pong exchanges of
# 64-byte datagrams on 127.0.0.1:
#   C ping -> C echo               the baseline (scripts/bench/*.c, gcc -O2)
#   dgram ping -> C echo           target: within 1.05x of the baseline
#   C ping -> dgram listen --echo  target: within 1.10x of the baseline
#   C ping -> Python echo          the classic socket example, for scale
#   sockperf ping-pong -> server   sockperf reports half the round trip;
#                                  the table doubles it
# each with both ends on one CPU (taskset -c 0) and on two (0 and 1).
#
# Then busy polling (section "busy", issue 20): the same ping-pong across
# CPUs (server on 0, client on 1), every end spinning on a receive that
# does not wait instead of sleeping in the kernel; each figure the median
# over ROUNDS rounds (rotated) of the p50 of N exchanges:
#   busy C ping -> busy C echo     the baseline (scripts/bench/busy_*.c:
#                                  recv with MSG_DONTWAIT in a loop)
#   dgram ping --busy-poll -> dgram listen --echo --busy-poll
#                                  target: within 1.10x of the baseline
#   dgram ping --busy-poll -> busy C echo
#   C ping -> C echo, dgram ping -> dgram listen --echo
#                                  blocking, for scale
#
# Then receive rates (section "rx"), each the median over RX_ROUNDS rounds
# (rotated) of one RX_SECONDS flood, at 64 B and 1400 B, unpinned:
#   iperf3 -u -b 0 pair            the target: received datagrams/s
#   dgram bench (and --gso)        two processes, dgram bench --serve ADDR
#   C flood -> C receive loop      scripts/bench/flood.c, recvloop.c
#   C flood -> dgram listen --json > file, | a pipe, human lines > file
# with dgram's own counts checked: sent = received + kernel drops.
#
# Then the terminal (section "term", needs tmux): scripts/bench/
# typed_during_flood.py runs `dgram chat` in a tmux pane, floods its port
# with TERM_COUNT x 64 B, types lines during the flood and times their
# arrival at the peer, and compares the chat's kernel drops with the C
# receive loop's on the same flood, TERM_ROUNDS times.
#
# Prerequisites: Linux, gcc, python3, cargo; installs iperf3 and sockperf
# with apt-get when missing (root). Talks only on 127.0.0.1. Takes about
# five minutes with the defaults. Environment: SECTIONS ("rtt busy rx term"),
# ROUNDS (5), N (20000), RX_ROUNDS (3), RX_SECONDS (2), TERM_ROUNDS (3),
# TERM_COUNT (1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
N=${N:-20000}
# sockperf runs for a time, not a count (its first 400 ms are warm-up).
SOCKPERF_SECONDS=${SOCKPERF_SECONDS:-2}

missing=()
command -v sockperf >/dev/null || missing+=(sockperf)
command -v iperf3 >/dev/null || missing+=(iperf3)
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v gcc >/dev/null || { echo "bench-vs-peers: gcc is needed for the C baselines" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -o "$work/echo" scripts/bench/echo.c
gcc -O2 -o "$work/pingpong" scripts/bench/pingpong.c
gcc -O2 -o "$work/flood" scripts/bench/flood.c
gcc -O2 -o "$work/recvloop" scripts/bench/recvloop.c
gcc -O2 -o "$work/busy_echo" scripts/bench/busy_echo.c
gcc -O2 -o "$work/busy_pingpong" scripts/bench/busy_pingpong.c
SECTIONS=${SECTIONS:-rtt busy rx term}
RX_ROUNDS=${RX_ROUNDS:-3}
RX_SECONDS=${RX_SECONDS:-2}
cargo build --release --quiet
dgram=$PWD/target/release/dgram

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a server (the rest of the line) pinned with $1, waits until its
# port ($PORT) is bound, and remembers its pid in $server.
start() {
  local pin=$1; shift
  taskset -c "$pin" "$@" >/dev/null 2>&1 &
  server=$!
  pids+=("$server")
  wait_bound "$@"
}

# Waits until UDP port $PORT is bound (the rest of the line names the
# server, for the error).
wait_bound() {
  local hex
  hex=$(printf '%04X' "$PORT")
  for _ in $(seq 1 100); do
    grep -q ":$hex " /proc/net/udp && return 0
    sleep 0.02
  done
  echo "bench-vs-peers: server did not bind $PORT: $*" >&2
  exit 1
}
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }

python_echo='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
'

# Prints the p50 round trip (µs) of one row with server pin $2, client pin $3.
measure() {
  local row=$1 spin=$2 cpin=$3 p50
  PORT=$(free_port)
  case $row in
    c_c)
      start "$spin" "$work/echo" "$PORT"
      p50=$(taskset -c "$cpin" "$work/pingpong" "$PORT" "$N" 64 | awk '{print $2}') ;;
    dgram_c)
      start "$spin" "$work/echo" "$PORT"
      p50=$(taskset -c "$cpin" "$dgram" ping "127.0.0.1:$PORT" --count "$N" --interval 0 --json |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["rtt"]["p50_ns"] / 1000)') ;;
    c_dgram)
      start "$spin" "$dgram" listen "127.0.0.1:$PORT" --echo --echo-rate 0 --json
      p50=$(taskset -c "$cpin" "$work/pingpong" "$PORT" "$N" 64 | awk '{print $2}') ;;
    c_python)
      start "$spin" python3 -c "$python_echo" "$PORT"
      p50=$(taskset -c "$cpin" "$work/pingpong" "$PORT" "$N" 64 | awk '{print $2}') ;;
    busy_c_c)
      start "$spin" "$work/busy_echo" "$PORT"
      p50=$(taskset -c "$cpin" "$work/busy_pingpong" "$PORT" "$N" 64 | awk '{print $2}') ;;
    busy_dgram_dgram|busy_dgram_c|dgram_dgram)
      local flag=(--busy-poll)
      [[ $row == dgram_dgram ]] && flag=()
      if [[ $row == busy_dgram_c ]]; then
        start "$spin" "$work/busy_echo" "$PORT"
      else
        start "$spin" "$dgram" listen "127.0.0.1:$PORT" --echo --echo-rate 0 --json "${flag[@]}"
      fi
      p50=$(taskset -c "$cpin" "$dgram" ping "127.0.0.1:$PORT" --count "$N" --interval 0 --json "${flag[@]}" |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["rtt"]["p50_ns"] / 1000)') ;;
    sockperf)
      start "$spin" sockperf server -i 127.0.0.1 -p "$PORT"
      p50=$(taskset -c "$cpin" sockperf ping-pong -i 127.0.0.1 -p "$PORT" -m 64 -t "$SOCKPERF_SECONDS" 2>&1 |
        awk '/percentile 50.000/ {print $NF * 2}') ;;
  esac
  stop
  echo "$p50"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if [[ " $SECTIONS " == *" rtt "* ]]; then
rows=(c_c dgram_c c_dgram c_python sockperf)
declare -A label=(
  [c_c]="C ping -> C echo"
  [dgram_c]="dgram ping -> C echo"
  [c_dgram]="C ping -> dgram listen --echo"
  [c_python]="C ping -> Python echo"
  [sockperf]="sockperf ping-pong -> sockperf server (x2)"
)
declare -A results
for pinning in one two; do
  if [[ $pinning == one ]]; then spin=0 cpin=0; else spin=0 cpin=1; fi
  for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order from round to round.
    for i in "${!rows[@]}"; do
      row=${rows[$(((i + round) % ${#rows[@]}))]}
      began=$(date +%s.%N)
      results[$pinning,$row]+="$(measure "$row" "$spin" "$cpin") "
      [[ -n ${BENCH_VERBOSE:-} ]] && echo "  $pinning CPU(s) $row: $(echo "$(date +%s.%N) - $began" | bc) s" >&2
    done
  done
done

echo "p50 round trip, 64 B, $N exchanges per run, median of $ROUNDS runs ($(nproc) CPUs, $(uname -r))"
echo
echo "| | one CPU (µs) | ratio | two CPUs (µs) | ratio |"
echo "|---|---:|---:|---:|---:|"
base1=$(echo "${results[one,c_c]}" | median)
base2=$(echo "${results[two,c_c]}" | median)
for row in "${rows[@]}"; do
  m1=$(echo "${results[one,$row]}" | median)
  m2=$(echo "${results[two,$row]}" | median)
  printf '| %s | %.1f | %.2fx | %.1f | %.2fx |\n' "${label[$row]}" "$m1" "$(echo "$m1 / $base1" | bc -l)" "$m2" "$(echo "$m2 / $base2" | bc -l)"
done
echo
echo "runs (µs): "
for pinning in one two; do
  for row in "${rows[@]}"; do
    echo "  $pinning CPU(s), ${label[$row]}: ${results[$pinning,$row]}"
  done
done
fi

if [[ " $SECTIONS " == *" busy "* ]]; then
  busy_rows=(busy_c_c busy_dgram_dgram busy_dgram_c c_c dgram_dgram)
  declare -A busy_label=(
    [busy_c_c]="busy C ping -> busy C echo"
    [busy_dgram_dgram]="dgram ping --busy-poll -> dgram listen --echo --busy-poll"
    [busy_dgram_c]="dgram ping --busy-poll -> busy C echo"
    [c_c]="C ping -> C echo (blocking)"
    [dgram_dgram]="dgram ping -> dgram listen --echo (blocking)"
  )
  declare -A busy
  for round in $(seq 1 "$ROUNDS"); do
    for i in "${!busy_rows[@]}"; do
      row=${busy_rows[$(((i + round) % ${#busy_rows[@]}))]}
      busy[$row]+="$(measure "$row" 0 1) "
    done
  done
  echo
  echo "busy polling: p50 round trip across CPUs (server on 0, client on 1), 64 B, $N exchanges per run, median of $ROUNDS runs ($(nproc) CPUs, $(uname -r))"
  echo
  echo "| | p50 (µs) | vs busy C pair |"
  echo "|---|---:|---:|"
  base=$(echo "${busy[busy_c_c]}" | median)
  for row in "${busy_rows[@]}"; do
    m=$(echo "${busy[$row]}" | median)
    printf '| %s | %.1f | %.2fx |\n' "${busy_label[$row]}" "$m" "$(echo "$m / $base" | bc -l)"
  done
  echo
  echo "runs (µs):"
  for row in "${busy_rows[@]}"; do
    echo "  ${busy_label[$row]}: ${busy[$row]}"
  done
fi

# Prints the received datagrams per second of one receive-rate row.
rx_measure() {
  local row=$1 size=$2 out
  PORT=$(free_port)
  out=$work/rx.out
  case $row in
    iperf3)
      iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
      server=$!; pids+=("$server"); sleep 0.3
      iperf3 -c 127.0.0.1 -p "$PORT" -u -b 0 -l "$size" -t "$RX_SECONDS" --json 2>/dev/null |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["end"]["sum"]; print((s["packets"]-s["lost_packets"])/s["seconds"])'
      wait "$server" 2>/dev/null || true ;;
    bench|bench_gso)
      local gso=(); [[ $row == bench_gso ]] && gso=(--gso)
      start 0-1 "$dgram" bench --serve "127.0.0.1:$PORT"
      "$dgram" bench "127.0.0.1:$PORT" --size "$size" --duration "$RX_SECONDS" "${gso[@]}" --json |
        python3 -c 'import json,sys
r=[json.loads(l) for l in sys.stdin if "\"report\"" in l][-1]
assert r["lost_elsewhere"] is not None, "foreign datagrams reached the bench server"
assert r["sender"]["sent"] == r["receiver"]["received"] + r["dropped"] + r["lost_elsewhere"]
print(r["received_per_sec"])'
      stop ;;
    c_loop)
      "$work/recvloop" "$PORT" >"$out" &
      server=$!; pids+=("$server"); sleep 0.2
      "$work/flood" "$PORT" "$size" "$RX_SECONDS" >/dev/null
      wait "$server"
      awk -v s="$RX_SECONDS" '{print $2 / s}' "$out" ;;
    json_file|json_pipe|human_file)
      case $row in
        json_file) "$dgram" listen "127.0.0.1:$PORT" --json >"$out" 2>/dev/null & ;;
        json_pipe) ( "$dgram" listen "127.0.0.1:$PORT" --json 2>/dev/null | cat | tail -1 >"$out" ) & ;;
        human_file) "$dgram" listen "127.0.0.1:$PORT" >"$out" 2>/dev/null & ;;
      esac
      server=$!; pids+=("$server")
      wait_bound dgram listen
      local sent; sent=$("$work/flood" "$PORT" "$size" "$RX_SECONDS" | awk '{print $2}')
      sleep 0.3
      pkill -INT -f "dgram listen 127.0.0.1:$PORT" || true
      wait "$server" 2>/dev/null || true
      tail -1 "$out" | python3 -c '
import json, re, sys
line = sys.stdin.read()
sent, secs = int(sys.argv[1]), float(sys.argv[2])
if line.startswith("{"):
    s = json.loads(line); received, dropped = s["received"], s["dropped"]
else:
    received, dropped = (int(x) for x in re.search(r"received (\d+) datagrams.*kernel dropped (\d+)", line).groups())
assert received + dropped == sent, (received, dropped, sent)
print(received / secs)' "$sent" "$RX_SECONDS" ;;
  esac
}

if [[ " $SECTIONS " == *" rx "* ]]; then
  rx_rows=(iperf3 bench bench_gso c_loop json_file json_pipe human_file)
  declare -A rx_label=(
    [iperf3]="iperf3 -u -b 0 (client -> server)"
    [bench]="dgram bench -> dgram bench --serve"
    [bench_gso]="dgram bench --gso -> --serve (GRO)"
    [c_loop]="C flood -> C receive loop"
    [json_file]="C flood -> dgram listen --json > file"
    [json_pipe]="C flood -> dgram listen --json to a pipe"
    [human_file]="C flood -> dgram listen > file (human)"
  )
  declare -A rx
  for size in 64 1400; do
    for round in $(seq 1 "$RX_ROUNDS"); do
      for i in "${!rx_rows[@]}"; do
        row=${rx_rows[$(((i + round) % ${#rx_rows[@]}))]}
        rx[$size,$row]+="$(rx_measure "$row" "$size") "
      done
    done
  done
  echo
  echo "received datagrams/s, unpinned, ${RX_SECONDS} s floods, median of $RX_ROUNDS runs ($(nproc) CPUs, $(uname -r))"
  echo
  echo "| | 64 B (k/s) | vs iperf3 | vs C loop | 1400 B (k/s) | vs iperf3 | vs C loop |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for row in "${rx_rows[@]}"; do
    line="| ${rx_label[$row]} "
    for size in 64 1400; do
      m=$(echo "${rx[$size,$row]}" | median)
      i=$(echo "${rx[$size,iperf3]}" | median)
      c=$(echo "${rx[$size,c_loop]}" | median)
      line+=$(printf '| %.0f | %.2fx | %.2fx ' "$(echo "$m / 1000" | bc -l)" "$(echo "$m / $i" | bc -l)" "$(echo "$m / $c" | bc -l)")
    done
    echo "$line|"
  done
  echo
  echo "runs (datagrams/s):"
  for size in 64 1400; do
    for row in "${rx_rows[@]}"; do
      echo "  $size B, ${rx_label[$row]}: ${rx[$size,$row]}"
    done
  done
fi

if [[ " $SECTIONS " == *" term "* ]]; then
  command -v tmux >/dev/null || { echo "bench-vs-peers: tmux is needed for the terminal section" >&2; exit 1; }
  echo
  python3 scripts/bench/typed_during_flood.py "$dgram" "$work/flood" "$work/recvloop" \
    "${TERM_ROUNDS:-3}" "${TERM_COUNT:-1000000}"
fi
