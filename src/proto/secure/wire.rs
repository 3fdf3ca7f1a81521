//! The handshake's datagrams (kind 6) and the secured datagrams of a
//! session (kind 7), as bytes: layouts, exact lengths, and decoding into
//! borrowed views. PROTOCOL.md section 10 is the specification.
//!
//! Every handshake datagram has one exact length for its step and method,
//! so a decoder checks the length first and nothing is left to guess; an
//! answer is never longer than what it answers (an init is padded up to
//! the reply it asks for).

use super::super::envelope::{MAGIC, SessionId, VERSION};

/// Kind byte of a handshake datagram.
pub const KIND_HANDSHAKE: u8 = 6;

/// Kind byte of a datagram secured by a session's keys.
pub const KIND_SECURED: u8 = 7;

/// Header, step, method, sender's session, receiver's session.
pub const HEADER_LEN: usize = 3 + 1 + 1 + 8 + 8;

/// A cookie (section 10.5).
pub const COOKIE_LEN: usize = 16;

/// A SPAKE2 message (Ed25519 group): a side byte and a point.
pub const SPAKE_LEN: usize = 33;

/// A Noise NNpsk0 message: an ephemeral key (32), the sender's session
/// as its payload (8), the payload's tag (16).
pub const NOISE_LEN: usize = 32 + 8 + 16;

/// The zero bytes that pad a code init up to the reply it asks for.
pub const CODE_INIT_PAD: usize = NOISE_LEN - COOKIE_LEN;

/// A secured datagram's header: `F5 01 07`, the sender's session, the key
/// epoch, the counter.
pub const SECURED_HEADER_LEN: usize = 3 + 8 + 1 + 8;

/// The tag that ends a secured datagram.
pub const TAG_LEN: usize = 16;

/// Bytes a session adds to an envelope.
pub const SECURED_OVERHEAD: usize = SECURED_HEADER_LEN + TAG_LEN;

/// Which handshake a side runs: the wire says it in every handshake
/// datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// A key file is the pre-shared key of Noise `NNpsk0`.
    KeyFile = 1,
    /// SPAKE2 on a short code gives the pre-shared key of Noise `NNpsk0`.
    Code = 2,
}

impl Method {
    fn from_byte(byte: u8) -> Option<Method> {
        match byte {
            1 => Some(Method::KeyFile),
            2 => Some(Method::Code),
            _ => None,
        }
    }

    /// Its name in reports and `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Method::KeyFile => "key_file",
            Method::Code => "code",
        }
    }
}

/// A handshake datagram, decoded (its byte fields borrowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// The handshake it belongs to.
    pub method: Method,
    /// The sender's session.
    pub sender: SessionId,
    /// The session it answers (zeros in an init).
    pub receiver: SessionId,
    /// What it says.
    pub step: Step<'a>,
}

/// The steps of a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// The initiator's first datagram: a cookie (zeros when it has none),
    /// its SPAKE2 message (codes), its Noise message (key files).
    Init {
        /// The cookie the responder handed out, or zeros.
        cookie: [u8; COOKIE_LEN],
        /// SPAKE2 message (codes only).
        spake: Option<&'a [u8]>,
        /// Noise message 1 (key files only).
        noise: Option<&'a [u8]>,
    },
    /// The responder's answer: its SPAKE2 message (codes) and a Noise
    /// message (message 2 for key files; message 1 for codes, where the
    /// responder begins the Noise handshake).
    Reply {
        /// SPAKE2 message (codes only).
        spake: Option<&'a [u8]>,
        /// The Noise message.
        noise: &'a [u8],
    },
    /// Codes only: the initiator's Noise message 2, confirming the key.
    Finish {
        /// Noise message 2.
        noise: &'a [u8],
    },
    /// The responder is under load: send the init again with this cookie.
    Cookie {
        /// The cookie.
        cookie: [u8; COOKIE_LEN],
    },
    /// Codes only: the initiator could not confirm the key (the codes
    /// differ): the handshake is over on both sides.
    Fail,
}

impl Step<'_> {
    fn byte(&self) -> u8 {
        match self {
            Step::Init { .. } => 1,
            Step::Reply { .. } => 2,
            Step::Finish { .. } => 3,
            Step::Cookie { .. } => 4,
            Step::Fail => 5,
        }
    }
}

/// The exact length of a handshake datagram of `step` (its byte) and
/// `method`, or `None` when there is no such datagram.
pub fn handshake_len(step: u8, method: Method) -> Option<usize> {
    let body = match (step, method) {
        (1, Method::KeyFile) => COOKIE_LEN + NOISE_LEN,
        (1, Method::Code) => COOKIE_LEN + SPAKE_LEN + CODE_INIT_PAD,
        (2, Method::KeyFile) => NOISE_LEN,
        (2, Method::Code) => SPAKE_LEN + NOISE_LEN,
        (3, Method::Code) => NOISE_LEN,
        (4, _) => COOKIE_LEN,
        (5, Method::Code) => 0,
        _ => return None,
    };
    Some(HEADER_LEN + body)
}

/// Why bytes that start like a handshake datagram are not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHandshake {
    /// Not kind 6 of version 1.
    NotHandshake,
    /// An unknown step or method, or no such step for the method.
    Unknown,
    /// Not the exact length of its step and method.
    Length,
    /// A code init's padding is not zeros.
    Padding,
}

impl BadHandshake {
    /// What was wrong, for people.
    pub fn describe(self) -> &'static str {
        match self {
            BadHandshake::NotHandshake => "not a handshake datagram",
            BadHandshake::Unknown => "an unknown handshake step or method",
            BadHandshake::Length => "a handshake datagram of the wrong length",
            BadHandshake::Padding => "a handshake init whose padding is not zeros",
        }
    }
}

fn session_at(bytes: &[u8], at: usize) -> SessionId {
    let mut id = [0; 8];
    id.copy_from_slice(&bytes[at..at + 8]);
    SessionId(id)
}

fn cookie_at(bytes: &[u8], at: usize) -> [u8; COOKIE_LEN] {
    let mut cookie = [0; COOKIE_LEN];
    cookie.copy_from_slice(&bytes[at..at + COOKIE_LEN]);
    cookie
}

/// Decodes a handshake datagram.
pub fn decode(bytes: &[u8]) -> Result<Handshake<'_>, BadHandshake> {
    if bytes.len() < HEADER_LEN || bytes[..3] != [MAGIC, VERSION, KIND_HANDSHAKE] {
        return Err(BadHandshake::NotHandshake);
    }
    let step = bytes[3];
    let method = Method::from_byte(bytes[4]).ok_or(BadHandshake::Unknown)?;
    let len = handshake_len(step, method).ok_or(BadHandshake::Unknown)?;
    if bytes.len() != len {
        return Err(BadHandshake::Length);
    }
    let (sender, receiver) = (session_at(bytes, 5), session_at(bytes, 13));
    let body = &bytes[HEADER_LEN..];
    let step = match (step, method) {
        (1, Method::KeyFile) => Step::Init {
            cookie: cookie_at(body, 0),
            spake: None,
            noise: Some(&body[COOKIE_LEN..]),
        },
        (1, Method::Code) => {
            let pad = &body[COOKIE_LEN + SPAKE_LEN..];
            if pad.iter().any(|&b| b != 0) {
                return Err(BadHandshake::Padding);
            }
            Step::Init {
                cookie: cookie_at(body, 0),
                spake: Some(&body[COOKIE_LEN..COOKIE_LEN + SPAKE_LEN]),
                noise: None,
            }
        }
        (2, Method::KeyFile) => Step::Reply {
            spake: None,
            noise: body,
        },
        (2, Method::Code) => Step::Reply {
            spake: Some(&body[..SPAKE_LEN]),
            noise: &body[SPAKE_LEN..],
        },
        (3, _) => Step::Finish { noise: body },
        (4, _) => Step::Cookie {
            cookie: cookie_at(body, 0),
        },
        _ => Step::Fail,
    };
    Ok(Handshake {
        method,
        sender,
        receiver,
        step,
    })
}

/// Encodes a handshake datagram. The byte fields must have their lengths
/// (the state machines make them so).
pub fn encode(handshake: &Handshake<'_>) -> Vec<u8> {
    let step = handshake.step.byte();
    let len = handshake_len(step, handshake.method).expect("a step of this method");
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[MAGIC, VERSION, KIND_HANDSHAKE, step, handshake.method as u8]);
    out.extend_from_slice(&handshake.sender.0);
    out.extend_from_slice(&handshake.receiver.0);
    match handshake.step {
        Step::Init {
            cookie,
            spake,
            noise,
        } => {
            out.extend_from_slice(&cookie);
            if let Some(spake) = spake {
                out.extend_from_slice(spake);
                out.resize(out.len() + CODE_INIT_PAD, 0);
            }
            if let Some(noise) = noise {
                out.extend_from_slice(noise);
            }
        }
        Step::Reply { spake, noise } => {
            if let Some(spake) = spake {
                out.extend_from_slice(spake);
            }
            out.extend_from_slice(noise);
        }
        Step::Finish { noise } => out.extend_from_slice(noise),
        Step::Cookie { cookie } => out.extend_from_slice(&cookie),
        Step::Fail => {}
    }
    assert_eq!(out.len(), len, "the fields have their lengths");
    out
}

/// Kind byte of a path challenge (only ever inside a secured datagram).
pub const KIND_CHALLENGE: u8 = 8;

/// Kind byte of a path response (only ever inside a secured datagram).
pub const KIND_RESPONSE: u8 = 9;

/// A path check, inside a secured datagram (PROTOCOL.md 10.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathCheck {
    /// "Answer this token from where you are": sent to a peer's new
    /// address, with that address as the challenger sees it.
    Challenge {
        /// The token to send back.
        token: [u8; 8],
        /// Where the challenger saw the peer's datagram come from.
        seen: std::net::SocketAddr,
    },
    /// The token of a challenge, sent back.
    Response {
        /// The token.
        token: [u8; 8],
    },
}

/// Encodes a path check (an inner envelope).
pub fn encode_path(check: &PathCheck) -> Vec<u8> {
    match check {
        PathCheck::Challenge { token, seen } => {
            let mut out = vec![MAGIC, VERSION, KIND_CHALLENGE];
            out.extend_from_slice(token);
            match seen {
                std::net::SocketAddr::V4(v4) => {
                    out.push(4);
                    out.extend_from_slice(&v4.ip().octets());
                }
                std::net::SocketAddr::V6(v6) => {
                    out.push(6);
                    out.extend_from_slice(&v6.ip().octets());
                }
            }
            out.extend_from_slice(&seen.port().to_be_bytes());
            out
        }
        PathCheck::Response { token } => {
            let mut out = vec![MAGIC, VERSION, KIND_RESPONSE];
            out.extend_from_slice(token);
            out
        }
    }
}

/// Decodes a path check; `None` for anything else (or a malformed one).
pub fn decode_path(inner: &[u8]) -> Option<PathCheck> {
    let (head, rest) = inner.split_at_checked(3)?;
    let token: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let rest = &rest[8..];
    match head {
        [MAGIC, VERSION, KIND_RESPONSE] if rest.is_empty() => Some(PathCheck::Response { token }),
        [MAGIC, VERSION, KIND_CHALLENGE] => {
            let ip: std::net::IpAddr = match rest {
                [4, ip @ .., _, _] if ip.len() == 4 => {
                    <[u8; 4]>::try_from(ip).ok().map(std::net::IpAddr::from)?
                }
                [6, ip @ .., _, _] if ip.len() == 16 => {
                    <[u8; 16]>::try_from(ip).ok().map(std::net::IpAddr::from)?
                }
                _ => return None,
            };
            let port = u16::from_be_bytes([rest[rest.len() - 2], rest[rest.len() - 1]]);
            Some(PathCheck::Challenge {
                token,
                seen: std::net::SocketAddr::new(ip, port),
            })
        }
        _ => None,
    }
}

/// A secured datagram's header fields; the rest is ciphertext and tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secured<'a> {
    /// The sender's session: which session's keys open it.
    pub sender: SessionId,
    /// The low 8 bits of the key epoch it was sealed in.
    pub epoch: u8,
    /// Its counter in that epoch (the nonce).
    pub counter: u64,
    /// Header bytes: the associated data.
    pub header: &'a [u8],
    /// Ciphertext and tag.
    pub sealed: &'a [u8],
}

/// Splits a secured datagram into its fields; `None` when it is too short
/// to hold a header and a tag, or not kind 7 of version 1.
pub fn split_secured(bytes: &[u8]) -> Option<Secured<'_>> {
    if bytes.len() < SECURED_OVERHEAD || bytes[..3] != [MAGIC, VERSION, KIND_SECURED] {
        return None;
    }
    let mut counter = [0; 8];
    counter.copy_from_slice(&bytes[12..20]);
    Some(Secured {
        sender: session_at(bytes, 3),
        epoch: bytes[11],
        counter: u64::from_be_bytes(counter),
        header: &bytes[..SECURED_HEADER_LEN],
        sealed: &bytes[SECURED_HEADER_LEN..],
    })
}

/// A secured datagram's header.
pub fn secured_header(sender: SessionId, epoch: u8, counter: u64) -> [u8; SECURED_HEADER_LEN] {
    let mut header = [0; SECURED_HEADER_LEN];
    header[..3].copy_from_slice(&[MAGIC, VERSION, KIND_SECURED]);
    header[3..11].copy_from_slice(&sender.0);
    header[11] = epoch;
    header[12..].copy_from_slice(&counter.to_be_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of both methods decodes to what was encoded, at its
    /// exact length, and an answer is never longer than what it answers.
    #[test]
    fn steps_round_trip_and_answers_are_not_longer() {
        let (a, b) = (SessionId([1; 8]), SessionId([2; 8]));
        let spake = [7u8; SPAKE_LEN];
        let noise = [9u8; NOISE_LEN];
        let cases = [
            (
                Method::KeyFile,
                Step::Init {
                    cookie: [3; 16],
                    spake: None,
                    noise: Some(&noise[..]),
                },
            ),
            (
                Method::Code,
                Step::Init {
                    cookie: [0; 16],
                    spake: Some(&spake[..]),
                    noise: None,
                },
            ),
            (
                Method::KeyFile,
                Step::Reply {
                    spake: None,
                    noise: &noise,
                },
            ),
            (
                Method::Code,
                Step::Reply {
                    spake: Some(&spake[..]),
                    noise: &noise,
                },
            ),
            (Method::Code, Step::Finish { noise: &noise }),
            (Method::KeyFile, Step::Cookie { cookie: [5; 16] }),
            (Method::Code, Step::Fail),
        ];
        for (method, step) in cases {
            let handshake = Handshake {
                method,
                sender: a,
                receiver: b,
                step,
            };
            let bytes = encode(&handshake);
            assert_eq!(decode(&bytes), Ok(handshake), "{bytes:02x?}");
            assert!(decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(BadHandshake::Length));
        }
        for method in [Method::KeyFile, Method::Code] {
            let init = handshake_len(1, method).unwrap();
            assert!(handshake_len(2, method).unwrap() <= init, "{method:?}");
            assert!(handshake_len(4, method).unwrap() <= init, "{method:?}");
        }
        assert!(handshake_len(3, Method::Code).unwrap() <= handshake_len(2, Method::Code).unwrap());
    }

    /// A code init with padding that is not zeros, an unknown method and
    /// a step the method does not have are refused.
    #[test]
    fn odd_handshakes_are_refused() {
        let mut init = encode(&Handshake {
            method: Method::Code,
            sender: SessionId([1; 8]),
            receiver: SessionId([0; 8]),
            step: Step::Init {
                cookie: [0; 16],
                spake: Some(&[1; SPAKE_LEN]),
                noise: None,
            },
        });
        let last = init.len() - 1;
        init[last] = 1;
        assert_eq!(decode(&init), Err(BadHandshake::Padding));
        init[last] = 0;
        init[4] = 9;
        assert_eq!(decode(&init), Err(BadHandshake::Unknown));
        let mut fail = init[..HEADER_LEN].to_vec();
        fail[3] = 5;
        fail[4] = Method::KeyFile as u8;
        assert_eq!(
            decode(&fail),
            Err(BadHandshake::Unknown),
            "no fail step for key files"
        );
    }

    /// Path checks round-trip (both families); other bytes are not one.
    #[test]
    fn path_checks_round_trip() {
        for check in [
            PathCheck::Challenge {
                token: [1; 8],
                seen: "10.0.9.7:4000".parse().unwrap(),
            },
            PathCheck::Challenge {
                token: [2; 8],
                seen: "[2001:db8::1]:4000".parse().unwrap(),
            },
            PathCheck::Response { token: [3; 8] },
        ] {
            let bytes = encode_path(&check);
            assert_eq!(decode_path(&bytes), Some(check));
            assert_eq!(decode_path(&bytes[..bytes.len() - 1]), None);
        }
        assert_eq!(decode_path(&[MAGIC, VERSION, 1, 0, 0]), None);
    }

    /// A secured header splits back into its fields.
    #[test]
    fn secured_header_round_trips() {
        let header = secured_header(SessionId([4; 8]), 3, 0x0102_0304_0506_0708);
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&[0; TAG_LEN]);
        let split = split_secured(&bytes).unwrap();
        assert_eq!(split.sender, SessionId([4; 8]));
        assert_eq!((split.epoch, split.counter), (3, 0x0102_0304_0506_0708));
        assert_eq!(split.header, &header[..]);
        assert!(split_secured(&bytes[..bytes.len() - 1]).is_none());
    }
}
