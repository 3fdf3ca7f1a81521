//! A session's transport: one key per direction, from the handshake's
//! split; each key replaced after a bounded time or number of datagrams
//! by Noise's `REKEY` (section 11.3 of the Noise specification), so a key
//! taken from memory later opens nothing sealed before its last rekey;
//! a replay window per receive key.
//!
//! The cipher is Noise's ChaChaPoly: ChaCha20-Poly1305 (RFC 8439) with the
//! nonce `00 00 00 00` followed by the 64-bit counter, little-endian. The
//! associated data is the secured datagram's header (PROTOCOL.md 10.6).
//! The sender's counter starts at 1 in every epoch; each epoch's key is a
//! new key, so a nonce never repeats under one key.

use std::fmt;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

use super::super::envelope::SessionId;
use super::super::seal::{Rejection, ReplayWindow};
use super::wire::{self, Secured, TAG_LEN};

/// When a sending key is replaced: after this long, or after this many
/// datagrams, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyLimits {
    /// The longest a key seals.
    pub after: Duration,
    /// The most datagrams a key seals.
    pub datagrams: u64,
}

impl Default for RekeyLimits {
    /// Two minutes or 2^20 datagrams (WireGuard rekeys after two minutes;
    /// a chat rarely sends a million datagrams in that time, but `/burst`
    /// can).
    fn default() -> Self {
        RekeyLimits {
            after: Duration::from_secs(120),
            datagrams: 1 << 20,
        }
    }
}

/// The most epochs a receiver moves ahead at once: a peer's rekeys while
/// everything it sent was lost (at the default limits, 32 minutes of
/// loss; the retries of a message give up long before).
pub const MAX_SKIP: u64 = 16;

/// A ChaChaPoly key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct CipherKey([u8; 32]);

impl fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CipherKey(…)")
    }
}

impl CipherKey {
    /// A key of these bytes (from the handshake's split).
    pub fn new(bytes: [u8; 32]) -> CipherKey {
        CipherKey(bytes)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&self.0).into())
    }

    /// Noise's `REKEY(k)`: the first 32 bytes of `ENCRYPT(k, 2^64 - 1,
    /// zerolen, zeros)`.
    pub fn rekey(&self) -> CipherKey {
        let mut block = [0u8; 32];
        let _tag = self
            .cipher()
            .encrypt_in_place_detached(&nonce(u64::MAX), b"", &mut block)
            .expect("32 bytes are within ChaCha20's limit");
        CipherKey(block)
    }
}

/// Noise's ChaChaPoly nonce: four zero bytes, then the counter
/// little-endian.
fn nonce(counter: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce.into()
}

/// One direction's key for sending.
#[derive(Debug)]
struct Sending {
    key: CipherKey,
    epoch: u64,
    /// The last counter used in this epoch.
    counter: u64,
    since: Instant,
}

/// One epoch's key for receiving, with its window.
#[derive(Debug)]
struct Receiving {
    key: CipherKey,
    epoch: u64,
    window: ReplayWindow,
}

/// Both directions of one session with one peer.
#[derive(Debug)]
pub struct Channel {
    /// The secure session's id (the same on both sides): the first field
    /// of what either seals.
    id: SessionId,
    sending: Sending,
    current: Receiving,
    /// The epoch before `current`, kept so that datagrams sealed just
    /// before the peer's rekey and reordered after it still open.
    previous: Option<Receiving>,
    limits: RekeyLimits,
}

impl Channel {
    /// A channel sealing with `send` and opening with `receive` (the
    /// handshake's split, in this side's order), from `now`.
    pub fn new(
        id: SessionId,
        send: CipherKey,
        receive: CipherKey,
        limits: RekeyLimits,
        now: Instant,
    ) -> Channel {
        Channel {
            id,
            sending: Sending {
                key: send,
                epoch: 0,
                counter: 0,
                since: now,
            },
            current: Receiving {
                key: receive,
                epoch: 0,
                window: ReplayWindow::default(),
            },
            previous: None,
            limits,
        }
    }

    /// The sending key's epoch (how many times it was replaced).
    pub fn send_epoch(&self) -> u64 {
        self.sending.epoch
    }

    /// The receiving key's epoch.
    pub fn receive_epoch(&self) -> u64 {
        self.current.epoch
    }

    /// Seals `inner` (an envelope) at `now`, replacing the sending key
    /// first when it is due.
    pub fn seal(&mut self, now: Instant, inner: &[u8]) -> Vec<u8> {
        let s = &mut self.sending;
        if s.counter >= self.limits.datagrams
            || now.saturating_duration_since(s.since) >= self.limits.after
        {
            s.key = s.key.rekey();
            s.epoch += 1;
            s.counter = 0;
            s.since = now;
        }
        s.counter += 1;
        let header = wire::secured_header(self.id, s.epoch as u8, s.counter);
        let mut out = Vec::with_capacity(header.len() + inner.len() + TAG_LEN);
        out.extend_from_slice(&header);
        out.extend_from_slice(inner);
        let tag = s
            .key
            .cipher()
            .encrypt_in_place_detached(&nonce(s.counter), &header, &mut out[header.len()..])
            .expect("a datagram is within ChaCha20's limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a secured datagram of this channel's peer: its inner bytes
    /// and whether it is the newest yet (the highest counter of the
    /// newest epoch), or why it is refused. The windows move only for what
    /// authenticated; a datagram of the peer's next epoch moves this side
    /// to it (the one before is kept for stragglers, the older forgotten).
    pub fn open(&mut self, secured: &Secured<'_>) -> Result<(Vec<u8>, bool), Rejection> {
        enum Which {
            Current,
            Previous,
            /// `skip` epochs ahead of the current one, with that epoch's
            /// key and the one before it.
            Ahead {
                skip: u64,
                key: CipherKey,
                before: CipherKey,
            },
        }
        let ahead = secured.epoch.wrapping_sub(self.current.epoch as u8);
        let which = if ahead == 0 {
            Which::Current
        } else if self
            .previous
            .as_ref()
            .is_some_and(|p| secured.epoch == p.epoch as u8)
        {
            Which::Previous
        } else if u64::from(ahead) <= MAX_SKIP {
            // The peer rekeyed, maybe more than once while everything it
            // sent in between was lost.
            let mut before = self.current.key.clone();
            let mut key = before.rekey();
            for _ in 1..ahead {
                before = key;
                key = before.rekey();
            }
            Which::Ahead {
                skip: u64::from(ahead),
                key,
                before,
            }
        } else {
            return Err(Rejection::TooOld);
        };
        let key = match &which {
            Which::Current => &self.current.key,
            Which::Previous => &self.previous.as_ref().expect("matched").key,
            Which::Ahead { key, .. } => key,
        };
        // Authenticated first, so that what fails is told apart: another
        // key or altered (bad tag), this side's own (reflected), or a
        // replay of what authenticated before.
        let inner = match decrypt(key, secured) {
            Ok(inner) => inner,
            Err(reason) => return Err(self.why_not(secured, reason)),
        };
        let newest = match which {
            Which::Current => secured.counter > self.current.window.highest(),
            Which::Previous => false,
            Which::Ahead { .. } => true,
        };
        match which {
            Which::Current => take(&mut self.current.window, secured.counter)?,
            Which::Previous => take(
                &mut self.previous.as_mut().expect("matched").window,
                secured.counter,
            )?,
            Which::Ahead { skip, key, before } => {
                if secured.counter == 0 {
                    return Err(Rejection::TooOld);
                }
                let epoch = self.current.epoch + skip;
                let mut next = Receiving {
                    key,
                    epoch,
                    window: ReplayWindow::default(),
                };
                next.window.take(secured.counter);
                let old = std::mem::replace(&mut self.current, next);
                // The epoch just before the new one stays for stragglers;
                // older keys are gone (nothing sealed under them opens).
                self.previous = Some(if skip == 1 {
                    old
                } else {
                    Receiving {
                        key: before,
                        epoch: epoch - 1,
                        window: ReplayWindow::default(),
                    }
                });
            }
        }
        Ok((inner, newest))
    }
}

/// Takes `counter` in `window`, or says why not.
fn take(window: &mut ReplayWindow, counter: u64) -> Result<(), Rejection> {
    window.check(counter)?;
    window.take(counter);
    Ok(())
}

impl Channel {
    /// Why a datagram of this session did not open: a reflection when it
    /// opens with this side's own sending key (of the sender's epoch now),
    /// else `reason`. Only failures pay for the second look.
    fn why_not(&self, secured: &Secured<'_>, reason: Rejection) -> Rejection {
        if secured.epoch == self.sending.epoch as u8 && decrypt(&self.sending.key, secured).is_ok()
        {
            Rejection::Reflected
        } else {
            reason
        }
    }
}

fn decrypt(key: &CipherKey, secured: &Secured<'_>) -> Result<Vec<u8>, Rejection> {
    let split = secured.sealed.len() - TAG_LEN;
    let mut inner = secured.sealed[..split].to_vec();
    let tag = Tag::from_slice(&secured.sealed[split..]);
    key.cipher()
        .decrypt_in_place_detached(&nonce(secured.counter), secured.header, &mut inner, tag)
        .map_err(|_| Rejection::BadTag)?;
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::secure::wire::split_secured;

    fn pair(limits: RekeyLimits, now: Instant) -> (Channel, Channel) {
        let (k1, k2) = (CipherKey::new([1; 32]), CipherKey::new([2; 32]));
        let a = Channel::new(SessionId([0xA; 8]), k1.clone(), k2.clone(), limits, now);
        let b = Channel::new(SessionId([0xA; 8]), k2, k1, limits, now);
        (a, b)
    }

    fn open(channel: &mut Channel, bytes: &[u8]) -> Result<Vec<u8>, Rejection> {
        channel
            .open(&split_secured(bytes).expect("a secured datagram"))
            .map(|(inner, _)| inner)
    }

    /// What one side seals the other opens once; a replay is refused; the
    /// sealing side itself cannot open it (its receive key is the other
    /// direction's); a flipped byte anywhere fails the tag.
    #[test]
    fn directions_are_apart_and_replays_refused() {
        let now = Instant::now();
        let (mut a, mut b) = pair(RekeyLimits::default(), now);
        let sealed = a.seal(now, b"hello");
        assert_eq!(open(&mut b, &sealed), Ok(b"hello".to_vec()));
        assert_eq!(open(&mut b, &sealed), Err(Rejection::Replay));
        assert_eq!(
            open(&mut a, &sealed),
            Err(Rejection::Reflected),
            "own datagram"
        );
        let fresh = a.seal(now, b"again");
        for i in 0..fresh.len() {
            let mut flipped = fresh.clone();
            flipped[i] ^= 0x01;
            if let Some(split) = split_secured(&flipped) {
                assert!(b.open(&split).is_err(), "byte {i}");
            }
        }
        assert_eq!(open(&mut b, &fresh), Ok(b"again".to_vec()));
    }

    /// Keys are replaced after the datagram limit and after the time
    /// limit; the receiver follows, takes stragglers of the epoch before,
    /// and refuses what is two epochs old.
    #[test]
    fn rekeying_is_followed_without_loss() {
        let now = Instant::now();
        let limits = RekeyLimits {
            after: Duration::from_secs(10),
            datagrams: 3,
        };
        let (mut a, mut b) = pair(limits, now);
        let first: Vec<Vec<u8>> = (0..3).map(|i| a.seal(now, &[i])).collect();
        let fourth = a.seal(now, b"4");
        assert_eq!(a.send_epoch(), 1);
        assert_eq!(open(&mut b, &fourth), Ok(b"4".to_vec()));
        assert_eq!(b.receive_epoch(), 1);
        for (i, sealed) in first.iter().enumerate() {
            assert_eq!(open(&mut b, sealed), Ok(vec![i as u8]), "straggler {i}");
        }
        let later = now + Duration::from_secs(11);
        let fifth = a.seal(later, b"5");
        assert_eq!(a.send_epoch(), 2, "time limit");
        assert_eq!(open(&mut b, &fifth), Ok(b"5".to_vec()));
        let sixth = a.seal(later, b"6");
        assert_eq!(open(&mut b, &sixth), Ok(b"6".to_vec()));
        assert_eq!(
            open(&mut b, &first[0]),
            Err(Rejection::TooOld),
            "two epochs old"
        );
    }

    /// Epochs whose every datagram was lost are skipped (up to
    /// [`MAX_SKIP`]); the epoch before the new one still opens; further
    /// ahead than that is refused.
    #[test]
    fn lost_epochs_are_skipped() {
        let now = Instant::now();
        let limits = RekeyLimits {
            after: Duration::from_secs(10),
            datagrams: 1,
        };
        let (mut a, mut b) = pair(limits, now);
        let sealed: Vec<Vec<u8>> = (0..5).map(|i| a.seal(now, &[i])).collect();
        assert_eq!(a.send_epoch(), 4);
        assert_eq!(
            open(&mut b, &sealed[4]),
            Ok(vec![4]),
            "three epochs skipped"
        );
        assert_eq!(b.receive_epoch(), 4);
        assert_eq!(open(&mut b, &sealed[3]), Ok(vec![3]), "the epoch before");
        assert_eq!(open(&mut b, &sealed[2]), Err(Rejection::TooOld));
        let far: Vec<Vec<u8>> = (0..=MAX_SKIP + 1).map(|_| a.seal(now, b"x")).collect();
        assert_eq!(open(&mut b, far.last().unwrap()), Err(Rejection::TooOld));
    }

    /// REKEY is Noise's: encrypting 32 zero bytes at nonce 2^64 - 1, and
    /// a new key each time.
    #[test]
    fn rekey_is_noise_rekey() {
        let key = CipherKey::new([0x42; 32]);
        let next = key.rekey();
        let mut block = [0u8; 32];
        ChaCha20Poly1305::new((&[0x42u8; 32]).into())
            .encrypt_in_place_detached(&nonce(u64::MAX), b"", &mut block)
            .unwrap();
        assert_eq!(next.0, block);
        assert_ne!(next.rekey().0, next.0);
    }
}
