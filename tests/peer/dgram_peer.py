#!/usr/bin/env python3
"""Independent peer for the dgram chat protocol, version 1.

Written from docs/PROTOCOL.md alone (Python 3 standard library only).

Usage:
  python3 dgram_peer.py [--bind IP:PORT] [--peer IP:PORT | --reply]
                        [--name NAME] [--send TEXT]... [--expect N]
                        [--timeout SECONDS]
                        [--key-file FILE | --code CODE] [--move-after N]
                        [--inits-per-second N]
  python3 dgram_peer.py --self-test

Every event is one JSON line on stdout, flushed at once.

With --key-file or --code it speaks only in a secure session (section 10,
dgram_secure.py, which needs the PyPI packages `cryptography` and
`spake2`): with --peer it begins the handshake (the initiator), with
--reply it answers the first one (the responder). Without them it needs
the standard library only.

--move-after N plays a peer whose address changes (a NAT's new mapping):
once its first N messages are delivered it sends the rest from a new
socket (a new port) and closes the old one.
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

    key = password = None
    if args.key_file is not None or args.code is not None:
        import dgram_secure
        try:
            if args.key_file is not None:
                key = dgram_secure.read_key_file(args.key_file)
            else:
                password = dgram_secure.canonical_code(args.code)
        except (OSError, ValueError) as e:
            sys.stderr.write("%s\n" % e)
            return 2

    session = os.urandom(8)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(args.bind)
    sock.setblocking(False)
    emit(event="bound", local=fmt_addr(sock.getsockname()), session=session.hex())

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
    secure = None

    def send_raw(data, addr):
        try:
            sock.sendto(data, addr)
        except OSError:
            pass  # treated as a lost copy; the timers go on

    def send_envelope(envelope, addr):
        if secure is None:
            send_raw(envelope, addr)
        else:
            secure.send_envelope(envelope, addr, time.monotonic())

    if key is not None or password is not None:
        secure = dgram_secure.SecurePeer(
            session, send_raw, emit, RttEstimator().wait_for_try, MAX_TRIES,
            key=key, password=password, inits_per_second=args.inits_per_second)

    def send_copy(m, now):
        m.tries += 1
        m.sent_at[m.tries] = now
        send_envelope(encode_message(session, m.seq, m.tries, name_b, m.payload),
                      dest)
        m.deadline = now + rtt.wait_for_try(m.tries)

    def start_sending(now):
        nonlocal started_sending
        started_sending = True
        for m in outgoing[:args.move_after]:
            send_copy(m, now)

    def settled():
        return all(m.status is not None for m in outgoing)

    def secure_progress(now):
        """Sends what waited for the session once it may (10.6): an
        initiator with nothing to say sends a keepalive."""
        nonlocal dest
        if secure is None or started_sending or not secure.ready_to_send():
            return
        if dest is None:
            dest = secure.peer_addr
        start_sending(now)
        if not outgoing and secure.role == "initiator":
            secure.send_envelope(b"", dest, now)

    def fail_all(now):
        for m in outgoing:
            if m.status is None:
                m.status = "failed"
                m.deadline = None
                emit(event="receipt", seq=m.seq, status="failed",
                     tries=m.tries, rtt_ms=None)

    if dest is not None:
        if secure is None:
            start_sending(time.monotonic())
        else:
            for m in outgoing:
                emit(event="waiting_for_session", seq=m.seq)
            secure.begin(dest, time.monotonic())

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
            send_envelope(encode_receipt(session, env["seq"], env["try"]), addr)
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

    moved = args.move_after is None

    while True:
        now = time.monotonic()
        if (not moved and started_sending and all(
                m.status == "delivered" for m in outgoing[:args.move_after])):
            # The new mapping: a new socket, the old one closed, the rest
            # of the messages from there.
            moved = True
            old = fmt_addr(sock.getsockname())
            fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            fresh.bind((args.bind[0], 0))
            fresh.setblocking(False)
            sock.close()
            sock = fresh
            emit(event="moved", **{"from": old, "to": fmt_addr(sock.getsockname())})
            for m in outgoing[args.move_after:]:
                send_copy(m, now)
        if secure is not None:
            secure.tick(now)
            if secure.failed is not None:
                fail_all(now)
                return 1
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
        if (linger_until is None and settled() and received_new >= args.expect
                and (secure is None or started_sending)):
            linger_until = now + LINGER
        if linger_until is not None and now >= linger_until:
            return 0
        if linger_until is None and now >= hard_deadline:
            emit(event="timeout")
            return 1

        wake = [hard_deadline if linger_until is None else linger_until]
        wake += [m.deadline for m in outgoing
                 if m.status is None and m.deadline is not None]
        if secure is not None and secure.deadline is not None:
            wake.append(secure.deadline)
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
            now = time.monotonic()
            truncated = bool(flags & socket.MSG_TRUNC)
            if secure is None:
                handle(data, addr[:2], truncated, now)
                continue
            if truncated:
                emit(event="rejected", reason="malformed",
                     **{"from": fmt_addr(addr[:2])})
                continue
            for inner, at in secure.receive(data, addr[:2], now):
                handle(inner, at, False, now)
            secure_progress(now)


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

    differences = secure_self_test()
    if differences:
        emit(event="self-test", status="failed", differences=differences)
        return 1
    emit(event="self-test", status="ok")
    return 0


def secure_self_test():
    """Section 10: every worked example of 10.9 recomputed from its inputs
    (the ephemeral private keys and SPAKE2's key given), compared byte for
    byte; then the receive rules of 10.6 on datagrams made here. Returns
    what differs, as readable lines (empty: all agree)."""
    import dgram_secure as sec
    out = []
    got, given = sec.worked_examples()
    for name in given:
        if got[name] != given[name]:
            show = (lambda b: b if isinstance(b, str) else b.hex(" "))
            out.append("%s: computed %s, the document says %s"
                       % (name, show(got[name]), show(given[name])))

    def expect(what, wanted, thunk):
        try:
            result = thunk()
        except sec.Refused as e:
            result = "refused %s" % e
        if result != wanted:
            out.append("%s: got %r, wanted %r" % (what, result, wanted))

    # A pair of sessions from a fresh key-file handshake.
    psk = bytes(range(32))
    a = sec.HandshakeState(True, sec.PROLOGUE_KEY_FILE, psk)
    b = sec.HandshakeState(False, sec.PROLOGUE_KEY_FILE, psk)
    b.read_message(a.write_message(sec.ALICE))
    a.read_message(b.write_message(sec.BOB))
    sa = sec.Session(a, True, sec.BOB, 0.0)
    sb = sec.Session(b, False, sec.ALICE, 0.0)
    first = sa.seal(b"one", 0.0)
    second = sa.seal(b"two", 0.0)
    expect("in order", (b"one", True), lambda: sb.open(first))
    expect("a replay", "refused replay", lambda: sb.open(first))
    expect("the next", (b"two", True), lambda: sb.open(second))
    expect("own datagram", "refused reflected", lambda: sa.open(first))
    third = sa.seal(b"three", 0.0)
    altered = third[:-1] + bytes([third[-1] ^ 1])
    expect("altered", "refused bad_tag", lambda: sb.open(altered))
    expect("another session", "refused unknown_session",
           lambda: sb.open(third[:3] + bytes(8) + third[11:]))
    expect("the altered one's original", (b"three", True), lambda: sb.open(third))
    # Rekeying: 2 minutes later the sender is in epoch 1; a datagram of
    # epoch 0 reordered across the rekey still opens, once.
    late = sa.seal(b"late", 1.0)
    rekeyed = sa.seal(b"after", 200.0)
    expect("epoch byte", 1, lambda: rekeyed[11])
    expect("rekeyed counter", 1, lambda: int.from_bytes(rekeyed[12:20], "big"))
    expect("rekeyed", (b"after", True), lambda: sb.open(rekeyed))
    expect("reordered across a rekey", (b"late", False), lambda: sb.open(late))
    expect("that again", "refused replay", lambda: sb.open(late))
    # REKEY is Noise's: the first 32 bytes of ENCRYPT(k, 2^64 − 1, "", 0^32).
    expect("rekey", sec.rekey(sb.receive.previous[0]), lambda: sb.receive.key)
    # Epochs skipped: a datagram three epochs ahead is followed.
    for t in (400.0, 600.0, 800.0):
        skipped = sa.seal(b"x", t)
    expect("three epochs ahead", (b"x", True), lambda: sb.open(skipped))
    expect("epoch now", 4, lambda: sb.receive.epoch)
    expect("too old", "refused too_old", lambda: sb.open(late))
    # The replay window: 4096 below the highest is too old.
    w = sec.ReplayWindow()
    w.take(5000)
    expect("window edge", None, lambda: w.check(905))
    expect("window too old", "refused too_old", lambda: w.check(904))
    w.take(905)
    expect("window replay", "refused replay", lambda: w.check(905))
    # Codes: canonical form (10.1).
    expect("canonical code", b"7-clockwork-crossover-ragtime",
           lambda: sec.canonical_code("007 Clockwork  crossover-RAGTIME"))
    # Path checks (10.8).
    expect("path challenge", ("challenge", bytes(range(8)), ("127.0.0.1", 9000)),
           lambda: sec.decode_path_check(
               sec.encode_path_challenge(bytes(range(8)), ("127.0.0.1", 9000))))
    expect("path challenge length", 3 + 8 + 1 + 4 + 2,
           lambda: len(sec.encode_path_challenge(bytes(8), ("127.0.0.1", 1))))
    # Handshake lengths (10.2): a byte more or less is malformed.
    init = bytes.fromhex("".join(sec.VECTORS["key file init"].split()))
    expect("init decodes", sec.ALICE, lambda: sec.decode_handshake(init)["sender"])
    expect("init + 1", "refused malformed", lambda: sec.decode_handshake(init + b"\0"))
    expect("init - 1", "refused malformed", lambda: sec.decode_handshake(init[:-1]))
    handshakes_self_test(sec, expect)
    return out


def handshakes_self_test(sec, expect):
    """Two SecurePeers in this process, their datagrams carried by a list:
    each method opens one session with the same ids and words on both
    sides; a key-file responder waits for the keepalive; a wrong code is
    reported by both; a responder without tokens asks for a cookie and
    gets it back; two code initiators at once end in one session."""
    A, B = ("127.0.0.1", 1001), ("127.0.0.1", 1002)

    def run_pair(kw_a, kw_b, begin):
        wire = []
        events = {A: [], B: []}
        peers = {}
        for me, kw in ((A, kw_a), (B, kw_b)):
            peers[me] = sec.SecurePeer(
                os.urandom(8), (lambda me: lambda d, to: wire.append((d, me, to)))(me),
                (lambda me: lambda **f: events[me].append(f["event"]))(me),
                lambda k: 1.0, MAX_TRIES, **kw)
        for me in begin:
            peers[me].begin(B if me == A else A, 0.0)
        for _ in range(50):
            if not wire:
                break
            data, frm, to = wire.pop(0)
            peers[to].receive(data, frm, 0.0)
        return peers[A], peers[B], events

    psk = os.urandom(32)
    a, b, ev = run_pair({"key": psk}, {"key": psk}, [A])
    expect("key file: same session", True,
           lambda: a.session is not None and b.session is not None
           and a.session.session_id == b.session.session_id
           and a.session.verify == b.session.verify)
    expect("key file: responder waits", (True, False),
           lambda: (a.ready_to_send(), b.ready_to_send()))
    a.send_envelope(b"", B, 0.0)
    b.receive(b"", A, 0.0)     # a plain datagram changes nothing
    expect("key file: responder still waits", False, lambda: b.ready_to_send())
    b_keepalive = a.session.seal(b"", 0.0)
    expect("key file: keepalive", [], lambda: b.receive(b_keepalive, A, 0.0))
    expect("key file: responder may speak", True, lambda: b.ready_to_send())
    a, b, ev = run_pair({"key": psk}, {"key": os.urandom(32)}, [A])
    expect("another key: nothing opens", (None, None), lambda: (a.session, b.session))
    expect("another key: refused", ["rejected"], lambda: ev[B])

    code = sec.canonical_code("5-clockwork-crossover")
    a, b, ev = run_pair({"password": code}, {"password": code}, [A])
    expect("code: same session", True,
           lambda: a.session is not None and b.session is not None
           and a.session.session_id == b.session.session_id)
    expect("code: both may speak", (True, True),
           lambda: (a.ready_to_send(), b.ready_to_send()))
    other = sec.canonical_code("5-clockwork-adroitness")
    a, b, ev = run_pair({"password": code}, {"password": other}, [A])
    expect("wrong code: both say so", ("wrong_code", "wrong_code"),
           lambda: (a.failed, b.failed))

    for kw in ({"key": psk}, {"password": code}):
        a, b, ev = run_pair(dict(kw), dict(kw, inits_per_second=0), [A])
        expect("cookie asked", True, lambda: "cookie_sent" in ev[B])
        expect("cookie brought back", True,
               lambda: a.session is not None and b.session is not None
               and a.session.session_id == b.session.session_id)
    a, b, ev = run_pair({"password": code}, {"password": code}, [A, B])
    expect("both began: one session", True,
           lambda: a.session is not None and b.session is not None
           and a.session.session_id == b.session.session_id)


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
    p.add_argument("--move-after", type=int, default=None)
    p.add_argument("--inits-per-second", type=float, default=20.0,
                   help="inits answered without a cookie (10.5); 0: every "
                        "init must bring one")
    p.add_argument("--self-test", action="store_true")
    keyed = p.add_mutually_exclusive_group()
    keyed.add_argument("--key-file", help="a key file: 64 hex digits")
    keyed.add_argument("--code", help="a short code such as 7-clockwork-crossover-ragtime")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.send and args.peer is None and not args.reply:
        p.error("--send needs --peer or --reply")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
