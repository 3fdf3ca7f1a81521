#!/usr/bin/env python3
"""typed_during_flood.py: how long a line typed at `dgram chat`'s prompt
takes to reach the peer while the chat's own port is flooded, and how many
datagrams of the flood the chat's kernel dropped against a C receive loop
given the same flood (issue 8's terminal targets).

Each round:
  1. a Python socket on 127.0.0.1 plays the peer and notes when a typed
     line arrives (the first copy; the chat retransmits, as nobody
     acknowledges);
  2. `dgram chat --peer THAT` runs in a tmux pane (150x40), a real terminal;
  3. a line is typed with no flood (the baseline: tmux's own delay);
  4. the C flood sends COUNT 64-byte datagrams to the chat's port, and
     lines are typed 0.3 s, 0.6 s and 0.9 s into it, each timed from just
     before `tmux send-keys` to its arrival at the peer;
  5. once the flood is over and the chat's queue is empty, the kernel's
     drop count for the chat's socket (/proc/net/udp) is read;
  6. the C receive loop gets the same flood, and its drops are read.

Usage: typed_during_flood.py DGRAM FLOOD RECVLOOP [ROUNDS] [COUNT]
Talks only on 127.0.0.1. Needs tmux.
"""

import socket
import subprocess
import sys
import time

DGRAM, FLOOD, RECVLOOP = sys.argv[1:4]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
COUNT = int(sys.argv[5]) if len(sys.argv) > 5 else 1_000_000
TMUX = ["tmux", "-L", "dgram-typed-during-flood"]
DEADLINE = 20.0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def udp_row(port):
    """(rx_queue, drops) of the socket bound to 127.0.0.1:port, or None."""
    wanted = "0100007F:%04X" % port
    with open("/proc/net/udp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted:
                return int(fields[4].split(":")[1], 16), int(fields[-1])
    return None


def wait(what, check):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    sys.exit(f"typed_during_flood: timed out waiting for {what}")


def typed(peer, text):
    """Types `text` and Enter in the chat's pane; returns ms until the peer
    got it."""
    marker = text.encode()
    start = time.monotonic()
    subprocess.run(TMUX + ["send-keys", "-t", "chat", "-l", text], check=True)
    subprocess.run(TMUX + ["send-keys", "-t", "chat", "Enter"], check=True)
    end = start + DEADLINE
    while time.monotonic() < end:
        peer.settimeout(max(0.001, end - time.monotonic()))
        try:
            data, _ = peer.recvfrom(65535)
        except socket.timeout:
            break
        if marker in data:
            return (time.monotonic() - start) * 1000
    sys.exit(f"typed_during_flood: {text!r} never reached the peer")


def flood(port):
    return subprocess.Popen(
        [FLOOD, str(port), "64", "60", str(COUNT)],
        stdout=subprocess.PIPE,
        text=True,
    )


def flood_sent(proc):
    out, _ = proc.communicate(timeout=60)
    return int(out.split()[1])


def chat_round(n):
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer_port = peer.getsockname()[1]
    port = free_port()
    command = (
        f"{DGRAM} chat --peer 127.0.0.1:{peer_port} --bind 127.0.0.1:{port} "
        f"--name bench --no-history --retries 0"
    )
    subprocess.run(
        TMUX + ["new-session", "-d", "-s", "chat", "-x", "150", "-y", "40", command],
        check=True,
    )
    try:
        wait("the chat's port", lambda: udp_row(port))
        # The prompt is up once the chat has bound; give the first line a
        # moment less by waiting for the banner on the screen.
        wait(
            "the chat's prompt",
            lambda: "listening" in subprocess.run(
                TMUX + ["capture-pane", "-p", "-t", "chat"],
                capture_output=True, text=True).stdout,
        )
        idle = typed(peer, f"idle line {n}")
        sender = flood(port)
        start = time.monotonic()
        during = []
        for i, at in enumerate((0.3, 0.6, 0.9)):
            time.sleep(max(0.0, start + at - time.monotonic()))
            running = sender.poll() is None
            ms = typed(peer, f"typed during flood {n}.{i}")
            during.append((ms, running and sender.poll() is None))
        sent = flood_sent(sender)
        # The chat drains its queue; then its drop count is final.
        wait("the chat's queue to empty", lambda: udp_row(port)[0] == 0 or None)
        time.sleep(0.1)
        dropped = udp_row(port)[1]
    finally:
        subprocess.run(TMUX + ["kill-server"], stderr=subprocess.DEVNULL)
    return idle, during, sent, dropped


def c_round():
    port = free_port()
    loop = subprocess.Popen([RECVLOOP, str(port)], stdout=subprocess.PIPE, text=True)
    wait("the C loop's port", lambda: udp_row(port))
    sent = flood_sent(flood(port))
    out, _ = loop.communicate(timeout=60)
    # "received N dropped M"
    words = out.split()
    return sent, int(words[words.index("dropped") + 1])


def main():
    print(f"{ROUNDS} rounds, {COUNT} x 64 B flood to the chat's port, chat in tmux 150x40")
    for n in range(1, ROUNDS + 1):
        idle, during, sent, dropped = chat_round(n)
        c_sent, c_dropped = c_round()
        times = ", ".join(
            f"{ms:.1f} ms" + ("" if running else " (flood had ended)")
            for ms, running in during
        )
        print(
            f"round {n}: typed line reached the peer in {idle:.1f} ms idle; "
            f"during the flood {times}; "
            f"chat dropped {dropped} of {sent} ({100 * dropped / sent:.2f}%), "
            f"C loop dropped {c_dropped} of {c_sent} ({100 * c_dropped / c_sent:.2f}%)"
        )


main()
