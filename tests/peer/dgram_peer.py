#!/usr/bin/env python3
"""Independent peer for the dgram chat protocol, version 1.

Written from docs/PROTOCOL.md alone (Python 3 standard library only).

Usage:
  python3 dgram_peer.py [--bind IP:PORT] [--peer IP:PORT | --reply]
                        [--name NAME] [--send TEXT]... [--expect N]
                        [--timeout SECONDS]
  python3 dgram_peer.py --self-test

Every event is one JSON line on stdout, flushed at once.
"""

import argparse
import collections
import json
import os
import random
import select
import socket
import sys
import time

MAGIC = 0xF5
VERSION = 1
KIND_MESSAGE = 1
KIND_RECEIPT = 2
KIND_HELLO = 3
KIND_BYE = 4
KIND_SEALED = 5
NO_TOKEN = bytes(8)        # a challenge or answer of 8 zero bytes: none
MAX_SEQ = 2 ** 53 - 1
MAX_NAME = 64
MAX_TRIES = 5              # 1 + 4 retries
INITIAL_RTO = 1.0          # before any sample
RTO_MIN = 0.2              # floor
RTO_MAX = 60.0
MAX_MISSING = 4096         # missing numbers remembered per session
LINGER = 0.5               # keep acknowledging after the work is done
RECV_BUF = 65536           # larger than any IPv4 UDP payload (65507)


# ---------------------------------------------------------------- encoding

class Malformed(Exception):
    """A malformed envelope; the argument is the reason."""


def enc_varint(n):
    if n < 0 or n >= 1 << 64:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def dec_varint(buf, pos):
    """Return (value, new_pos); raise Malformed on short/long/overflow."""
    value = 0
    shift = 0
    for i in range(10):
        if pos >= len(buf):
            raise Malformed("body does not decode")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if value >= 1 << 64:
                raise Malformed("body does not decode")
            return value, pos
        shift += 7
    raise Malformed("body does not decode")  # more than 10 bytes


def enc_bytes(b):
    return enc_varint(len(b)) + b


def dec_bytes(buf, pos):
    n, pos = dec_varint(buf, pos)
    if pos + n > len(buf):
        raise Malformed("body does not decode")
    return bytes(buf[pos:pos + n]), pos + n


def encode_message(session, seq, try_, name, payload):
    assert len(session) == 8
    return (bytes([MAGIC, VERSION, KIND_MESSAGE]) + session + enc_varint(seq)
            + bytes([try_]) + enc_bytes(name) + enc_bytes(payload))


def encode_receipt(session, seq, try_):
    assert len(session) == 8
    return (bytes([MAGIC, VERSION, KIND_RECEIPT]) + session + enc_varint(seq)
            + bytes([try_]))


def encode_hello(session, name, challenge=NO_TOKEN, answer=NO_TOKEN,
                 kind=KIND_HELLO):
    """A hello (or, with kind=KIND_BYE, a bye): session, name, then the two
    8-byte tokens, raw (section 3). Tokens are always written, as zeros
    when there is none."""
    assert len(session) == 8 and len(challenge) == 8 and len(answer) == 8
    assert kind in (KIND_HELLO, KIND_BYE)
    return (bytes([MAGIC, VERSION, kind]) + session + enc_bytes(name)
            + challenge + answer)


def decode_hello(data, kind):
    """The body of a hello or bye (after the 3-byte header, already
    checked). A body that ends after the name has neither token (both read
    as zeros); "tokens" says whether the 16 token bytes were there at all.
    Fewer than 16 bytes after the name are not tokens: they are bytes after
    the last field this reader takes whole, and ignored."""
    pos = 3
    if pos + 8 > len(data):
        raise Malformed("body does not decode")
    session = bytes(data[pos:pos + 8])
    pos += 8
    name_b, pos = dec_bytes(data, pos)
    try:
        name = name_b.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body does not decode")
    if len(name_b) > MAX_NAME:
        raise Malformed("name longer than 64 bytes")
    env = {"kind": kind, "session": session, "name": name,
           "name_bytes": name_b, "challenge": NO_TOKEN, "answer": NO_TOKEN,
           "tokens": False}
    if pos + 16 <= len(data):
        env["challenge"] = bytes(data[pos:pos + 8])
        env["answer"] = bytes(data[pos + 8:pos + 16])
        env["tokens"] = True
    return env


def is_envelope(data):
    return len(data) >= 1 and data[0] == MAGIC


def decode_envelope(data):
    """Decode an envelope (data[0] == 0xF5), checking validity in the spec's
    order. Returns a dict; raises Malformed(reason)."""
    if len(data) < 3:
        raise Malformed("shorter than the 3-byte header")
    if data[1] != VERSION:
        raise Malformed("unknown version %d" % data[1])
    kind = data[2]
    if kind == KIND_SEALED:
        raise Malformed("sealed: needs a key")
    if kind not in (KIND_MESSAGE, KIND_RECEIPT, KIND_HELLO, KIND_BYE):
        raise Malformed("unknown kind %d" % kind)
    if kind in (KIND_HELLO, KIND_BYE):
        return decode_hello(data, kind)
    pos = 3
    if pos + 8 > len(data):
        raise Malformed("body does not decode")
    session = bytes(data[pos:pos + 8])
    pos += 8
    seq, pos = dec_varint(data, pos)
    if pos >= len(data):
        raise Malformed("body does not decode")
    try_ = data[pos]
    pos += 1
    env = {"kind": kind, "session": session, "seq": seq, "try": try_}
    if kind == KIND_MESSAGE:
        name_b, pos = dec_bytes(data, pos)
        try:
            name = name_b.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("body does not decode")
        payload, pos = dec_bytes(data, pos)
        env["name"] = name
        env["name_bytes"] = name_b
        env["payload"] = payload
    # Bytes after the last field are ignored (forward compatibility).
    if seq == 0 or seq > MAX_SEQ:
        raise Malformed("seq %d out of range" % seq)
    if try_ == 0:
        raise Malformed("try is 0")
    if kind == KIND_MESSAGE and len(env["name_bytes"]) > MAX_NAME:
        raise Malformed("name longer than 64 bytes")
    return env


# ---------------------------------------------------------------- output

def emit(**fields):
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fmt_addr(addr):
    return "%s:%d" % (addr[0], addr[1])


def parse_addr(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected IP:PORT, got %r" % text)
    try:
        socket.inet_aton(host)
        p = int(port)
    except (OSError, ValueError):
        raise argparse.ArgumentTypeError("expected IPv4 IP:PORT, got %r" % text)
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError("port out of range in %r" % text)
    return (host, p)


# ---------------------------------------------------------------- sender

class RttEstimator:
    """RFC 6298 style estimator, one per destination."""

    def __init__(self):
        self.srtt = None
        self.rttvar = None

    def sample(self, r):
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r

    def rto(self):
        if self.srtt is None:
            t = INITIAL_RTO
        else:
            t = self.srtt + max(0.001, 4 * self.rttvar)
        return min(RTO_MAX, max(RTO_MIN, t))

    def wait_for_try(self, k):
        base = min(RTO_MAX, self.rto() * (2 ** (k - 1)))
        return base * random.uniform(1.0, 1.25)


class Outgoing:
    def __init__(self, seq, payload):
        self.seq = seq
        self.payload = payload
        self.tries = 0            # copies sent so far
        self.sent_at = {}         # try -> monotonic time
        self.deadline = None
        self.status = None        # None (pending), "delivered", "failed"
        self.late_reported = False


# ---------------------------------------------------------------- receiver

class SessionTrack:
    """Numbers seen from one (source address, session)."""

    def __init__(self):
        self.highest = 0
        self.missing = set()
        self.order = collections.deque()   # missing numbers, oldest first
        self.lost = 0
        self.duplicates = 0

    def _add_missing(self, first, last):
        count = last - first + 1
        if count > MAX_MISSING:
            self.lost += count - MAX_MISSING
            first = last - MAX_MISSING + 1
        for n in range(first, last + 1):
            self.missing.add(n)
            self.order.append(n)
        while len(self.missing) > MAX_MISSING:
            n = self.order.popleft()
            if n in self.missing:
                self.missing.discard(n)
                self.lost += 1
        # drop stale heads (numbers filled in since)
        while self.order and self.order[0] not in self.missing:
            self.order.popleft()

    def classify(self, seq):
        """Return ("new", gap_or_None) / ("reordered", None) / ("duplicate", None)."""
        if seq > self.highest:
            gap = None
            if seq > self.highest + 1:
                gap = (self.highest + 1, seq - 1)
                self._add_missing(self.highest + 1, seq - 1)
            self.highest = seq
            return "new", gap
        if seq in self.missing:
            self.missing.discard(seq)
            return "reordered", None
        self.duplicates += 1
        return "duplicate", None


# ---------------------------------------------------------------- main loop

def run(args):
    name_b = args.name.encode("utf-8")
    if len(name_b) > MAX_NAME:
        sys.stderr.write("name longer than 64 bytes\n")
        return 2
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in args.name):
        sys.stderr.write("name contains control characters\n")
        return 2

    session = os.urandom(8)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(args.bind)
    sock.setblocking(False)
    emit(event="bound", local=fmt_addr(sock.getsockname()))

    start = time.monotonic()
    hard_deadline = start + args.timeout
    dest = args.peer                       # None with --reply until learned
    rtt = RttEstimator()
    outgoing = [Outgoing(i + 1, t.encode("utf-8"))
                for i, t in enumerate(args.send)]
    by_seq = {m.seq: m for m in outgoing}
    tracks = {}                            # (addr, session) -> SessionTrack
    received_new = 0
    linger_until = None
    started_sending = False

    def send_copy(m, now):
        m.tries += 1
        m.sent_at[m.tries] = now
        dgram = encode_message(session, m.seq, m.tries, name_b, m.payload)
        try:
            sock.sendto(dgram, dest)
        except OSError:
            pass  # treated as a lost copy; the timer retries
        m.deadline = now + rtt.wait_for_try(m.tries)

    def start_sending(now):
        nonlocal started_sending
        started_sending = True
        for m in outgoing:
            send_copy(m, now)

    def settled():
        return all(m.status is not None for m in outgoing)

    if dest is not None:
        start_sending(time.monotonic())

    def handle(data, addr, truncated, now):
        nonlocal dest, received_new
        if not is_envelope(data):
            emit(event="plain", **{"from": fmt_addr(addr)}, len=len(data))
            return
        if truncated:
            emit(event="malformed", reason="truncated by the receive buffer")
            return
        try:
            env = decode_envelope(data)
        except Malformed as e:
            emit(event="malformed", reason=str(e))
            return
        if env["kind"] == KIND_MESSAGE:
            # acknowledge every copy, duplicates included
            try:
                sock.sendto(encode_receipt(session, env["seq"], env["try"]), addr)
            except OSError:
                pass
            if dest is None and args.reply:
                dest = addr
                start_sending(now)
            key = (addr, env["session"])
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = SessionTrack()
            verdict, gap = track.classify(env["seq"])
            if verdict == "duplicate":
                emit(event="duplicate", **{"from": fmt_addr(addr)}, seq=env["seq"])
                return
            if gap is not None:
                emit(event="gap", first=gap[0], last=gap[1])
            received_new += 1
            emit(event="message", **{"from": fmt_addr(addr)},
                 name=env["name"], seq=env["seq"], **{"try": env["try"]},
                 text=env["payload"].decode("utf-8", errors="replace"))
            return
        if env["kind"] in (KIND_HELLO, KIND_BYE):
            # group traffic (section 9): this peer is no member; see
            # dgram_member.py
            emit(event="presence", **{"from": fmt_addr(addr)},
                 kind="hello" if env["kind"] == KIND_HELLO else "bye")
            return
        # receipt: match by source address, seq and try
        if dest is None or addr != dest:
            return
        m = by_seq.get(env["seq"])
        if m is None or env["try"] not in m.sent_at:
            return
        if m.status is None:
            sample = now - m.sent_at[env["try"]]
            rtt.sample(sample)
            m.status = "delivered"
            m.deadline = None
            emit(event="receipt", seq=m.seq, status="delivered", tries=m.tries,
                 rtt_ms=round(sample * 1000.0, 3))
        elif m.status == "failed" and not m.late_reported:
            m.late_reported = True
            emit(event="late", seq=m.seq)
        # further receipts for a delivered message change nothing

    while True:
        now = time.monotonic()
        # timers
        for m in outgoing:
            if m.status is None and m.deadline is not None and now >= m.deadline:
                if m.tries >= MAX_TRIES:
                    m.status = "failed"
                    m.deadline = None
                    emit(event="receipt", seq=m.seq, status="failed",
                         tries=m.tries, rtt_ms=None)
                else:
                    send_copy(m, now)
        if linger_until is None and settled() and received_new >= args.expect:
            linger_until = now + LINGER
        if linger_until is not None and now >= linger_until:
            return 0
        if linger_until is None and now >= hard_deadline:
            emit(event="timeout")
            return 1

        wake = [hard_deadline if linger_until is None else linger_until]
        wake += [m.deadline for m in outgoing
                 if m.status is None and m.deadline is not None]
        wait = max(0.0, min(wake) - now)
        ready, _, _ = select.select([sock], [], [], wait)
        if not ready:
            continue
        # drain the socket
        while True:
            try:
                data, _anc, flags, addr = sock.recvmsg(RECV_BUF)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:
                continue  # ICMP error from an earlier send; ignore
            except OSError:
                break
            handle(data, addr[:2], bool(flags & socket.MSG_TRUNC),
                   time.monotonic())


# ---------------------------------------------------------------- self-test

def self_test():
    h = bytes.fromhex
    # varints from section 2
    for n, hexs in [(1, "01"), (127, "7F"), (128, "8001"), (300, "AC02")]:
        assert enc_varint(n) == h(hexs), (n, enc_varint(n).hex())
        assert dec_varint(h(hexs), 0) == (n, len(h(hexs)))
    assert dec_varint(enc_varint(2 ** 64 - 1), 0)[0] == 2 ** 64 - 1
    assert len(enc_varint(2 ** 64 - 1)) == 10

    # worked example: message
    msg = encode_message(h("0102030405060708"), 300, 1, b"al", b"hi")
    want_msg = h("F50101" "0102030405060708" "AC02" "01" "02616C" "026869")
    assert msg == want_msg, msg.hex()
    env = decode_envelope(want_msg)
    assert env == {"kind": 1, "session": h("0102030405060708"), "seq": 300,
                   "try": 1, "name": "al", "name_bytes": b"al",
                   "payload": b"hi"}, env
    # worked example: receipt for its second try
    rc = encode_receipt(h("0807060504030201"), 300, 2)
    want_rc = h("F50102" "0807060504030201" "AC02" "02")
    assert rc == want_rc, rc.hex()
    env = decode_envelope(want_rc)
    assert env == {"kind": 2, "session": h("0807060504030201"), "seq": 300,
                   "try": 2}, env
    # receipt never larger than the message it answers
    assert len(want_rc) <= len(want_msg)

    # trailing bytes are ignored
    assert decode_envelope(want_msg + b"\x00\x01")["payload"] == b"hi"
    assert decode_envelope(want_rc + b"extra")["seq"] == 300

    def bad(data, reason):
        try:
            decode_envelope(data)
        except Malformed as e:
            assert str(e) == reason, (data.hex(), str(e), reason)
        else:
            raise AssertionError("accepted %s" % data.hex())

    bad(h("F5"), "shorter than the 3-byte header")
    bad(h("F501"), "shorter than the 3-byte header")
    bad(h("F50201"), "unknown version 2")
    bad(h("F50003") , "unknown version 0")     # version checked before kind
    bad(h("F50106"), "unknown kind 6")
    bad(h("F50105") + bytes(40), "sealed: needs a key")
    bad(h("F50103"), "body does not decode")   # a hello with no session
    bad(h("F501FF"), "unknown kind 255")
    bad(h("F50101"), "body does not decode")
    bad(want_msg[:-1], "body does not decode")
    bad(want_rc[:-1], "body does not decode")
    bad(h("F50102") + bytes(8) + b"\x80" * 10 + b"\x01" + b"\x01",
        "body does not decode")                 # varint longer than 10 bytes
    bad(h("F50102") + bytes(8) + b"\xff" * 9 + b"\x02" + b"\x01",
        "body does not decode")                 # overflows 64 bits
    bad(h("F50101") + bytes(8) + h("01" "01" "02FFFE" "00"),
        "body does not decode")                 # name not UTF-8
    bad(encode_receipt(bytes(8), 0, 1), "seq 0 out of range")
    bad(encode_receipt(bytes(8), 2 ** 53, 1), "seq %d out of range" % 2 ** 53)
    assert decode_envelope(encode_receipt(bytes(8), MAX_SEQ, 1))["seq"] == MAX_SEQ
    bad(encode_receipt(bytes(8), 5, 0), "try is 0")
    bad(encode_message(bytes(8), 5, 1, b"a" * 65, b""),
        "name longer than 64 bytes")
    assert decode_envelope(encode_message(bytes(8), 5, 1, b"a" * 64, b""))

    # hellos and byes (section 3): session, name, challenge, answer; the
    # tokens raw, 8 bytes each, no length prefix
    hs = h("0102030405060708")
    ch, an = h("1112131415161718"), h("2122232425262728")
    want_hello = h("F50103" "0102030405060708" "02616C"
                   "1112131415161718" "2122232425262728")
    assert encode_hello(hs, b"al", ch, an) == want_hello
    assert decode_envelope(want_hello) == {
        "kind": 3, "session": hs, "name": "al", "name_bytes": b"al",
        "challenge": ch, "answer": an, "tokens": True}
    # the periodic hello: no tokens, written as 16 zero bytes
    want_plain_hello = h("F50103" "0102030405060708" "02616C") + bytes(16)
    assert encode_hello(hs, b"al") == want_plain_hello
    # a challenge to a newcomer, our name left out (empty string: 00)
    want_challenge = (h("F50103" "0807060504030201" "00" "1112131415161718")
                      + bytes(8))
    assert encode_hello(h("0807060504030201"), b"", challenge=ch) \
        == want_challenge
    assert len(want_challenge) <= len(want_plain_hello)
    # a hello that ends after the name (older dgram): both tokens zeros
    old = decode_envelope(h("F50103" "0102030405060708" "02616C"))
    assert old["challenge"] == NO_TOKEN and old["answer"] == NO_TOKEN
    assert not old["tokens"]
    # bytes after the answer are ignored
    assert decode_envelope(want_hello + b"\x07")["answer"] == an
    # a bye has the hello's layout, kind 4
    want_bye = h("F50104" "0102030405060708" "02616C") + bytes(16)
    assert encode_hello(hs, b"al", kind=KIND_BYE) == want_bye
    assert decode_envelope(want_bye)["kind"] == KIND_BYE
    bad(h("F50103" "0102030405060708" "03616C"), "body does not decode")
    bad(h("F50103" "0102030405060708" "41") + b"a" * 65,
        "name longer than 64 bytes")

    # plain vs envelope
    assert not is_envelope(b"") and not is_envelope(b"hello")
    assert is_envelope(b"\xf5")

    # receiver numbering
    t = SessionTrack()
    assert t.classify(1) == ("new", None)
    assert t.classify(4) == ("new", (2, 3))
    assert t.classify(3) == ("reordered", None)
    assert t.classify(3) == ("duplicate", None)
    assert t.classify(1) == ("duplicate", None)
    assert t.classify(2) == ("reordered", None)
    assert not t.missing
    t = SessionTrack()
    assert t.classify(5000) == ("new", (1, 4999))
    assert len(t.missing) == MAX_MISSING and t.lost == 4999 - MAX_MISSING
    assert t.classify(1) == ("duplicate", None)    # counted lost already
    assert t.classify(4999) == ("reordered", None)

    # timers
    r = RttEstimator()
    assert r.rto() == 1.0
    r.sample(0.1)
    assert abs(r.srtt - 0.1) < 1e-12 and abs(r.rttvar - 0.05) < 1e-12
    assert abs(r.rto() - 0.3) < 1e-12
    r.sample(0.1)
    assert abs(r.rttvar - 0.0375) < 1e-12 and abs(r.srtt - 0.1) < 1e-12
    r2 = RttEstimator()
    r2.sample(0.0001)
    assert r2.rto() == RTO_MIN                    # floor
    for k in range(1, 6):
        w = r.wait_for_try(k)
        base = r.rto() * 2 ** (k - 1)
        assert base - 1e-12 <= w <= base * 1.25 + 1e-12
    r3 = RttEstimator()
    r3.sample(100.0)
    assert r3.rto() == RTO_MAX
    assert r3.wait_for_try(3) <= RTO_MAX * 1.25

    emit(event="self-test", status="ok")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="dgram protocol v1 test peer")
    p.add_argument("--bind", type=parse_addr, default=("127.0.0.1", 0))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--peer", type=parse_addr)
    g.add_argument("--reply", action="store_true")
    p.add_argument("--name", default="")
    p.add_argument("--send", action="append", default=[])
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.send and args.peer is None and not args.reply:
        p.error("--send needs --peer or --reply")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
