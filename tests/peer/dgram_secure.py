"""Secure sessions of the dgram protocol (docs/PROTOCOL.md, section 10).

Written from docs/PROTOCOL.md and the Noise specification (revision 34)
alone. The primitives come from the PyPI `cryptography` package (X25519,
ChaCha20-Poly1305, BLAKE2s, HMAC, HKDF-SHA256) and SPAKE2 from the PyPI
`spake2` package; the Noise layer (CipherState, SymmetricState,
HandshakeState for NNpsk0, Split, REKEY) is implemented here, not taken
from a Noise library, so that dgram is checked against the specification
rather than against a shared implementation.
"""

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import pgp_words

MAGIC = 0xF5
VERSION = 1
KIND_HANDSHAKE = 6
KIND_SECURED = 7
KIND_PATH_CHALLENGE = 8
KIND_PATH_RESPONSE = 9

STEP_INIT = 1
STEP_REPLY = 2
STEP_FINISH = 3
STEP_COOKIE = 4
STEP_FAIL = 5
METHOD_KEY_FILE = 1
METHOD_CODE = 2
METHOD_NAMES = {METHOD_KEY_FILE: "key_file", METHOD_CODE: "code"}

# 10.2: each (step, method) has one exact length.
HANDSHAKE_LENGTHS = {
    (STEP_INIT, METHOD_KEY_FILE): 93,
    (STEP_INIT, METHOD_CODE): 110,
    (STEP_REPLY, METHOD_KEY_FILE): 77,
    (STEP_REPLY, METHOD_CODE): 110,
    (STEP_FINISH, METHOD_CODE): 77,
    (STEP_COOKIE, METHOD_KEY_FILE): 37,
    (STEP_COOKIE, METHOD_CODE): 37,
    (STEP_FAIL, METHOD_CODE): 21,
}
HANDSHAKE_HEADER = 21          # header, step, method, sender, receiver
COOKIE_LEN = 16
NOISE_MESSAGE_LEN = 56         # ephemeral key, 8-byte payload, tag
SPAKE2_MESSAGE_LEN = 33
CODE_INIT_PADDING = 40
NO_SESSION = bytes(8)

PROLOGUE_KEY_FILE = b"dgram 1 key file"
PROLOGUE_CODE = b"dgram 1 code"
SPAKE2_IDENTITY = b"dgram chat"

SECURED_HEADER = 20            # header, session id, epoch, counter
TAG_LEN = 16
REKEY_AFTER_SECONDS = 120.0
REKEY_AFTER_DATAGRAMS = 1 << 20
EPOCHS_AHEAD = 16
WINDOW = 4096
HELD_BEFORE_FINISH = 16
INITS_PER_SECOND = 20          # answered without proof of address (10.5)
COOKIE_SECRET_SECONDS = 120.0


class Refused(Exception):
    """A datagram refused; the argument is the reason (10.7's names)."""


# ------------------------------------------------------------ primitives

HASHLEN = 32
DHLEN = 32
MAX_NONCE = (1 << 64) - 1
PROTOCOL_NAME = b"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"


def noise_hash(data):
    h = hashes.Hash(hashes.BLAKE2s(32))
    h.update(data)
    return h.finalize()


def hmac_hash(key, data):
    h = hmac.HMAC(key, hashes.BLAKE2s(32))
    h.update(data)
    return h.finalize()


def noise_hkdf(chaining_key, ikm, outputs):
    """Noise section 4.3: HKDF over HMAC-BLAKE2s, two or three outputs."""
    temp_key = hmac_hash(chaining_key, ikm)
    out1 = hmac_hash(temp_key, b"\x01")
    out2 = hmac_hash(temp_key, out1 + b"\x02")
    if outputs == 2:
        return out1, out2
    out3 = hmac_hash(temp_key, out2 + b"\x03")
    return out1, out2, out3


def chacha_nonce(n):
    # Noise's ChaChaPoly: 32 bits of zeros, then the 64-bit counter
    # little-endian.
    return bytes(4) + n.to_bytes(8, "little")


def encrypt(k, n, ad, plaintext):
    return ChaCha20Poly1305(k).encrypt(chacha_nonce(n), plaintext, ad)


def decrypt(k, n, ad, ciphertext):
    """Raises InvalidTag when the tag does not match."""
    return ChaCha20Poly1305(k).decrypt(chacha_nonce(n), ciphertext, ad)


def rekey(k):
    """Noise section 11.3 (REKEY for ChaChaPoly, section 12.3)."""
    return encrypt(k, MAX_NONCE, b"", bytes(32))[:32]


def hkdf_sha256(ikm, info, length):
    """RFC 5869 with no salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=info).derive(ikm)


def x25519_public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key() \
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519(private, public):
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public))
    except ValueError:
        # An all-zero shared secret (a low-order point): nothing a peer with
        # the key would send; refused like a forgery.
        raise InvalidTag()


# ------------------------------------------------------------ Noise

class CipherState:
    """Noise section 5.1."""

    def __init__(self, k=None):
        self.k = k
        self.n = 0

    def initialize_key(self, k):
        self.k = k
        self.n = 0

    def has_key(self):
        return self.k is not None

    def encrypt_with_ad(self, ad, plaintext):
        if self.k is None:
            return plaintext
        if self.n == MAX_NONCE:
            raise ValueError("nonce exhausted")
        out = encrypt(self.k, self.n, ad, plaintext)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad, ciphertext):
        if self.k is None:
            return ciphertext
        if self.n == MAX_NONCE:
            raise ValueError("nonce exhausted")
        out = decrypt(self.k, self.n, ad, ciphertext)
        self.n += 1
        return out

    def rekey(self):
        self.k = rekey(self.k)


class SymmetricState:
    """Noise section 5.2."""

    def __init__(self, protocol_name):
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name + bytes(HASHLEN - len(protocol_name))
        else:
            self.h = noise_hash(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm):
        self.ck, temp_k = noise_hkdf(self.ck, ikm, 2)
        self.cipher.initialize_key(temp_k)

    def mix_hash(self, data):
        self.h = noise_hash(self.h + data)

    def mix_key_and_hash(self, ikm):
        self.ck, temp_h, temp_k = noise_hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher.initialize_key(temp_k)

    def encrypt_and_hash(self, plaintext):
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext):
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self):
        temp_k1, temp_k2 = noise_hkdf(self.ck, b"", 2)
        return CipherState(temp_k1), CipherState(temp_k2)


# NNpsk0 (Noise section 9.4): no pre-messages; -> psk, e; <- e, ee.
NNPSK0 = [["psk", "e"], ["e", "ee"]]


class HandshakeState:
    """Noise section 5.3 for the one pattern dgram uses, NNpsk0. The
    ephemeral private key may be given (the worked examples of 10.9);
    otherwise it is drawn from the operating system."""

    def __init__(self, initiator, prologue, psk, ephemeral=None):
        assert len(psk) == 32
        self.initiator = initiator
        self.psk = psk
        self.ss = SymmetricState(PROTOCOL_NAME)
        self.ss.mix_hash(prologue)
        self.e = ephemeral
        self.re = None
        self.index = 0

    def _mine(self):
        # Message 1 is the initiator's, message 2 the responder's.
        return (self.index % 2 == 0) == self.initiator

    def write_message(self, payload):
        assert self._mine()
        out = b""
        for token in NNPSK0[self.index]:
            if token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            elif token == "e":
                if self.e is None:
                    self.e = os.urandom(32)
                pub = x25519_public(self.e)
                out += pub
                self.ss.mix_hash(pub)
                self.ss.mix_key(pub)      # a psk handshake (section 9.2)
            elif token == "ee":
                self.ss.mix_key(x25519(self.e, self.re))
        out += self.ss.encrypt_and_hash(payload)
        self.index += 1
        return out

    def read_message(self, message):
        """Returns the payload; raises InvalidTag when it does not
        authenticate (the state is then spent)."""
        assert not self._mine()
        rest = message
        for token in NNPSK0[self.index]:
            if token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            elif token == "e":
                self.re, rest = rest[:DHLEN], rest[DHLEN:]
                self.ss.mix_hash(self.re)
                self.ss.mix_key(self.re)
            elif token == "ee":
                self.ss.mix_key(x25519(self.e, self.re))
        payload = self.ss.decrypt_and_hash(rest)
        self.index += 1
        return payload

    def finished(self):
        return self.index == len(NNPSK0)

    def handshake_hash(self):
        return self.ss.h

    def split(self):
        return self.ss.split()


# ------------------------------------------------------------ codes

def canonical_code(text):
    """10.1: the password of a code is the number without leading zeros and
    the words in lowercase, joined by `-`. Spaces and dashes between the
    parts are accepted as a person types them. Raises ValueError naming
    what is wrong."""
    parts = [p for p in re.split(r"[\s-]+", text.strip()) if p]
    if not parts or not parts[0].isdigit():
        raise ValueError("a code starts with its number")
    number = int(parts[0])
    if not 1 <= number <= 999:
        raise ValueError("the code's number is 1 to 999")
    words = [w.lower() for w in parts[1:]]
    if not 2 <= len(words) <= 8:
        raise ValueError("a code has two to eight words")
    for i, w in enumerate(words):
        wanted = pgp_words.EVEN if i % 2 == 0 else pgp_words.ODD
        if w not in wanted:
            raise ValueError("word %d, %r, is not in its list" % (i + 1, w))
    return "-".join([str(number)] + words).encode("utf-8")


def verification_words(verify):
    """The four words of `verify` (10.6), even/odd alternating."""
    return "-".join((pgp_words.EVEN if i % 2 == 0 else pgp_words.ODD)[b]
                    for i, b in enumerate(verify))


def code_psk(spake2_key):
    """10.4, step 2."""
    return hkdf_sha256(spake2_key, b"dgram 1 code psk", 32)


def spake2_side(password):
    """A SPAKE2 state in symmetric mode with dgram's identity (10.4), and
    its 33-byte message."""
    import spake2
    state = spake2.SPAKE2_Symmetric(password, idSymmetric=SPAKE2_IDENTITY)
    return state, state.start()


def spake2_finish(state, message):
    """The 32-byte key K; raises Refused("malformed") when the peer's message
    is not a SPAKE2 message."""
    import spake2
    try:
        return state.finish(message)
    except (spake2.spake2.SPAKEError, ValueError) as e:
        raise Refused("malformed") from e


# ------------------------------------------------------------ datagrams

def encode_handshake(step, method, sender, receiver, body):
    out = (bytes([MAGIC, VERSION, KIND_HANDSHAKE, step, method]) + sender
           + receiver + body)
    assert len(out) == HANDSHAKE_LENGTHS[(step, method)], (step, method, len(out))
    return out


def decode_handshake(data):
    """A kind 6 datagram as a dict; raises Refused("malformed")."""
    if len(data) < HANDSHAKE_HEADER:
        raise Refused("malformed")
    step, method = data[3], data[4]
    if HANDSHAKE_LENGTHS.get((step, method)) != len(data):
        raise Refused("malformed")
    return {"step": step, "method": method, "sender": bytes(data[5:13]),
            "receiver": bytes(data[13:21]), "body": bytes(data[21:])}


def session_values(handshake_hash):
    """10.6: the secure session id and the verification bytes."""
    return (hkdf_sha256(handshake_hash, b"dgram 1 session id", 8),
            hkdf_sha256(handshake_hash, b"dgram 1 verify", 4))


def seal(session_id, epoch, counter, key, inner):
    """A secured datagram (kind 7)."""
    header = (bytes([MAGIC, VERSION, KIND_SECURED]) + session_id
              + bytes([epoch & 0xFF]) + counter.to_bytes(8, "big"))
    return header + encrypt(key, counter, header, inner)


def encode_path_challenge(token, addr):
    import ipaddress
    ip = ipaddress.ip_address(addr[0])
    family = b"\x04" if ip.version == 4 else b"\x06"
    return (bytes([MAGIC, VERSION, KIND_PATH_CHALLENGE]) + token + family
            + ip.packed + addr[1].to_bytes(2, "big"))


def encode_path_response(token):
    return bytes([MAGIC, VERSION, KIND_PATH_RESPONSE]) + token


def decode_path_check(inner):
    """("challenge", token, (ip, port)) or ("response", token, None), or
    None when the inner envelope is not a path check; raises
    Refused("malformed") for a path check that does not decode."""
    import ipaddress
    if len(inner) < 3 or inner[0] != MAGIC or inner[1] != VERSION:
        return None
    if inner[2] == KIND_PATH_RESPONSE:
        if len(inner) != 11:
            raise Refused("malformed")
        return ("response", bytes(inner[3:11]), None)
    if inner[2] != KIND_PATH_CHALLENGE:
        return None
    if len(inner) < 12:
        raise Refused("malformed")
    family = inner[11]
    size = {4: 4, 6: 16}.get(family)
    if size is None or len(inner) != 12 + size + 2:
        raise Refused("malformed")
    ip = ipaddress.ip_address(bytes(inner[12:12 + size]))
    port = int.from_bytes(inner[12 + size:14 + size], "big")
    return ("challenge", bytes(inner[3:11]), (str(ip), port))


class ReplayWindow:
    """10.6: the highest counter taken and a 4096-bit map below it (after
    RFC 6479); bit i of `bits` is counter highest − i."""

    def __init__(self):
        self.highest = 0
        self.bits = 0

    def check(self, counter):
        if counter > self.highest:
            return
        if self.highest - counter >= WINDOW:
            raise Refused("too_old")
        if (self.bits >> (self.highest - counter)) & 1:
            raise Refused("replay")

    def take(self, counter):
        if counter > self.highest:
            self.bits = ((self.bits << (counter - self.highest)) | 1) & ((1 << WINDOW) - 1)
            self.highest = counter
        else:
            self.bits |= 1 << (self.highest - counter)


class SendKey:
    """One direction's sending key, its epoch and counter; rekeyed after
    2 minutes or 2^20 datagrams (10.6)."""

    def __init__(self, key, now):
        self.key = key
        self.epoch = 0
        self.counter = 0
        self.since = now

    def seal(self, session_id, inner, now):
        if (self.counter >= REKEY_AFTER_DATAGRAMS
                or now - self.since >= REKEY_AFTER_SECONDS):
            self.key = rekey(self.key)
            self.epoch += 1
            self.counter = 0
            self.since = now
        self.counter += 1
        return seal(session_id, self.epoch, self.counter, self.key, inner)


class ReceiveKeys:
    """The receive direction: the newest epoch's key and window, and the one
    just before it for datagrams reordered across a rekey (10.6)."""

    def __init__(self, key):
        self.epoch = 0
        self.key = key
        self.window = ReplayWindow()
        self.previous = None     # (key, window) of epoch − 1

    def open(self, data, reflected_key):
        """The inner envelope and whether it is the newest datagram of the
        session (highest counter of the newest epoch); raises Refused."""
        if len(data) < SECURED_HEADER + TAG_LEN:
            raise Refused("malformed")
        header = bytes(data[:SECURED_HEADER])
        counter = int.from_bytes(header[12:20], "big")
        if counter == 0:
            raise Refused("malformed")
        ahead = (header[11] - self.epoch) & 0xFF
        if ahead == 0:
            key, window = self.key, self.window
        elif ahead <= EPOCHS_AHEAD:
            key, window = self.key, ReplayWindow()
            for _ in range(ahead):
                key = rekey(key)
        elif ahead == 0xFF and self.previous is not None:
            key, window = self.previous
        else:
            raise Refused("too_old")
        window.check(counter)
        try:
            inner = decrypt(key, counter, header, bytes(data[SECURED_HEADER:]))
        except InvalidTag:
            if reflected_key is not None:
                try:
                    decrypt(reflected_key(header[11]), counter, header,
                            bytes(data[SECURED_HEADER:]))
                    raise Refused("reflected")
                except InvalidTag:
                    pass
            raise Refused("bad_tag")
        window.take(counter)
        newest = False
        if ahead == 0:
            newest = counter == window.highest
        elif ahead <= EPOCHS_AHEAD:
            # Keep the epoch just before the new one: the current one's
            # window when one ahead, else a fresh one for a skipped epoch.
            before = self.key
            for _ in range(ahead - 1):
                before = rekey(before)
            self.previous = (before, self.window if ahead == 1 else ReplayWindow())
            self.epoch = (self.epoch + ahead) & 0xFF
            self.key, self.window = key, window
            newest = True
        return inner, newest


class Session:
    """An open secure session: ids, keys, the peer's run session."""

    def __init__(self, handshake, initiator_of_noise, peer_session, now):
        self.session_id, self.verify = session_values(handshake.handshake_hash())
        c1, c2 = handshake.split()
        send, receive = (c1.k, c2.k) if initiator_of_noise else (c2.k, c1.k)
        self.send = SendKey(send, now)
        self.receive = ReceiveKeys(receive)
        self.peer_session = peer_session

    def seal(self, inner, now):
        return self.send.seal(self.session_id, inner, now)

    def _own_key(self, epoch_byte):
        # The send key of that epoch, if it is the current one or near it:
        # enough to tell our own datagrams sent back to us (reflections).
        key = self.send.key
        if epoch_byte == self.send.epoch & 0xFF:
            return key
        return bytes(32)

    def open(self, data):
        if bytes(data[3:11]) != self.session_id:
            raise Refused("unknown_session")
        return self.receive.open(data, self._own_key)


# ------------------------------------------------------------ worked examples

def _hex(text):
    return bytes.fromhex("".join(text.split()))


# PROTOCOL.md 10.9, copied as the document gives them.
VECTORS = {
    "key file psk": "000102030405060708090a0b0c0d0e0f"
                    "101112131415161718191a1b1c1d1e1f",
    "alice ephemeral private key": "31b1d44720a86207d819f3015cb73f12"
                                   "9351e0234326be36405fc14921fd6cf6",
    "bob ephemeral private key": "1a5b975b9687a93710d961e525a5eb07"
                                 "c55c2fcccbb0bcf0b680e6addab823e1",
    "key file init": """
        f5 01 06 01 01 a1 a2 a3 a4 a5 a6 a7 a8 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 4d 6f 45 08 5a 31 24 3b 16 9c 46
        b3 43 2d b8 e5 e8 9d 0d 70 0b 6e 8f 59 ba 15 b6
        3c 0d 94 d2 53 0e a2 a7 cb 85 6e a3 6e 70 61 5a
        41 e7 66 7d 18 b5 15 15 39 76 a8 49 8c""",
    "key file reply": """
        f5 01 06 02 01 b1 b2 b3 b4 b5 b6 b7 b8 a1 a2 a3
        a4 a5 a6 a7 a8 ff 02 ae b6 c6 92 dd 07 36 f4 c2
        81 ca 36 d0 39 03 42 e1 47 b3 db e5 d2 62 19 91
        bd ad ed d1 5f a3 a0 b5 f6 81 d8 5e 92 19 38 5e
        3e 59 f8 fb 9d b2 42 ea 83 60 77 8f 0c""",
    "key file session id": "60 f8 3f c7 64 de 7e 3a",
    "key file verify": "fe 54 52 1f",
    "key file verify words": "woodlark-equation-dupont-businessman",
    "message envelope": """
        f5 01 01 a1 a2 a3 a4 a5 a6 a7 a8 01 01 02 61 6c
        02 68 69""",
    "key file secured message": """
        f5 01 07 60 f8 3f c7 64 de 7e 3a 00 00 00 00 00
        00 00 00 01 b5 d9 04 ec 96 02 24 e6 cb e2 1c 3e
        a4 1f 58 e1 6e 8b db 4e 89 74 7c 16 fb 3e b9 1b
        e0 6d ee 29 da 7b 2d""",
    "spake2 key": "404142434445464748494a4b4c4d4e4f"
                  "505152535455565758595a5b5c5d5e5f",
    "code psk": """
        09 fd 52 a7 1a e9 85 57 53 44 5d d7 6f d0 e1 2b
        ec 4c 71 2a 5e b4 c6 21 93 22 5e e4 9f c6 0f 15""",
    "bob noise ephemeral private key": """
        bb 6a 6b b2 c1 80 ba 29 8d c1 b5 a2 53 87 dd a8
        7c 3e ec 3c 35 6d 46 36 43 88 da 9e b7 e8 3d 00""",
    "alice noise ephemeral private key": """
        b5 3c 47 a8 cd d5 87 fd c7 5b bb 10 81 26 4e 75
        10 72 0f c8 1f 2a 19 e8 e3 ec c9 2e 89 17 c7 a1""",
    "code noise message 1": """
        76 09 4e e6 fc 95 d2 0d bf 43 b8 c4 72 6a bc 80
        44 35 6b be 59 f1 0d b2 f9 f6 8b 70 38 39 e6 6f
        1d 46 83 eb 70 1d d1 b8 14 25 86 6b 87 fc a8 41
        a8 51 1f 9d 22 2a 3f aa""",
    "code finish": """
        f5 01 06 03 02 a1 a2 a3 a4 a5 a6 a7 a8 b1 b2 b3
        b4 b5 b6 b7 b8 81 78 18 bf 4b c9 77 2f d4 27 a2
        7a d7 ca 1c 8f b3 de 78 69 95 d7 ec b4 15 de 22
        8c 4d 33 47 06 66 a5 62 aa 92 80 3d 9b 6f 33 5c
        a2 98 b7 fe a4 95 2e ec e5 14 ca df b9""",
    "code session id": "c0 6d fe d6 33 a8 77 37",
    "code verify": "c2 0c 6e 55",
    "code verify words": "snapshot-article-goldfish-equipment",
}

ALICE = bytes(range(0xA1, 0xA9))
BOB = bytes(range(0xB1, 0xB9))


def worked_examples():
    """Recompute every value of 10.9 from its inputs, both sides of each
    handshake (each reads what the other wrote). Returns (computed, given):
    dicts of name -> bytes (or str for words), over the same names."""
    v = {k: (_hex(t) if "words" not in k else t) for k, t in VECTORS.items()}
    got = {}
    # Key file, alice begins.
    alice = HandshakeState(True, PROLOGUE_KEY_FILE, v["key file psk"],
                           v["alice ephemeral private key"])
    bob = HandshakeState(False, PROLOGUE_KEY_FILE, v["key file psk"],
                         v["bob ephemeral private key"])
    got["key file init"] = encode_handshake(
        STEP_INIT, METHOD_KEY_FILE, ALICE, NO_SESSION,
        bytes(COOKIE_LEN) + alice.write_message(ALICE))
    init = decode_handshake(got["key file init"])
    assert bob.read_message(init["body"][COOKIE_LEN:]) == init["sender"]
    got["key file reply"] = encode_handshake(
        STEP_REPLY, METHOD_KEY_FILE, BOB, ALICE, bob.write_message(BOB))
    reply = decode_handshake(got["key file reply"])
    assert alice.read_message(reply["body"]) == reply["sender"]
    a = Session(alice, True, BOB, 0.0)
    b = Session(bob, False, ALICE, 0.0)
    assert (a.session_id, a.verify) == (b.session_id, b.verify)
    got["key file session id"] = a.session_id
    got["key file verify"] = a.verify
    got["key file verify words"] = verification_words(a.verify)
    from dgram_peer import encode_message
    got["message envelope"] = encode_message(ALICE, 1, 1, b"al", b"hi")
    got["key file secured message"] = a.seal(got["message envelope"], 0.0)
    inner, newest = b.open(got["key file secured message"])
    assert inner == got["message envelope"] and newest

    # Code, alice begins; bob (the responder) is Noise's initiator.
    got["code psk"] = code_psk(v["spake2 key"])
    bob = HandshakeState(True, PROLOGUE_CODE, got["code psk"],
                         v["bob noise ephemeral private key"])
    alice = HandshakeState(False, PROLOGUE_CODE, got["code psk"],
                           v["alice noise ephemeral private key"])
    got["code noise message 1"] = bob.write_message(BOB)
    assert alice.read_message(got["code noise message 1"]) == BOB
    got["code finish"] = encode_handshake(
        STEP_FINISH, METHOD_CODE, ALICE, BOB, alice.write_message(ALICE))
    finish = decode_handshake(got["code finish"])
    assert bob.read_message(finish["body"]) == finish["sender"]
    a = Session(alice, False, BOB, 0.0)
    b = Session(bob, True, ALICE, 0.0)
    assert (a.session_id, a.verify) == (b.session_id, b.verify)
    got["code session id"] = a.session_id
    got["code verify"] = a.verify
    got["code verify words"] = verification_words(a.verify)
    # Each direction's key opens only the other side's datagrams.
    sealed = a.seal(b"", 0.0)
    assert b.open(sealed)[0] == b""
    try:
        a.open(sealed)
        raise AssertionError("a side opened its own datagram")
    except Refused as e:
        assert str(e) == "reflected", e
    given = {k: v[k] for k in got}
    return got, given


# ------------------------------------------------------------ a peer's side

def read_key_file(path):
    """A key file: 64 hex digits (surrounding white space allowed)."""
    with open(path, "rb") as f:
        text = f.read(4097)
    try:
        text = text.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("%s: not 64 hex digits" % path)
    if len(text) != 64 or not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise ValueError("%s: not 64 hex digits" % path)
    return bytes.fromhex(text)


class SecurePeer:
    """One side of secure sessions with one peer at a time (10.2 to 10.8).

    `send_raw(data, addr)` puts a datagram on the wire, `emit(**fields)`
    reports an event, `wait_for_try(k)` is the timer of section 5 for try k
    of the handshake's first datagram. The caller feeds every datagram to
    `receive`, calls `tick` when `deadline` passes, and seals its envelopes
    with `send_envelope` once `ready_to_send()`.
    """

    def __init__(self, run_session, send_raw, emit, wait_for_try, max_tries,
                 key=None, password=None, inits_per_second=INITS_PER_SECOND):
        assert (key is None) != (password is None)
        self.run_session = run_session
        self.method = METHOD_KEY_FILE if key is not None else METHOD_CODE
        self.key = key
        self.password = password
        self.send_raw = send_raw
        self.emit = emit
        self.wait_for_try = wait_for_try
        self.max_tries = max_tries
        self.role = None            # "initiator" or "responder"
        self.peer_addr = None
        self.session = None         # a Session once open
        self.confirmed = False      # the peer showed it holds the keys
        self.failed = None          # why the handshake ended without a session
        self.code_spent = False
        # initiator
        self.hs = None
        self.spake = None
        self.spake_message = None
        self.init = None            # the init datagram sent
        self.tries = 0
        self.deadline = None
        self.reply_taken = None     # the reply datagram that opened it
        self.finish = None          # code: the finish sent
        # responder
        self.answered = {}          # init bytes -> reply bytes
        self.answered_senders = set()
        self.awaiting_finish = None  # code: (addr, sender) after the reply
        self.held = []              # secured datagrams that overtook the finish
        # 10.5: a token bucket for inits without a cookie, and the cookie
        # secrets (the one before is still taken).
        self.rate = inits_per_second
        self.tokens = float(inits_per_second)
        self.tokens_at = None
        self.secret = os.urandom(32)
        self.secret_before = None
        self.secret_at = None

    # -------------------------------------------------------- helpers

    def method_name(self):
        return METHOD_NAMES[self.method]

    def ready_to_send(self):
        """Open, and (10.6, who speaks first) a key-file responder only once
        a datagram of the session came from the initiator."""
        return self.session is not None and self.confirmed

    def send_envelope(self, inner, addr, now):
        self.send_raw(self.session.seal(inner, now), addr)

    def _refuse(self, reason, addr):
        self.emit(event="rejected", reason=reason, **{"from": "%s:%d" % addr})

    def _open(self, hs, initiator_of_noise, peer_session, addr, now, initiator):
        self.session = Session(hs, initiator_of_noise, peer_session, now)
        self.peer_addr = addr
        self.role = "initiator" if initiator else "responder"
        self.deadline = None
        self.emit(event="session_opened", peer="%s:%d" % addr,
                  method=self.method_name(), initiator=initiator,
                  session_id=self.session.session_id.hex(),
                  session=peer_session.hex(),
                  verify=self.session.verify.hex(),
                  verify_words=verification_words(self.session.verify))

    # -------------------------------------------------------- initiator

    def begin(self, addr, now):
        """Start a handshake with addr as its initiator."""
        self.role = "initiator"
        self.peer_addr = addr
        if self.method == METHOD_KEY_FILE:
            self.hs = HandshakeState(True, PROLOGUE_KEY_FILE, self.key)
            self.first_message = self.hs.write_message(self.run_session)
        else:
            self.spake, self.spake_message = spake2_side(self.password)
        self._send_init(bytes(COOKIE_LEN), now)
        self.emit(event="handshake_began", peer="%s:%d" % addr,
                  method=self.method_name())

    def _init_body(self, cookie):
        if self.method == METHOD_KEY_FILE:
            return cookie + self.first_message
        return cookie + self.spake_message + bytes(CODE_INIT_PADDING)

    def _send_init(self, cookie, now):
        self.init = encode_handshake(STEP_INIT, self.method, self.run_session,
                                     NO_SESSION, self._init_body(cookie))
        self.tries += 1
        self.send_raw(self.init, self.peer_addr)
        self.deadline = now + self.wait_for_try(self.tries)

    def tick(self, now):
        """The handshake's timer: the init again, or no answer."""
        if self.deadline is None or now < self.deadline:
            return
        if self.tries >= self.max_tries:
            self.deadline = None
            self.failed = "no_answer"
            self.emit(event="handshake_failed", peer="%s:%d" % self.peer_addr,
                      method=self.method_name(), tries=self.tries)
            return
        self.tries += 1
        self.send_raw(self.init, self.peer_addr)
        self.deadline = now + self.wait_for_try(self.tries)

    def _take_reply(self, d, data, addr, now):
        if self.session is not None or self.failed is not None:
            if data == self.reply_taken and self.finish is not None:
                # Our finish was lost and the initiator's init went again.
                self.send_raw(self.finish, addr)
                return
            if data == self.reply_taken:
                return            # the answer to a copy of our init
            self._refuse("unexpected", addr)
            return
        if (self.role != "initiator" or d["receiver"] != self.run_session
                or addr != self.peer_addr):
            self._refuse("unexpected", addr)
            return
        if self.method == METHOD_KEY_FILE:
            trial = copy_state(self.hs)
            try:
                payload = trial.read_message(d["body"])
            except InvalidTag:
                self._refuse("bad_tag", addr)
                return
            if payload != d["sender"]:
                self._refuse("malformed", addr)
                return
            self.reply_taken = data
            self.confirmed = True
            self._open(trial, True, d["sender"], addr, now, True)
            return
        # Code, 10.4 step 3.
        try:
            k = spake2_finish(self.spake, d["body"][:SPAKE2_MESSAGE_LEN])
        except Refused as e:
            self._refuse(str(e), addr)
            return
        hs = HandshakeState(False, PROLOGUE_CODE, code_psk(k))
        self.code_spent = True
        self.reply_taken = data
        try:
            payload = hs.read_message(d["body"][SPAKE2_MESSAGE_LEN:])
            if payload != d["sender"]:
                raise InvalidTag()
        except InvalidTag:
            self.send_raw(encode_handshake(STEP_FAIL, METHOD_CODE, self.run_session,
                                           d["sender"], b""), addr)
            self.deadline = None
            self.failed = "wrong_code"
            self.emit(event="wrong_code", peer="%s:%d" % addr)
            return
        self.finish = encode_handshake(STEP_FINISH, METHOD_CODE, self.run_session,
                                       d["sender"], hs.write_message(self.run_session))
        self.send_raw(self.finish, addr)
        self.confirmed = True
        self._open(hs, False, d["sender"], addr, now, True)

    def _take_cookie(self, d, addr, now):
        if (self.role != "initiator" or self.session is not None
                or d["receiver"] != self.run_session or addr != self.peer_addr
                or self.failed is not None):
            self._refuse("unexpected", addr)
            return
        self.emit(event="cookie", peer="%s:%d" % addr)
        self._send_init(d["body"], now)

    # -------------------------------------------------------- responder

    def _cookie(self, secret, addr, initiator_session):
        import ipaddress
        h = hmac.HMAC(secret, hashes.SHA256())
        h.update(b"dgram cookie" + ipaddress.ip_address(addr[0]).packed
                 + addr[1].to_bytes(2, "big") + initiator_session)
        return h.finalize()[:COOKIE_LEN]

    def _proof_of_address(self, cookie, addr, initiator_session, now):
        """10.5: True when the init may be answered: it carries a cookie
        of the current or the previous secret, or the bucket has a token.
        """
        if self.secret_at is None:
            self.secret_at = now
        elif now - self.secret_at >= COOKIE_SECRET_SECONDS:
            self.secret_before, self.secret = self.secret, os.urandom(32)
            self.secret_at = now
        if cookie != bytes(COOKIE_LEN):
            for secret in (self.secret, self.secret_before):
                if secret is not None and cookie == self._cookie(
                        secret, addr, initiator_session):
                    return True
        if self.tokens_at is not None:
            self.tokens = min(float(self.rate),
                              self.tokens + (now - self.tokens_at) * self.rate)
        self.tokens_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def _answer_init(self, d, data, addr, now):
        if data in self.answered:
            self.send_raw(self.answered[data], addr)   # the reply was lost
            return
        if not self._proof_of_address(d["body"][:COOKIE_LEN], addr, d["sender"], now):
            # Nothing kept: the cookie is recomputed when the init comes back.
            self.send_raw(encode_handshake(
                STEP_COOKIE, d["method"], self.run_session, d["sender"],
                self._cookie(self.secret, addr, d["sender"])), addr)
            self.emit(event="cookie_sent", peer="%s:%d" % addr)
            return
        if self.role == "initiator" and self.session is None:
            if addr != self.peer_addr:
                self._refuse("unexpected", addr)
                return
            # Both began at once (10.4): the lower session id answers.
            if not self.run_session < d["sender"]:
                self.emit(event="simultaneous_init", peer="%s:%d" % addr,
                          answered=False)
                return
            self.emit(event="simultaneous_init", peer="%s:%d" % addr,
                      answered=True)
            self.deadline = None
        if d["sender"] in self.answered_senders:
            self._refuse("replay", addr)
            return
        if self.method == METHOD_KEY_FILE:
            hs = HandshakeState(False, PROLOGUE_KEY_FILE, self.key)
            try:
                payload = hs.read_message(d["body"][COOKIE_LEN:])
            except InvalidTag:
                self._refuse("bad_tag", addr)
                return
            if payload != d["sender"]:
                self._refuse("malformed", addr)
                return
            reply = encode_handshake(STEP_REPLY, METHOD_KEY_FILE, self.run_session,
                                     d["sender"], hs.write_message(self.run_session))
            self.answered[data] = reply
            self.answered_senders.add(d["sender"])
            self.send_raw(reply, addr)
            self.confirmed = False
            self._open(hs, False, d["sender"], addr, now, False)
            return
        # Code, 10.4 step 2.
        if self.code_spent:
            self._refuse("code_spent", addr)
            return
        if d["body"][COOKIE_LEN + SPAKE2_MESSAGE_LEN:] != bytes(CODE_INIT_PADDING):
            self._refuse("malformed", addr)
            return
        spake, message = spake2_side(self.password)
        try:
            k = spake2_finish(spake, d["body"][COOKIE_LEN:COOKIE_LEN + SPAKE2_MESSAGE_LEN])
        except Refused as e:
            self._refuse(str(e), addr)
            return
        self.code_spent = True
        self.hs = HandshakeState(True, PROLOGUE_CODE, code_psk(k))
        reply = encode_handshake(STEP_REPLY, METHOD_CODE, self.run_session, d["sender"],
                                 message + self.hs.write_message(self.run_session))
        self.answered[data] = reply
        self.answered_senders.add(d["sender"])
        self.role = "responder"
        self.peer_addr = addr
        self.awaiting_finish = (addr, d["sender"])
        self.send_raw(reply, addr)

    def _take_finish(self, d, addr, now):
        if (self.awaiting_finish is None or d["receiver"] != self.run_session
                or d["sender"] != self.awaiting_finish[1]):
            self._refuse("unexpected", addr)
            return []
        trial = copy_state(self.hs)
        try:
            payload = trial.read_message(d["body"])
        except InvalidTag:
            self._refuse("bad_tag", addr)
            return []
        if payload != d["sender"]:
            self._refuse("malformed", addr)
            return []
        self.awaiting_finish = None
        self.confirmed = True
        self._open(trial, True, d["sender"], addr, now, False)
        out = []
        held, self.held = self.held, []
        for data, from_addr in held:
            out += self._take_secured(data, from_addr, now)
        return out

    def _take_fail(self, d, addr):
        if (self.awaiting_finish is None or d["receiver"] != self.run_session
                or d["sender"] != self.awaiting_finish[1]):
            self._refuse("unexpected", addr)
            return
        self.awaiting_finish = None
        self.failed = "wrong_code"
        self.emit(event="wrong_code", peer="%s:%d" % addr)

    # -------------------------------------------------------- datagrams

    def receive(self, data, addr, now):
        """Take one datagram; returns the inner envelopes to handle, as
        (bytes, addr) pairs (a keepalive is not one)."""
        if len(data) == 0 or data[0] != MAGIC:
            self._refuse("plain", addr)
            return []
        if len(data) < 3:
            self._refuse("malformed", addr)
            return []
        if data[1] != VERSION:
            self._refuse("unknown_version", addr)
            return []
        if data[2] == KIND_HANDSHAKE:
            try:
                d = decode_handshake(data)
            except Refused as e:
                self._refuse(str(e), addr)
                return []
            if d["method"] != self.method:
                self._refuse("other_method", addr)
                return []
            step = d["step"]
            if step == STEP_INIT:
                self._answer_init(d, bytes(data), addr, now)
            elif step == STEP_REPLY:
                self._take_reply(d, bytes(data), addr, now)
            elif step == STEP_FINISH:
                return self._take_finish(d, addr, now)
            elif step == STEP_COOKIE:
                self._take_cookie(d, addr, now)
            elif step == STEP_FAIL:
                self._take_fail(d, addr)
            return []
        if data[2] == KIND_SECURED:
            if self.session is None and self.awaiting_finish is not None:
                if len(self.held) < HELD_BEFORE_FINISH:
                    self.held.append((bytes(data), addr))
                else:
                    self._refuse("unexpected", addr)
                return []
            return self._take_secured(bytes(data), addr, now)
        self._refuse("unsealed", addr)
        return []

    def _take_secured(self, data, addr, now):
        if self.session is None:
            self._refuse("unknown_session", addr)
            return []
        try:
            inner, newest = self.session.open(data)
        except Refused as e:
            self._refuse(str(e), addr)
            return []
        if not self.confirmed:
            self.confirmed = True
            self.emit(event="session_confirmed", peer="%s:%d" % addr)
        if newest and addr != self.peer_addr:
            self.emit(event="peer_address", peer="%s:%d" % addr)
        if len(inner) == 0:
            self.emit(event="keepalive", **{"from": "%s:%d" % addr})
            return []
        try:
            check = decode_path_check(inner)
        except Refused as e:
            self._refuse(str(e), addr)
            return []
        if check is not None:
            what, token, seen = check
            if what == "challenge":
                # 10.8: answered from where we are, to where it came from.
                self.emit(event="path_challenge", **{"from": "%s:%d" % addr},
                          seen="%s:%d" % seen)
                self.send_envelope(encode_path_response(token), addr, now)
            else:
                # This side challenges nobody: no response is awaited.
                self._refuse("unexpected", addr)
            return []
        if (len(inner) < 11 or inner[0] != MAGIC or inner[1] != VERSION
                or inner[2] not in (1, 2)
                or bytes(inner[3:11]) != self.session.peer_session):
            self._refuse("malformed", addr)
            return []
        return [(inner, addr)]


def copy_state(hs):
    """A copy of a handshake state to try a message on: a message that does
    not authenticate leaves the original as it was."""
    import copy
    return copy.deepcopy(hs)
