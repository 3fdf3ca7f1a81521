#!/usr/bin/env bash
# bench-nat.sh: `dgram chat --via` across NATs (issue 19), measured in
# network namespaces this script builds once and removes on exit (root,
# iproute2, nftables, python3).
#
# The world (as `dgram lab nat` and tests/natlab.rs build it): an
# "internet" bridge; a server (203.0.113.10) running `dgram rendezvous` on
# port 3478 and, on port 3479, coturn's turnserver as the second STUN
# server (so that each side learns whether its NAT takes a new port per
# destination) and as the TURN relay (long-term credentials u:p, realm
# dgram.test, relayed addresses 203.0.113.10:50000-50999); four homes, each a host
# (192.168.N.2) behind its router (203.0.113.N): 1 and 2 `masquerade`
# ("easy": Linux keeps the port), 3 and 4 `masquerade fully-random`
# ("hard"), all with a home router's input policy (drop; accept the LAN,
# lo, and ct state established,related).
#
# RUNS runs (default 100) per NAT pair, one pair at a time, each with a
# fresh code number: easy-easy (homes 1, 2), easy-hard (1, 3; the hard side
# comes second on even runs, first on odd ones), hard-hard (3, 4). A run
# starts the first peer, waits until the rendezvous holds its number, starts
# the second with one line on its stdin, and waits (PATH_WAIT ms, default
# the chat's 10000, plus 15 s) for that message's receipt or the search's
# failure. Both hard-hard peers run with `--turn u:p@203.0.113.10:3479`
# (each allocates a relayed address and offers it; the side that came
# second chooses a relayed pair when no direct one is proven 3 s after the
# pairing). Printed per pair: how many connected directly (LAN / through the
# NATs / by the port search), relayed or failed (with the reasons, numbers
# replaced by N); the time from the second peer's start to its message's
# delivery (median, p95, max); what the rendezvous carried per pairing
# (nftables counters on the server's input and output for UDP port 3478,
# IP bytes); what the relay carried per pairing (nftables counters on the
# server: TURN to and from port 3479 except STUN Binding, and everything to
# and from the relayed ports 50000-50999, IP bytes); the sealed chat
# datagrams that reached the server (dgram kind 7 at the start of the UDP
# payload, or after a ChannelData header to port 3479): to the relay's ports
# when a pairing is relayed (the relay sees ciphertext only), and never
# anywhere else (must be 0).
#
# Figures only: nothing here asserts a time. Usage:
#   sudo scripts/bench-nat.sh            (RUNS=100 PATH_WAIT=10000)
#   RUNS=10 scripts/bench-nat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-100}
PATH_WAIT=${PATH_WAIT:-10000}
if [ "$(id -u)" != 0 ]; then
  echo "bench-nat: needs root (it builds network namespaces)" >&2
  exit 1
fi
for tool in ip nft python3 turnserver; do
  command -v "$tool" >/dev/null || { echo "bench-nat: needs $tool" >&2; exit 1; }
done
cargo build --release --quiet
dgram=$PWD/target/release/dgram
work=$(mktemp -d)
P=dgram-bnat-$$
made=()
cleanup() {
  # Killing what runs in the namespaces first (coturn, the rendezvous),
  # then the namespaces (which takes their veths along).
  for pidfile in "$work"/*.pid; do
    [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for name in "${made[@]}"; do ip netns delete "$name" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ns() {
  made+=("$P-$1")
  ip netns add "$P-$1"
  ip -n "$P-$1" link set lo up
}
# attach PORT NS ADDR: NS's eth0 on the internet bridge.
attach() {
  ip -n "$P-net" link add "$1" type veth peer name eth0 netns "$P-$2"
  ip -n "$P-net" link set "$1" master br0 up
  ip -n "$P-$2" addr add "$3" dev eth0
  ip -n "$P-$2" link set eth0 up
}
ns net
ip -n "$P-net" link add br0 type bridge
ip -n "$P-net" link set br0 up
ns server
attach srv server 203.0.113.10/24
for n in 1 2 3 4; do
  if [ "$n" -le 2 ]; then nat=masquerade; else nat="masquerade fully-random"; fi
  ns "r$n"
  attach "r$n" "r$n" "203.0.113.$n/24"
  ns "h$n"
  ip -n "$P-r$n" link add lan type veth peer name eth0 netns "$P-h$n"
  ip -n "$P-r$n" addr add "192.168.$n.1/24" dev lan
  ip -n "$P-r$n" link set lan up
  ip -n "$P-h$n" addr add "192.168.$n.2/24" dev eth0
  ip -n "$P-h$n" link set eth0 up
  ip -n "$P-h$n" route add default via "192.168.$n.1"
  # `fwd` is an nft keyword: the chain is `forward`.
  ip netns exec "$P-r$n" nft -f - <<EOF
table ip nat {
  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "eth0" $nat; }
}
table inet home {
  chain input { type filter hook input priority 0; policy drop;
    iifname "lo" accept; iifname "lan" accept; ct state established,related accept; }
  chain forward { type filter hook forward priority 0; policy drop;
    iifname "lan" accept; ct state established,related accept; }
}
EOF
  ip netns exec "$P-r$n" sysctl -qw net.ipv4.ip_forward=1
done
# The server's counters: what the rendezvous port and the relay carried
# each way (the relay: TURN on port 3479 but not STUN Binding, type 0x0001
# in and 0x0101 out, and the relayed ports), and any sealed chat datagram
# arriving: F5 01 07 at the start of the UDP payload (to the relayed ports:
# relayed; to any other port: must not happen), or after a 4-byte
# ChannelData header to port 3479 (relayed).
ip netns exec "$P-server" nft -f - <<'EOF'
table inet watch {
  counter rendezvous_in {}
  counter rendezvous_out {}
  counter relay_in {}
  counter relay_out {}
  counter sealed_relayed {}
  counter sealed_channel {}
  counter sealed_in {}
  chain input { type filter hook input priority -10; policy accept;
    udp dport 3478 counter name "rendezvous_in";
    udp dport 3479 @th,64,16 != 0x0001 counter name "relay_in";
    udp dport 50000-50999 counter name "relay_in";
    udp dport 50000-50999 @th,64,24 0xf50107 counter name "sealed_relayed";
    udp dport 3479 @th,96,24 0xf50107 counter name "sealed_channel";
    udp dport != 50000-50999 @th,64,24 0xf50107 counter name "sealed_in"; }
  chain output { type filter hook output priority -10; policy accept;
    udp sport 3478 counter name "rendezvous_out";
    udp sport 3479 @th,64,16 != 0x0101 counter name "relay_out";
    udp sport 50000-50999 counter name "relay_out"; }
}
EOF

# Without its own second port (3479 by default): that is coturn's, and
# with the rendezvous on it coturn cannot bind and never relays.
ip netns exec "$P-server" "$dgram" rendezvous --json --no-other-port 203.0.113.10:3478 >"$work/rendezvous" 2>&1 &
echo $! >"$work/rendezvous.pid"
# STUN Binding needs no credentials; Allocate does (the long-term
# mechanism). The relayed ports are a range of their own, for the counters.
ip netns exec "$P-server" turnserver -n --listening-ip 203.0.113.10 --listening-port 3479 \
  --relay-ip 203.0.113.10 --min-port 50000 --max-port 50999 \
  --lt-cred-mech --user u:p --realm dgram.test \
  --no-tls --no-dtls --no-tcp --no-tcp-relay --no-cli \
  --pidfile "$work/coturn.own-pid" --userdb "$work/turndb" \
  --log-file stdout --simple-log >"$work/coturn" 2>&1 &
echo $! >"$work/stun2.pid"
for _ in $(seq 200); do
  udp=$(ip netns exec "$P-server" cat /proc/net/udp)
  if grep -q ':0D96 ' <<<"$udp" && grep -q ':0D97 ' <<<"$udp"; then break; fi
  sleep 0.05
done

python3 - "$dgram" "$P" "$RUNS" "$PATH_WAIT" <<'PY'
import json, queue, re, statistics, subprocess, sys, threading, time

dgram, prefix, runs, path_wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
RENDEZVOUS, STUN = "203.0.113.10:3478", "203.0.113.10:3479"
TURN = ["--turn", "u:p@203.0.113.10:3479"]

def counter(name):
    out = subprocess.run(["ip", "netns", "exec", f"{prefix}-server", "nft", "list", "counter", "inet", "watch", name],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"packets (\d+) bytes (\d+)", out)
    return int(m.group(1)), int(m.group(2))

class Peer:
    def __init__(self, home, code, extra, line=None):
        args = ["ip", "netns", "exec", f"{prefix}-h{home}", dgram, "chat", "--via", RENDEZVOUS, "--stun", STUN,
                "--code", code, "--json", "--no-history", "--linger", "0", "--path-wait", str(path_wait)] + extra
        self.start = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            self.events.put((time.monotonic(), event))
        self.events.put((time.monotonic(), None))

    def until(self, names, deadline):
        """The first event named in `names` (and when it came), or None."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                at, event = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if event is None:
                return None
            self.seen.append(event)
            if event["event"] in names:
                return at, event

    def end(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

number = 0
BYTES = ["rendezvous_in", "rendezvous_out", "relay_in", "relay_out"]

def run(first_home, second_home, extra):
    """One pairing: (outcome, detail, seconds to delivery or None, bytes per counter of BYTES, search)."""
    global number
    number = number % 999 + 1
    code = f"{number}-clockwork-crossover-ragtime"
    before = [counter(name)[1] for name in BYTES]
    first = Peer(first_home, code, extra)
    if first.until({"rendezvous_waiting"}, time.monotonic() + 10) is None:
        first.end()
        return "failed", "the first peer never waited at the rendezvous: " + first.proc.stderr.read().strip(), None, [0] * len(BYTES), None
    second = Peer(second_home, code, extra, f"hello {number}")
    deadline = time.monotonic() + path_wait / 1000 + 15
    outcome, detail, took, search = "failed", "no path and no failure within the deadline", None, None
    got = second.until({"path_found", "path_failed"}, deadline)
    if got is not None and got[1]["event"] == "path_failed":
        detail = got[1]["reason"]
    elif got is not None:
        found = got[1]
        search = (found["search_sockets"], found["search_probes"])
        receipt = second.until({"receipt"}, deadline)
        if receipt is not None and receipt[1]["status"] == "delivered":
            outcome, took = found["path"], receipt[0] - second.start
            detail = found["description"]
        else:
            detail = f"path {found['path']} found, but the first message was not delivered"
    second.end()
    first.end()
    if search is not None:
        # The other side's figures: the easy side counts probes, the hard side sockets.
        other = next((e for e in first.seen if e["event"] == "path_found"), None)
        if other is None:
            got = first.until({"path_found"}, time.monotonic() + 0.5)
            other = got[1] if got is not None else None
        if other is not None:
            search = (search[0] + other["search_sockets"], search[1] + other["search_probes"])
    # The relay's allocations are given back as the peers end: counted too.
    after = [counter(name)[1] for name in BYTES]
    return outcome, detail, took, [a - b for a, b in zip(after, before)], search

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

print(f"dgram chat --via across NATs: {runs} runs per pair, --path-wait {path_wait} ms; "
      f"second STUN server and TURN relay: coturn (turnserver); hard–hard with {' '.join(TURN)}")
rows = []
for label, homes, extra in [("easy–easy", (1, 2), []), ("easy–hard", (1, 3), []), ("hard–hard", (3, 4), TURN)]:
    outcomes, reasons, times, carried, searched = {}, {}, [], [], []
    started = time.monotonic()
    for i in range(runs):
        a, b = homes if i % 2 == 0 or label != "easy–hard" else homes[::-1]
        outcome, detail, took, bytes_each, search = run(a, b, extra)
        if outcome == "direct" and "port search" in detail:
            outcome = "direct (port search)"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "failed":
            reason = re.sub(r"\d+", "N", detail)
            reasons[reason] = reasons.get(reason, 0) + 1
        if took is not None:
            times.append(took)
        if search is not None and search != (0, 0):
            searched.append(search)
        carried.append(bytes_each)
    rows.append((label, outcomes, reasons, times, carried, searched, time.monotonic() - started))

sealed = counter("sealed_in")
sealed_relayed = counter("sealed_relayed")
sealed_channel = counter("sealed_channel")
print()
print("| NAT pair | runs | direct | relayed | failed | to the first delivery: median | p95 | max | rendezvous bytes per pairing (in / out, median) | relay bytes per pairing (in / out, median) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for label, outcomes, reasons, times, carried, searched, _ in rows:
    median = lambda k: statistics.median(c[k] for c in carried)
    direct = sum(n for k, n in outcomes.items() if k in ("lan", "direct", "direct (port search)"))
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items()) if k not in ("failed", "relayed"))
    relayed = outcomes.get("relayed", 0)
    failed = outcomes.get("failed", 0)
    fmt = lambda s: f"{s:.2f} s"
    timing = [fmt(statistics.median(times)), fmt(pct(times, 95)), fmt(max(times))] if times else ["–"] * 3
    print(f"| {label} | {runs} | {direct} ({100 * direct / runs:.0f}%{'; ' + kinds if kinds else ''}) | {relayed} | {failed} ({100 * failed / runs:.0f}%) | "
          f"{timing[0]} | {timing[1]} | {timing[2]} | {median(0):.0f} / {median(1):.0f} | {median(2):.0f} / {median(3):.0f} |")
print()
for label, outcomes, reasons, times, carried, searched, wall in rows:
    within = lambda s: sum(1 for t in times if t <= s)
    print(f"{label}: {wall:.0f} s for {runs} runs; delivered within 2 s: {within(2)}, within 5 s: {within(5)}; "
          f"rendezvous bytes per pairing in+out max {max(c[0] + c[1] for c in carried)}; "
          f"relay bytes per pairing in+out max {max(c[2] + c[3] for c in carried)}")
    if searched:
        print(f"  port searches: {len(searched)}; sockets opened (hard side) median {statistics.median(s[0] for s in searched):.0f}, "
              f"random-port probes (easy side) median {statistics.median(s[1] for s in searched):.0f}, max {max(s[1] for s in searched)}")
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  failed {n}×: {reason}")
print()
print(f"sealed chat datagrams (kind 7) that reached the server: {sealed_relayed[0]} to the relayed ports, "
      f"{sealed_channel[0]} in ChannelData to the TURN port, {sealed[0]} anywhere else (must be 0)")
PY
