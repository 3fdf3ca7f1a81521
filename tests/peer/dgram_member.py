#!/usr/bin/env python3
"""Independent group member for the dgram chat protocol, version 1.

Written from docs/PROTOCOL.md alone (sections 3, 5, 6 and 9; Python 3
standard library only), on top of the encoding in dgram_peer.py.

It joins an IPv4 multicast group, says hello (tokens as section 9 asks),
challenges newcomers and answers their challenges, keeps a table of the
members that proved their address, acknowledges every message, sends its
own messages to the group once enough members joined (retrying by unicast
to each member whose receipt has not come), and says bye when it leaves.

Usage:
  python3 dgram_member.py --group IP:PORT --iface IP [--name NAME]
                          [--hello SECONDS] [--await-members N]
                          [--send TEXT]... [--expect N] [--until-alone]
                          [--linger SECONDS] [--timeout SECONDS]
  python3 dgram_member.py --self-test

Every event is one JSON line on stdout, flushed at once. It exits 0 once
its messages are settled and it has received --expect new messages (after
--linger more seconds of acknowledging; with --until-alone, once every
member has left too), 1 at --timeout, saying bye either
way (and on SIGTERM).
"""

import argparse
import hashlib
import hmac
import os
import random
import select
import signal
import socket
import sys
import time

from dgram_peer import (KIND_BYE, KIND_HELLO, KIND_MESSAGE, KIND_RECEIPT,
                        MAX_NAME, MAX_TRIES, NO_TOKEN, RECV_BUF, Malformed,
                        RttEstimator, SessionTrack, decode_envelope, emit,
                        encode_hello, encode_message, encode_receipt,
                        fmt_addr, is_envelope, parse_addr)

SILENCE_HELLOS = 3.5       # a member not heard for this many hellos left


class Stop(Exception):
    """SIGTERM: leave (with a bye)."""


def token(secret, addr, session):
    """The challenge for a sender at `addr` with `session`: recomputed when
    the answer comes, so nothing is kept per stranger. Never zeros (zeros
    mean no token)."""
    ip, port = addr
    data = (b"dgram hello token" + socket.inet_aton(ip)
            + port.to_bytes(2, "big") + session)
    t = hmac.new(secret, data, hashlib.sha256).digest()[:8]
    return t if t != NO_TOKEN else bytes(7) + b"\x01"


def answer_hello(session, name_b, challenge, answer, limit):
    """Our answer to a hello of `limit` bytes: never larger (section 9),
    our name left out when it would not fit; None when even that does not
    fit."""
    out = encode_hello(session, name_b, challenge, answer)
    if len(out) > limit:
        out = encode_hello(session, b"", challenge, answer)
    return out if len(out) <= limit else None


class Member:
    def __init__(self, session, name, now):
        self.session = session
        self.name = name
        self.heard = now


class Copy:
    """One member's share of a group message: its tries and timer."""

    def __init__(self, name):
        self.name = name
        self.tries = 0
        self.sent_at = {}
        self.deadline = None
        self.status = None        # None, "delivered", "missing"


class GroupMessage:
    def __init__(self, seq, payload):
        self.seq = seq
        self.payload = payload
        self.copies = {}          # member address -> Copy
        self.settled = False


def run(args):
    name_b = args.name.encode("utf-8")
    if len(name_b) > MAX_NAME:
        sys.stderr.write("name longer than 64 bytes\n")
        return 2
    group_ip, group_port = args.group
    iface = socket.inet_aton(args.iface)

    session = os.urandom(8)
    secret = os.urandom(32)
    # Two sockets (section 9): the group's port, shared, for what is sent
    # to the group; our own port for everything we send and for what is
    # sent to us (receipts, challenges, retransmissions).
    gsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    gsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Bound to the group's address: only the group's datagrams, not every
    # datagram to the port.
    gsock.bind((group_ip, group_port))
    gsock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(group_ip) + iface)
    gsock.setblocking(False)
    osock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    osock.bind((args.iface, 0))
    osock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
    osock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    osock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    osock.setblocking(False)
    me = osock.getsockname()[:2]
    emit(event="bound", group=fmt_addr(args.group), member=fmt_addr(me),
         session=session.hex())

    def on_term(_sig, _frame):
        raise Stop()
    signal.signal(signal.SIGTERM, on_term)

    members = {}                 # address -> Member
    tracks = {}                  # sender session -> SessionTrack
    rtt = {}                     # member address -> RttEstimator
    outgoing = []
    next_seq = 1                 # our counter for the group's address
    to_send = list(args.send)
    received_new = 0
    start = time.monotonic()
    hard_deadline = start + args.timeout
    linger_until = None
    silence = SILENCE_HELLOS * args.hello

    def send(data, dest, what, **fields):
        try:
            osock.sendto(data, dest)
        except OSError as e:
            emit(event="send_error", to=fmt_addr(dest), error=str(e))
            return
        emit(event="sent", kind=what, to=fmt_addr(dest), len=len(data),
             **fields)

    def hello_wait():
        return args.hello * random.uniform(0.75, 1.25)

    def settle(m):
        if m.settled or any(c.status is None for c in m.copies.values()):
            return
        m.settled = True
        listed = sorted(m.copies.items(), key=lambda kv: kv[1].name)
        emit(event="group_receipt", seq=m.seq,
             text=m.payload.decode("utf-8", "replace"),
             delivered=[{"member": fmt_addr(a), "name": c.name}
                        for a, c in listed if c.status == "delivered"],
             missing=[{"member": fmt_addr(a), "name": c.name}
                      for a, c in listed if c.status == "missing"])

    def fail_member(addr):
        """What `addr` had not acknowledged fails (it left)."""
        for m in outgoing:
            c = m.copies.get(addr)
            if c is not None and c.status is None:
                c.status = "missing"
                c.deadline = None
                settle(m)

    def member_change(addr, change, name, **extra):
        emit(event="member", member=fmt_addr(addr), name=name, change=change,
             members=len(members), **extra)

    def send_group_message(text, now):
        nonlocal next_seq
        m = GroupMessage(next_seq, text.encode("utf-8"))
        next_seq += 1
        outgoing.append(m)
        # The members present now are the ones expected to acknowledge.
        for addr, mem in members.items():
            c = m.copies[addr] = Copy(mem.name)
            c.tries = 1
            c.sent_at[1] = now
            c.deadline = now + rtt.setdefault(
                addr, RttEstimator()).wait_for_try(1)
        send(encode_message(session, m.seq, 1, name_b, m.payload),
             args.group, "message", seq=m.seq, **{"try": 1})
        settle(m)             # an empty room: settled at once, nobody got it

    def on_hello(env, addr, size, now):
        if env["kind"] == KIND_BYE:
            mem = members.get(addr)
            emit(event="presence", kind="bye", **{"from": fmt_addr(addr)},
                 name=env["name"])
            if mem is not None and mem.session == env["session"]:
                del members[addr]
                member_change(addr, "left", mem.name)
                fail_member(addr)
            return
        emit(event="presence", kind="hello", **{"from": fmt_addr(addr)},
             name=env["name"], len=size, tokens=env["tokens"],
             challenge=env["challenge"] != NO_TOKEN,
             answer=env["answer"] != NO_TOKEN)
        mem = members.get(addr)
        if env["answer"] != NO_TOKEN:
            if env["answer"] == token(secret, addr, env["session"]):
                if mem is None or mem.session != env["session"]:
                    change = "joined" if mem is None else "restarted"
                    if mem is not None:
                        fail_member(addr)
                    mem = members[addr] = Member(env["session"],
                                                 env["name"], now)
                    member_change(addr, change, env["name"])
            else:
                emit(event="bad_answer", **{"from": fmt_addr(addr)})
        is_member = mem is not None and mem.session == env["session"]
        if is_member:
            mem.heard = now
            mem.name = env["name"]
        if not env["tokens"]:
            return            # nothing to send back that would fit
        challenge = NO_TOKEN if is_member else token(secret, addr,
                                                     env["session"])
        if challenge == NO_TOKEN and env["challenge"] == NO_TOKEN:
            return            # a member asking nothing: the exchange ends
        reply = answer_hello(session, name_b, challenge, env["challenge"],
                             size)
        if reply is None:
            emit(event="not_answered", to=fmt_addr(addr), len=size)
            return
        send(reply, addr, "hello", challenge=challenge != NO_TOKEN,
             answer=env["challenge"] != NO_TOKEN)

    def on_message(env, addr, via):
        nonlocal received_new, linger_until
        # Acknowledge every copy, from our own address (section 9).
        send(encode_receipt(session, env["seq"], env["try"]), addr,
             "receipt", seq=env["seq"], **{"try": env["try"]})
        track = tracks.setdefault(env["session"], SessionTrack())
        verdict, gap = track.classify(env["seq"])
        if verdict == "duplicate":
            emit(event="duplicate", **{"from": fmt_addr(addr)},
                 seq=env["seq"], **{"try": env["try"]}, via=via)
            return
        if gap is not None:
            emit(event="gap", first=gap[0], last=gap[1])
        received_new += 1
        mem = members.get(addr)
        emit(event="message", **{"from": fmt_addr(addr)}, name=env["name"],
             seq=env["seq"], **{"try": env["try"]}, via=via,
             member=mem is not None and mem.session == env["session"],
             text=env["payload"].decode("utf-8", errors="replace"))

    def on_receipt(env, addr, now):
        for m in outgoing:
            if m.seq != env["seq"]:
                continue
            c = m.copies.get(addr)
            if c is None or env["try"] not in c.sent_at:
                break
            if c.status is None:
                sample = now - c.sent_at[env["try"]]
                rtt.setdefault(addr, RttEstimator()).sample(sample)
                c.status = "delivered"
                c.deadline = None
                emit(event="receipt", **{"from": fmt_addr(addr)},
                     seq=m.seq, name=c.name, tries=c.tries,
                     rtt_ms=round(sample * 1000.0, 3))
                settle(m)
            return
        emit(event="receipt_unmatched", **{"from": fmt_addr(addr)},
             seq=env["seq"], **{"try": env["try"]})

    def handle(data, addr, truncated, via, now):
        if not is_envelope(data):
            emit(event="plain", **{"from": fmt_addr(addr)}, len=len(data),
                 via=via)
            return
        if truncated:
            emit(event="malformed", reason="truncated by the receive buffer")
            return
        try:
            env = decode_envelope(data)
        except Malformed as e:
            emit(event="malformed", **{"from": fmt_addr(addr)},
                 reason=str(e), via=via)
            return
        if env["session"] == session:
            return            # our own, looped back
        mem = members.get(addr)
        if mem is not None and mem.session == env["session"]:
            mem.heard = now   # any envelope from a member keeps it alive
        if env["kind"] in (KIND_HELLO, KIND_BYE):
            on_hello(env, addr, len(data), now)
        elif env["kind"] == KIND_MESSAGE:
            on_message(env, addr, via)
        elif env["kind"] == KIND_RECEIPT:
            on_receipt(env, addr, now)

    def leave(status):
        send(encode_hello(session, name_b, kind=KIND_BYE), args.group, "bye")
        return status

    send(encode_hello(session, name_b), args.group, "hello")
    next_hello = time.monotonic() + hello_wait()
    try:
        while True:
            now = time.monotonic()
            if now >= next_hello:
                send(encode_hello(session, name_b), args.group, "hello")
                next_hello = now + hello_wait()
            for addr in [a for a, mem in members.items()
                         if now - mem.heard >= silence]:
                mem = members.pop(addr)
                member_change(addr, "silent", mem.name,
                              silent_ms=round((now - mem.heard) * 1000.0, 1))
                fail_member(addr)
            for m in outgoing:
                for addr, c in m.copies.items():
                    if c.status is not None or now < c.deadline:
                        continue
                    if c.tries >= MAX_TRIES:
                        c.status = "missing"
                        c.deadline = None
                        settle(m)
                        continue
                    # The next try by unicast, to this member alone.
                    c.tries += 1
                    c.sent_at[c.tries] = now
                    c.deadline = now + rtt.setdefault(
                        addr, RttEstimator()).wait_for_try(c.tries)
                    send(encode_message(session, m.seq, c.tries, name_b,
                                        m.payload),
                         addr, "message", seq=m.seq, **{"try": c.tries})
            if to_send and len(members) >= args.await_members:
                for text in to_send:
                    send_group_message(text, now)
                to_send = []
            done = (not to_send and all(m.settled for m in outgoing)
                    and received_new >= args.expect
                    and not (args.until_alone and members))
            if linger_until is None and done:
                linger_until = now + args.linger
            if linger_until is not None and now >= linger_until:
                return leave(0)
            if now >= hard_deadline:
                emit(event="timeout", members=len(members))
                return leave(1)

            wake = [hard_deadline, next_hello]
            if linger_until is not None:
                wake.append(linger_until)
            wake += [mem.heard + silence for mem in members.values()]
            wake += [c.deadline for m in outgoing for c in m.copies.values()
                     if c.status is None]
            wait = max(0.0, min(wake) - now)
            ready, _, _ = select.select([gsock, osock], [], [], wait)
            for sock in ready:
                via = "group" if sock is gsock else "direct"
                for _ in range(64):       # bounded drain, then timers
                    try:
                        data, _anc, flags, addr = sock.recvmsg(RECV_BUF)
                    except (BlockingIOError, InterruptedError):
                        break
                    except ConnectionRefusedError:
                        continue          # ICMP error from an earlier send
                    except OSError:
                        break
                    handle(data, addr[:2], bool(flags & socket.MSG_TRUNC),
                           via, time.monotonic())
    except (Stop, KeyboardInterrupt):
        return leave(0)


# ---------------------------------------------------------------- self-test

def self_test():
    secret = bytes(range(32))
    sess = bytes.fromhex("0102030405060708")
    addr = ("10.77.0.1", 40000)
    t = token(secret, addr, sess)
    assert len(t) == 8 and t != NO_TOKEN
    assert t == token(secret, addr, sess)            # recomputable
    assert t != token(secret, ("10.77.0.1", 40001), sess)
    assert t != token(secret, ("10.77.0.2", 40000), sess)
    assert t != token(secret, addr, bytes(8))
    # An answer is never larger than the hello it answers.
    short = encode_hello(sess, b"b")
    long_name = b"a-member-with-a-rather-long-name-indeed"
    reply = answer_hello(sess, long_name, t, NO_TOKEN, len(short))
    assert reply is not None and len(reply) <= len(short)
    assert decode_envelope(reply)["name"] == ""       # name left out
    assert decode_envelope(reply)["challenge"] == t
    reply = answer_hello(sess, b"b", t, NO_TOKEN, len(short))
    assert decode_envelope(reply)["name"] == "b"      # it fits: kept
    assert answer_hello(sess, b"b", t, NO_TOKEN, len(short) - 2) is None
    emit(event="self-test", status="ok")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="dgram protocol v1 group member")
    p.add_argument("--group", type=parse_addr)
    p.add_argument("--iface", help="this host's IPv4 address on the LAN")
    p.add_argument("--name", default="")
    p.add_argument("--hello", type=float, default=5.0,
                   help="seconds between hellos")
    p.add_argument("--await-members", type=int, default=1,
                   help="send --send messages once this many members joined")
    p.add_argument("--send", action="append", default=[])
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--until-alone", action="store_true",
                   help="stay until every member has left")
    p.add_argument("--linger", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    if args.group is None or args.iface is None:
        p.error("--group and --iface are needed")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
