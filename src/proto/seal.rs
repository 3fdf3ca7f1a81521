//! Sealed envelopes (`--key-file`): every envelope a keyed side sends is
//! encrypted and authenticated with XChaCha20-Poly1305 under a shared
//! 256-bit key, and a keyed side takes nothing it could not authenticate.
//!
//! A sealed datagram is the 3-byte header (`F5 01 05`), a 24-byte nonce,
//! the inner envelope (message, receipt, hello or bye, its own header
//! included) encrypted, and the 16-byte tag. The header and the nonce are
//! the associated data. The nonce is the sender's 16-byte random prefix
//! (drawn once per run from the OS) and a 64-bit counter, from 1 and one
//! higher for every sealed datagram: within a run the counter never
//! repeats, and two runs share a prefix with probability 2^-128, so a nonce
//! never repeats under one key. The counter is also what the receiver's
//! replay window ([`ReplayWindow`]) tracks, per sender prefix and address.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use super::envelope::{MAGIC, VERSION};

/// Kind byte of a sealed envelope.
pub const KIND_SEALED: u8 = 5;

/// The nonce's length.
pub const NONCE_LEN: usize = 24;

/// The tag's length.
pub const TAG_LEN: usize = 16;

/// Bytes a seal adds to an envelope: header, nonce, tag.
pub const OVERHEAD: usize = 3 + NONCE_LEN + TAG_LEN;

/// The width of the replay window, in counters: datagrams from one sender
/// may arrive this far out of order and still be taken. 4096 covers the
/// 4096 missing message numbers the receive accounting keeps per session,
/// at 512 bytes per sender.
pub const WINDOW: u64 = 4096;

/// A 256-bit key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// A key of these bytes (real keys come from
    /// [`keyfile`](crate::cmd::keyfile): generated, or read from a key
    /// file).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The key's bytes (to write them to a key file).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a keyed side refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// A plain datagram (not an envelope).
    Plain,
    /// An envelope that is not sealed.
    Unsealed,
    /// An envelope of a version this side does not speak.
    UnknownVersion,
    /// A sealed envelope too short to hold a nonce and a tag, or whose
    /// inner envelope does not decode.
    Malformed,
    /// The tag does not match: another key, or altered on the way.
    BadTag,
    /// A counter already seen from this sender: a replay.
    Replay,
    /// A counter older than the window: cannot be told from a replay.
    TooOld,
    /// Sealed by this side itself (its own nonce prefix, or its own
    /// session inside): sent back to it, a reflection.
    Reflected,
    /// Secured in a session this side does not have (one from before
    /// either side restarted, or never opened).
    UnknownSession,
    /// A handshake of the other method (a code where a key file is used,
    /// or the other way round).
    OtherMethod,
    /// A handshake step nothing here waits for (a reply to no init, a
    /// finish of another handshake).
    Unexpected,
    /// A code handshake after the code was used: one guess per run.
    CodeSpent,
}

impl Rejection {
    /// Every reason, in the order counts are shown.
    pub const ALL: [Rejection; 12] = [
        Rejection::BadTag,
        Rejection::Replay,
        Rejection::TooOld,
        Rejection::Reflected,
        Rejection::UnknownSession,
        Rejection::OtherMethod,
        Rejection::Unexpected,
        Rejection::CodeSpent,
        Rejection::UnknownVersion,
        Rejection::Plain,
        Rejection::Unsealed,
        Rejection::Malformed,
    ];

    /// The reason's name in `--json` and the summary.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Plain => "plain",
            Rejection::Unsealed => "unsealed",
            Rejection::UnknownVersion => "unknown_version",
            Rejection::Malformed => "malformed",
            Rejection::BadTag => "bad_tag",
            Rejection::Replay => "replay",
            Rejection::TooOld => "too_old",
            Rejection::Reflected => "reflected",
            Rejection::UnknownSession => "unknown_session",
            Rejection::OtherMethod => "other_method",
            Rejection::Unexpected => "unexpected",
            Rejection::CodeSpent => "code_spent",
        }
    }

    /// What it means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::Plain => "a plain datagram, and only sealed envelopes are taken here",
            Rejection::Unsealed => "an envelope not sealed with a key",
            Rejection::UnknownVersion => "an envelope of an unknown version",
            Rejection::Malformed => "a sealed envelope that does not decode",
            Rejection::BadTag => "not sealed with this key (or altered on the way)",
            Rejection::Replay => "a replay of a datagram already taken",
            Rejection::TooOld => "older than the replay window can tell",
            Rejection::Reflected => "sealed by this side itself and sent back (a reflection)",
            Rejection::UnknownSession => {
                "secured in a session this side does not have (from before a restart?)"
            }
            Rejection::OtherMethod => "a handshake of the other method (code or key file)",
            Rejection::Unexpected => "a handshake step nothing here waits for",
            Rejection::CodeSpent => "a handshake on a code already used (one guess per run)",
        }
    }
}

/// Seals envelopes: the cipher, this run's nonce prefix and counter.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 16],
    counter: u64,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// This side's nonce prefix: what it sealed carries it.
    pub fn prefix(&self) -> [u8; 16] {
        self.prefix
    }

    /// A sealer for `key` with `prefix`, which must be drawn at random for
    /// every run (the caller draws it: the protocol draws nothing).
    pub fn with_prefix(key: &Key, prefix: [u8; 16]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new((&key.0).into()),
            prefix,
            counter: 0,
        }
    }

    /// Seals `inner` (a whole envelope) into one datagram.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        self.counter += 1;
        let mut out = Vec::with_capacity(inner.len() + OVERHEAD);
        out.extend_from_slice(&[MAGIC, VERSION, KIND_SEALED]);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&self.counter.to_be_bytes());
        let aad_len = out.len();
        out.extend_from_slice(inner);
        let (aad, body) = out.split_at_mut(aad_len);
        let nonce = XNonce::from_slice(&aad[3..]);
        let tag = self
            .cipher
            .encrypt_in_place_detached(nonce, aad, body)
            .expect("a datagram is far below the cipher's length limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a sealed datagram: the sender's prefix and counter, and the
    /// inner envelope. Only authenticated bytes come out.
    pub fn open(&self, datagram: &[u8]) -> Result<Opened, Rejection> {
        match datagram {
            [first, ..] if *first != MAGIC => return Err(Rejection::Plain),
            [] => return Err(Rejection::Plain),
            [_, version, ..] if *version != VERSION => return Err(Rejection::UnknownVersion),
            [_, _, kind, ..] if *kind != KIND_SEALED => return Err(Rejection::Unsealed),
            _ if datagram.len() < OVERHEAD => return Err(Rejection::Malformed),
            _ => {}
        }
        let aad = &datagram[..3 + NONCE_LEN];
        let (body, tag) = datagram[3 + NONCE_LEN..].split_at(datagram.len() - OVERHEAD);
        let mut inner = body.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(&aad[3..]),
                aad,
                &mut inner,
                Tag::from_slice(tag),
            )
            .map_err(|_| Rejection::BadTag)?;
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&aad[3..19]);
        let counter = u64::from_be_bytes(aad[19..27].try_into().expect("8 bytes"));
        Ok(Opened {
            prefix,
            counter,
            inner,
        })
    }
}

/// An authenticated datagram, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender's nonce prefix (one per run).
    pub prefix: [u8; 16],
    /// Its counter.
    pub counter: u64,
    /// The inner envelope.
    pub inner: Vec<u8>,
}

/// An RFC 6479-style replay window over one sender's counters: a bitmap of
/// the last [`WINDOW`] counters below the highest seen. A counter is
/// checked before it is taken, and taken only once its datagram is
/// authenticated, so forgeries cannot move the window.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// The highest counter taken (0: none yet).
    highest: u64,
    /// Bit `c % WINDOW` is set when counter `c` was taken (for counters
    /// within the window).
    bits: Box<[u64; (WINDOW / 64) as usize]>,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            highest: 0,
            bits: Box::new([0; (WINDOW / 64) as usize]),
        }
    }
}

impl ReplayWindow {
    fn slot(counter: u64) -> (usize, u64) {
        let bit = counter % WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    /// Whether `counter` may be taken: new, or within the window and not
    /// seen.
    pub fn check(&self, counter: u64) -> Result<(), Rejection> {
        if counter == 0 {
            return Err(Rejection::TooOld);
        }
        if counter > self.highest {
            return Ok(());
        }
        if self.highest - counter >= WINDOW {
            return Err(Rejection::TooOld);
        }
        let (word, mask) = Self::slot(counter);
        if self.bits[word] & mask != 0 {
            Err(Rejection::Replay)
        } else {
            Ok(())
        }
    }

    /// The highest counter taken (0: none yet).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Takes `counter` (after [`ReplayWindow::check`] and authentication).
    pub fn take(&mut self, counter: u64) {
        if counter > self.highest {
            // Clear the slots of the counters the window slides past.
            let advance = counter - self.highest;
            if advance >= WINDOW {
                self.bits.fill(0);
            } else {
                for c in self.highest + 1..=counter {
                    let (word, mask) = Self::slot(c);
                    self.bits[word] &= !mask;
                }
            }
            self.highest = counter;
        }
        let (word, mask) = Self::slot(counter);
        self.bits[word] |= mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> Key {
        Key([byte; 32])
    }

    /// What is sealed opens to the same bytes, with its counter; a flipped
    /// byte anywhere, another key, a plain datagram, an unsealed envelope
    /// and a short one are each rejected for their reason.
    #[test]
    fn seal_and_open() {
        let mut sealer = Sealer::with_prefix(&key(1), [7; 16]);
        let inner = b"\xf5\x01\x03inner envelope".to_vec();
        let sealed = sealer.seal(&inner);
        assert_eq!(sealed.len(), inner.len() + OVERHEAD);
        let opened = sealer.open(&sealed).unwrap();
        assert_eq!(
            (opened.inner, opened.counter, opened.prefix),
            (inner, 1, [7; 16])
        );
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x20;
            let expected = match at {
                0 => Rejection::Plain,
                1 => Rejection::UnknownVersion,
                2 => Rejection::Unsealed,
                _ => Rejection::BadTag,
            };
            assert_eq!(sealer.open(&bad), Err(expected), "byte {at}");
        }
        let other = Sealer::with_prefix(&key(2), [7; 16]);
        assert_eq!(other.open(&sealed), Err(Rejection::BadTag));
        assert_eq!(sealer.open(b"hello"), Err(Rejection::Plain));
        assert_eq!(sealer.open(b""), Err(Rejection::Plain));
        assert_eq!(sealer.open(b"\xf5\x01\x01abc"), Err(Rejection::Unsealed));
        assert_eq!(sealer.open(b"\xf5\x01\x05abc"), Err(Rejection::Malformed));
        assert_eq!(sealer.seal(b"x").len(), 1 + OVERHEAD);
    }

    /// Counters: new ones taken, repeats refused as replays, ones older
    /// than the window refused as too old, out-of-order ones within the
    /// window taken once.
    #[test]
    fn replay_window() {
        let mut window = ReplayWindow::default();
        for c in [1, 2, 5, 3] {
            window.check(c).unwrap();
            window.take(c);
        }
        assert_eq!(window.check(2), Err(Rejection::Replay));
        assert_eq!(window.check(5), Err(Rejection::Replay));
        assert!(window.check(4).is_ok());
        window.take(10_000);
        assert_eq!(window.check(10_000 - WINDOW), Err(Rejection::TooOld));
        assert!(window.check(10_000 - WINDOW + 1).is_ok());
        assert_eq!(window.check(0), Err(Rejection::TooOld));
    }

    proptest! {
        /// Against a set of every counter taken, for any order: a counter
        /// is refused exactly when it was taken or is older than the
        /// window.
        #[test]
        fn replay_window_agrees_with_a_set(counters in proptest::collection::vec(1u64..20_000, 1..400)) {
            let mut window = ReplayWindow::default();
            let mut taken = std::collections::BTreeSet::new();
            let mut highest = 0;
            for c in counters {
                let expected = if taken.contains(&c) && highest - c < WINDOW {
                    Err(Rejection::Replay)
                } else if c + WINDOW <= highest {
                    Err(Rejection::TooOld)
                } else {
                    Ok(())
                };
                prop_assert_eq!(window.check(c), expected);
                if expected.is_ok() {
                    window.take(c);
                    taken.insert(c);
                    highest = highest.max(c);
                }
            }
        }
    }
}
