//! The chat envelope, version 1: its wire layout (serde, encoded with
//! postcard) and the validated [`Envelope`] the rest of dgram sees.
//!
//! The layout is specified in `docs/PROTOCOL.md`; in short:
//!
//! ```text
//! 0xF5  version(1)  kind  body…
//! kind 1, message:  session[8]  seq(varint)  try(u8)  name(varint len + UTF-8)  payload(varint len + bytes)
//! kind 2, receipt:  session[8]  seq(varint)  try(u8)
//! kind 3, hello:    session[8]  name(varint len + UTF-8)  challenge[8]  answer[8]
//! kind 4, bye:      session[8]  name(varint len + UTF-8)  challenge[8]  answer[8]
//! kind 5, sealed:   nonce[24]  ciphertext of a whole envelope above  tag[16]   (see seal)
//! ```
//!
//! The other kinds share the 3-byte header and are read elsewhere: 6
//! handshake, 7 secured, 8 and 9 path checks inside 7 (`proto::secure`);
//! 10 and 11 the rendezvous's (`proto::rendezvous`); 12 and 13 the path
//! search's probes (`proto::traverse`); 14 and 15 MTU probes
//! (`proto::mtu`).
//!
//! The first byte, 0xF5, never begins valid UTF-8, so text from nc, socat
//! or Python is never taken for an envelope. A receipt is the message's
//! header without name and payload: never larger than what it acknowledges.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The first byte of every envelope (it never begins valid UTF-8).
pub const MAGIC: u8 = 0xF5;

/// The version this dgram writes and reads.
pub const VERSION: u8 = 1;

/// The longest name, in bytes of UTF-8.
pub const MAX_NAME: usize = 64;

/// The largest sequence number (2^53 − 1: exact in JSON numbers too).
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Kind byte of a message.
const KIND_MESSAGE: u8 = 1;
/// Kind byte of a receipt.
const KIND_RECEIPT: u8 = 2;
/// Kind byte of a group member's hello.
const KIND_HELLO: u8 = 3;
/// Kind byte of a group member's bye.
const KIND_BYE: u8 = 4;

/// A sender's session: 8 random bytes, new for every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 8]);

impl SessionId {
    /// The session id made of 8 random bytes drawn by the caller (the
    /// protocol draws nothing itself).
    pub fn from_random(bytes: u64) -> SessionId {
        SessionId(bytes.to_be_bytes())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A chat message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender's session.
    pub session: SessionId,
    /// Its number in the sender session's sequence to this destination
    /// (from 1).
    pub seq: u64,
    /// Which try this copy is (1 for the first send).
    pub attempt: u8,
    /// The sender's name (may be empty).
    pub name: String,
    /// The message itself.
    pub payload: Vec<u8>,
}

/// A delivery receipt as it is on the wire, validated (what it settled
/// is [`Settled`](super::report::Settled)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The session of the peer that sends the receipt (the message's
    /// receiver).
    pub session: SessionId,
    /// The sequence number acknowledged.
    pub seq: u64,
    /// The try acknowledged.
    pub attempt: u8,
}

/// A group member's hello (it is here) or bye (it leaves), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The member's session.
    pub session: SessionId,
    /// The member's name (may be empty).
    pub name: String,
    /// A token the receiver is to send back in its answer's `answer`, to
    /// prove that it receives at its address ([`NO_TOKEN`]: nothing asked).
    pub challenge: [u8; 8],
    /// The token of a challenge this member received, sent back
    /// ([`NO_TOKEN`]: none).
    pub answer: [u8; 8],
}

/// No token: the `challenge` or `answer` of a hello that has none (also
/// what a hello without those fields, from an older dgram, decodes to).
pub const NO_TOKEN: [u8; 8] = [0; 8];

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A message.
    Message(Message),
    /// A receipt for a message.
    Receipt(Ack),
    /// A group member is here (on joining, then now and then).
    Hello(Presence),
    /// A group member leaves.
    Bye(Presence),
}

/// Why a datagram that starts with [`MAGIC`] is not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than the three header bytes.
    TooShort,
    /// A version this dgram does not speak.
    UnknownVersion(u8),
    /// A kind this version does not define.
    UnknownKind(u8),
    /// The body does not decode (cut short, a bad varint, a name that is
    /// not UTF-8).
    Undecodable,
    /// A field out of its range.
    BadField(&'static str),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::TooShort => write!(f, "shorter than the 3-byte header"),
            Malformed::UnknownVersion(v) => write!(f, "unknown version {v}"),
            Malformed::UnknownKind(k) => write!(f, "unknown kind {k}"),
            Malformed::Undecodable => write!(f, "body does not decode"),
            Malformed::BadField(why) => write!(f, "{why}"),
        }
    }
}

/// What a datagram turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Not an envelope: plain bytes (nc, socat, Python, `/empty`).
    Plain,
    /// A valid envelope.
    Envelope(Envelope),
    /// Starts like an envelope but is not a valid one.
    Malformed(Malformed),
}

#[derive(Serialize, Deserialize)]
struct WireMessage<'a> {
    session: [u8; 8],
    seq: u64,
    attempt: u8,
    name: &'a str,
    payload: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct WirePresence<'a> {
    session: [u8; 8],
    name: &'a str,
}

#[derive(Serialize, Deserialize)]
struct WireReceipt {
    session: [u8; 8],
    seq: u64,
    attempt: u8,
}

/// Decodes a datagram. Never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Decoded {
    match bytes {
        [] => Decoded::Plain,
        [first, ..] if *first != MAGIC => Decoded::Plain,
        [_] | [_, _] => Decoded::Malformed(Malformed::TooShort),
        [_, version, kind, body @ ..] => match decode_body(*version, *kind, body) {
            Ok(envelope) => Decoded::Envelope(envelope),
            Err(why) => Decoded::Malformed(why),
        },
    }
}

fn decode_body(version: u8, kind: u8, body: &[u8]) -> Result<Envelope, Malformed> {
    if version != VERSION {
        return Err(Malformed::UnknownVersion(version));
    }
    // Bytes after the last field are ignored: later revisions of version
    // 1 may append fields.
    match kind {
        KIND_MESSAGE => {
            let (wire, _rest): (WireMessage<'_>, _) =
                postcard::take_from_bytes(body).map_err(|_| Malformed::Undecodable)?;
            check_seq(wire.seq, wire.attempt)?;
            if wire.name.len() > MAX_NAME {
                return Err(Malformed::BadField("name longer than 64 bytes"));
            }
            Ok(Envelope::Message(Message {
                session: SessionId(wire.session),
                seq: wire.seq,
                attempt: wire.attempt,
                name: wire.name.to_string(),
                payload: wire.payload.to_vec(),
            }))
        }
        KIND_RECEIPT => {
            let (wire, _rest): (WireReceipt, _) =
                postcard::take_from_bytes(body).map_err(|_| Malformed::Undecodable)?;
            check_seq(wire.seq, wire.attempt)?;
            Ok(Envelope::Receipt(Ack {
                session: SessionId(wire.session),
                seq: wire.seq,
                attempt: wire.attempt,
            }))
        }
        KIND_HELLO | KIND_BYE => {
            let (wire, rest): (WirePresence<'_>, _) =
                postcard::take_from_bytes(body).map_err(|_| Malformed::Undecodable)?;
            if wire.name.len() > MAX_NAME {
                return Err(Malformed::BadField("name longer than 64 bytes"));
            }
            // The two tokens follow the name (a revision of version 1:
            // a hello without both, all 16 bytes, has none).
            let token = |at: usize| -> [u8; 8] {
                match rest.len() >= 16 {
                    true => rest[at..at + 8].try_into().expect("8 bytes"),
                    false => NO_TOKEN,
                }
            };
            let presence = Presence {
                session: SessionId(wire.session),
                name: wire.name.to_string(),
                challenge: token(0),
                answer: token(8),
            };
            Ok(if kind == KIND_HELLO {
                Envelope::Hello(presence)
            } else {
                Envelope::Bye(presence)
            })
        }
        // A sealed envelope (`--key-file`) opens only with the key.
        super::seal::KIND_SEALED => Err(Malformed::BadField("sealed: needs --key-file")),
        // A secure session's datagrams, at a side without keys.
        super::secure::wire::KIND_HANDSHAKE => Err(Malformed::BadField(
            "a secure-session handshake: needs --key-file or --code",
        )),
        super::secure::wire::KIND_SECURED => Err(Malformed::BadField(
            "secured in a session: needs --key-file or --code",
        )),
        other => Err(Malformed::UnknownKind(other)),
    }
}

fn check_seq(seq: u64, attempt: u8) -> Result<(), Malformed> {
    if seq == 0 || seq > MAX_SEQ {
        return Err(Malformed::BadField("sequence number out of range"));
    }
    if attempt == 0 {
        return Err(Malformed::BadField("try 0"));
    }
    Ok(())
}

/// Encodes a message.
pub fn encode_message(message: &Message) -> Vec<u8> {
    let wire = WireMessage {
        session: message.session.0,
        seq: message.seq,
        attempt: message.attempt,
        name: &message.name,
        payload: &message.payload,
    };
    encode(KIND_MESSAGE, &wire)
}

/// Encodes a receipt.
pub fn encode_receipt(receipt: &Ack) -> Vec<u8> {
    let wire = WireReceipt {
        session: receipt.session.0,
        seq: receipt.seq,
        attempt: receipt.attempt,
    };
    encode(KIND_RECEIPT, &wire)
}

/// Encodes a hello (`bye: false`) or a bye.
pub fn encode_presence(presence: &Presence, bye: bool) -> Vec<u8> {
    let wire = WirePresence {
        session: presence.session.0,
        name: &presence.name,
    };
    let mut bytes = encode(if bye { KIND_BYE } else { KIND_HELLO }, &wire);
    bytes.extend_from_slice(&presence.challenge);
    bytes.extend_from_slice(&presence.answer);
    bytes
}

fn encode(kind: u8, body: &impl Serialize) -> Vec<u8> {
    let header = vec![MAGIC, VERSION, kind];
    // Writing plain structs into a growing Vec cannot fail.
    postcard::to_extend(body, header).expect("an envelope serialises")
}

/// True when `name` may be used as a chat name: at most [`MAX_NAME`]
/// bytes, not empty, no control characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A hello's tokens are the 16 bytes after its name; a hello that
    /// ends after the name, or has fewer than 16 bytes after it, has none.
    #[test]
    fn hello_tokens_are_16_bytes_or_none() {
        let presence = Presence {
            session: SessionId([1; 8]),
            name: "al".into(),
            challenge: [7; 8],
            answer: [9; 8],
        };
        let full = encode_presence(&presence, false);
        assert_eq!(full.len(), 3 + 8 + 1 + 2 + 16);
        assert_eq!(
            decode(&full),
            Decoded::Envelope(Envelope::Hello(presence.clone()))
        );
        for cut in [16, 8, 1] {
            let Decoded::Envelope(Envelope::Hello(short)) = decode(&full[..full.len() - cut])
            else {
                panic!("a hello cut by {cut} is still a hello");
            };
            assert_eq!(
                (short.challenge, short.answer),
                (NO_TOKEN, NO_TOKEN),
                "cut {cut}"
            );
        }
    }

    fn message(seq: u64, attempt: u8, name: &str, payload: &[u8]) -> Message {
        Message {
            session: SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
            seq,
            attempt,
            name: name.to_string(),
            payload: payload.to_vec(),
        }
    }

    /// The bytes of docs/PROTOCOL.md's worked examples, exactly.
    #[test]
    fn layout_matches_the_spec() {
        let bytes = encode_message(&message(300, 1, "al", b"hi"));
        assert_eq!(
            bytes,
            [
                0xF5, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0xAC, 0x02, 1, 2, b'a', b'l', 2, b'h', b'i'
            ]
        );
        let receipt = encode_receipt(&Ack {
            session: SessionId([8, 7, 6, 5, 4, 3, 2, 1]),
            seq: 300,
            attempt: 2,
        });
        assert_eq!(receipt, [0xF5, 1, 2, 8, 7, 6, 5, 4, 3, 2, 1, 0xAC, 0x02, 2]);
    }

    /// Text never decodes as an envelope; a right first byte with a wrong
    /// rest is malformed, with the reason.
    #[test]
    fn plain_and_malformed() {
        assert_eq!(decode(b""), Decoded::Plain);
        assert_eq!(decode("héllo".as_bytes()), Decoded::Plain);
        assert_eq!(decode(&[0xF5]), Decoded::Malformed(Malformed::TooShort));
        assert_eq!(
            decode(&[0xF5, 9, 1]),
            Decoded::Malformed(Malformed::UnknownVersion(9))
        );
        assert_eq!(
            decode(&[0xF5, 1, 10]),
            Decoded::Malformed(Malformed::UnknownKind(10))
        );
        assert_eq!(
            decode(&[0xF5, 1, 8]),
            Decoded::Malformed(Malformed::UnknownKind(8)),
            "a path check outside a secured datagram"
        );
        for kind in [6, 7] {
            assert!(
                matches!(
                    decode(&[0xF5, 1, kind]),
                    Decoded::Malformed(Malformed::BadField(why)) if why.contains("--code")
                ),
                "kind {kind}"
            );
        }
        assert_eq!(
            decode(&[0xF5, 1, 1, 0, 0]),
            Decoded::Malformed(Malformed::Undecodable)
        );
        let mut zero = encode_message(&message(1, 1, "a", b""));
        zero[11] = 0;
        assert!(matches!(
            decode(&zero),
            Decoded::Malformed(Malformed::BadField(_))
        ));
        let long = encode_message(&message(1, 1, &"x".repeat(65), b""));
        assert!(matches!(
            decode(&long),
            Decoded::Malformed(Malformed::BadField(_))
        ));
    }

    /// A receipt is never larger than the message it acknowledges.
    #[test]
    fn receipts_do_not_amplify() {
        for seq in [1, 127, 128, 1 << 20, MAX_SEQ] {
            let message = message(seq, 255, "", b"");
            let receipt = Ack {
                session: SessionId([0; 8]),
                seq,
                attempt: 255,
            };
            assert!(encode_receipt(&receipt).len() <= encode_message(&message).len());
        }
    }

    proptest! {
        /// What is encoded decodes to the same message or receipt.
        #[test]
        fn round_trip(
            seq in 1..=MAX_SEQ,
            attempt in 1u8..,
            name in "[a-zA-Z0-9 é你]{0,16}",
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            session in any::<[u8; 8]>(),
        ) {
            let message = Message { session: SessionId(session), seq, attempt, name, payload };
            prop_assert_eq!(
                decode(&encode_message(&message)),
                Decoded::Envelope(Envelope::Message(message.clone()))
            );
            let receipt = Ack { session: SessionId(session), seq, attempt };
            prop_assert_eq!(
                decode(&encode_receipt(&receipt)),
                Decoded::Envelope(Envelope::Receipt(receipt))
            );
        }

        /// Arbitrary bytes, and arbitrary bytes after a valid header, never
        /// panic the decoder.
        #[test]
        fn any_bytes_decode_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            kind in 0u8..4,
        ) {
            let _ = decode(&bytes);
            let mut framed = vec![MAGIC, VERSION, kind];
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
        }
    }
}
