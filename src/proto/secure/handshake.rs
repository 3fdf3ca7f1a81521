//! The two handshakes that open a session (PROTOCOL.md 10.2–10.4), as
//! steps without input or output: bytes and randomness in, bytes and keys
//! out.
//!
//! - **Key files**: Noise `NNpsk0_25519_ChaChaPoly_BLAKE2s` with the key
//!   file's 32 bytes as the pre-shared key; one round trip (init, reply).
//!   Fresh ephemeral keys on both sides give forward secrecy: the key file
//!   alone opens nothing recorded.
//! - **Codes**: SPAKE2 (Ed25519 group, symmetric, identity `dgram chat`)
//!   on the code; HKDF-SHA256 turns its key into the pre-shared key of the
//!   same Noise pattern, which the *responder* begins in its reply (so the
//!   initiator confirms the key first), and the initiator's finish
//!   confirms it to the responder: a round trip and a half.
//!
//! Each Noise message carries its sender's session id as its payload, so
//! the session ids in the clear headers are authenticated too. Both sides
//! derive a verification string from the handshake hash.

use std::fmt;
use std::time::Instant;

use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Sha256;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::{Builder, HandshakeState};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::super::envelope::SessionId;
use super::super::seal::Key;
use super::channel::{Channel, CipherKey, RekeyLimits};
use super::wire::{self, COOKIE_LEN, Handshake, Method, NOISE_LEN, Step};

/// The Noise protocol both handshakes run.
pub const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";

/// The Noise prologue of the key-file handshake.
pub const PROLOGUE_KEY_FILE: &[u8] = b"dgram 1 key file";

/// The Noise prologue of the code handshake.
pub const PROLOGUE_CODE: &[u8] = b"dgram 1 code";

/// SPAKE2's identity (symmetric mode): both sides use it.
pub const SPAKE_IDENTITY: &[u8] = b"dgram chat";

/// HKDF info turning SPAKE2's key into the pre-shared key.
pub const INFO_CODE_PSK: &[u8] = b"dgram 1 code psk";

/// HKDF info turning the handshake hash into the verification bytes.
pub const INFO_VERIFY: &[u8] = b"dgram 1 verify";

/// HKDF info turning the handshake hash into the secure session's id.
pub const INFO_SESSION_ID: &[u8] = b"dgram 1 session id";

/// What a side proves it holds: a key file's key, or a code.
#[derive(Clone)]
pub enum Secret {
    /// `--key-file`.
    KeyFile(Key),
    /// `--code`: the password both sides feed to SPAKE2 (the code's
    /// canonical form).
    Code(Vec<u8>),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::KeyFile(_) => f.write_str("Secret::KeyFile(…)"),
            Secret::Code(_) => f.write_str("Secret::Code(…)"),
        }
    }
}

impl Secret {
    /// The handshake this secret runs.
    pub fn method(&self) -> Method {
        match self {
            Secret::KeyFile(_) => Method::KeyFile,
            Secret::Code(_) => Method::Code,
        }
    }
}

/// A handshake that completed: the session's channel and what both
/// screens show to check that no one sits in the middle.
#[derive(Debug)]
pub struct Established {
    /// The secure session's id, the same on both sides and new for every
    /// handshake: secured datagrams carry it.
    pub id: SessionId,
    /// The session's keys.
    pub channel: Channel,
    /// Four bytes from the handshake hash, the same on both sides (shown
    /// as words by `/verify`).
    pub verify: [u8; 4],
}

/// Why a handshake step was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It did not authenticate (another key, altered, or forged).
    Unauthentic,
    /// A code handshake's key did not confirm: the codes differ (or
    /// someone guessed, and guessed wrong). The code is spent.
    WrongCode,
    /// Its fields do not fit this side's handshake.
    Unexpected,
}

/// Randomness for snow from a seeded ChaCha20 stream (the core draws no
/// randomness of its own).
struct Seeded(ChaCha20Rng);

impl Random for Seeded {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// snow's default primitives, with the seeded generator.
struct Resolver([u8; 32]);

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(Seeded(ChaCha20Rng::from_seed(self.0))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// A Noise handshake state for `psk` and `prologue`, its ephemeral key
/// drawn from `seed`.
fn noise(psk: &[u8; 32], prologue: &[u8], seed: [u8; 32], initiator: bool) -> HandshakeState {
    let builder = Builder::with_resolver(
        NOISE_PARAMS.parse().expect("a valid Noise name"),
        Box::new(Resolver(seed)),
    )
    .prologue(prologue)
    .expect("a prologue is taken once")
    .psk(0, psk)
    .expect("NNpsk0 has a psk at 0");
    if initiator {
        builder.build_initiator().expect("every primitive resolves")
    } else {
        builder.build_responder().expect("every primitive resolves")
    }
}

/// Writes the next Noise message, with `session` as its payload.
fn write(state: &mut HandshakeState, session: SessionId) -> Vec<u8> {
    let mut out = vec![0; NOISE_LEN];
    let n = state
        .write_message(&session.0, &mut out)
        .expect("a handshake message fits");
    debug_assert_eq!(n, NOISE_LEN);
    out
}

/// Reads a Noise message whose payload must be `session`.
fn read(state: &mut HandshakeState, message: &[u8], session: SessionId) -> Result<(), Refusal> {
    let mut payload = [0u8; NOISE_LEN];
    let n = state
        .read_message(message, &mut payload)
        .map_err(|_| Refusal::Unauthentic)?;
    if payload[..n] != session.0 {
        return Err(Refusal::Unexpected);
    }
    Ok(())
}

/// The channel and verification bytes of a finished Noise handshake, for
/// the side that was Noise's initiator (`noise_initiator`) or responder.
fn finish(
    mut state: HandshakeState,
    noise_initiator: bool,
    limits: RekeyLimits,
    now: Instant,
) -> Established {
    let hash = state.get_handshake_hash().to_vec();
    let (to_responder, to_initiator) = state.dangerously_get_raw_split();
    let (send, receive) = if noise_initiator {
        (to_responder, to_initiator)
    } else {
        (to_initiator, to_responder)
    };
    let (mut verify, mut id) = ([0u8; 4], [0u8; 8]);
    let hkdf = Hkdf::<Sha256>::new(None, &hash);
    hkdf.expand(INFO_VERIFY, &mut verify)
        .expect("4 bytes are within HKDF's limit");
    hkdf.expand(INFO_SESSION_ID, &mut id)
        .expect("8 bytes are within HKDF's limit");
    Established {
        id: SessionId(id),
        channel: Channel::new(
            SessionId(id),
            CipherKey::new(send),
            CipherKey::new(receive),
            limits,
            now,
        ),
        verify,
    }
}

/// The pre-shared key a code's SPAKE2 key gives.
pub fn code_psk(spake_key: &[u8]) -> [u8; 32] {
    let mut psk = [0u8; 32];
    Hkdf::<Sha256>::new(None, spake_key)
        .expand(INFO_CODE_PSK, &mut psk)
        .expect("32 bytes are within HKDF's limit");
    psk
}

/// The code handshake's Noise part at the responder, which begins it
/// (it is Noise's initiator): its state and Noise message 1, with its
/// session as the payload.
pub fn code_noise_begin(
    psk: &[u8; 32],
    seed: [u8; 32],
    own: SessionId,
) -> (HandshakeState, Vec<u8>) {
    let mut state = noise(psk, PROLOGUE_CODE, seed, true);
    let message = write(&mut state, own);
    (state, message)
}

/// The code handshake's Noise part at the initiator (Noise's
/// responder): reads message 1 from `peer`, writes message 2 (its
/// finish) and opens the session. Fails when the pre-shared keys differ.
pub fn code_noise_answer(
    psk: &[u8; 32],
    seed: [u8; 32],
    own: SessionId,
    peer: SessionId,
    message: &[u8],
    now: Instant,
    limits: RekeyLimits,
) -> Result<(Vec<u8>, Established), Refusal> {
    let mut state = noise(psk, PROLOGUE_CODE, seed, false);
    read(&mut state, message, peer)?;
    let answer = write(&mut state, own);
    Ok((answer, finish(state, false, limits, now)))
}

/// The code handshake's last step at the responder: reads the finish's
/// Noise message 2 from `peer` and opens the session.
pub fn code_noise_finish(
    mut state: HandshakeState,
    peer: SessionId,
    message: &[u8],
    now: Instant,
    limits: RekeyLimits,
) -> Result<Established, Refusal> {
    read(&mut state, message, peer)?;
    Ok(finish(state, true, limits, now))
}

/// Two independent seeds from one: the first for the first message's
/// randomness (SPAKE2's scalar, or a key file's Noise ephemeral), the
/// second for a code's Noise ephemeral.
pub fn split_seed(seed: [u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut stream = ChaCha20Rng::from_seed(seed);
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    stream.fill_bytes(&mut a);
    stream.fill_bytes(&mut b);
    (a, b)
}

fn spake_start(password: &[u8], seed: [u8; 32]) -> (Spake2<Ed25519Group>, Vec<u8>) {
    Spake2::<Ed25519Group>::start_symmetric_with_rng(
        &Password::new(password),
        &Identity::new(SPAKE_IDENTITY),
        ChaCha20Rng::from_seed(seed),
    )
}

/// What the initiator waits for.
enum Waiting {
    /// Key files: the reply, to finish Noise.
    KeyFile(Box<HandshakeState>),
    /// Codes: the reply, with the responder's SPAKE2 message.
    Code(Spake2<Ed25519Group>),
}

/// What taking a reply gives: the session's keys (none for a copy of a
/// reply already taken), and the finish to send (codes).
pub type Taken = (Option<Established>, Option<Vec<u8>>);

/// One handshake begun by this side.
pub struct Initiator {
    method: Method,
    own: SessionId,
    /// `None` once the reply was taken (or refused as a wrong code).
    waiting: Option<Waiting>,
    /// The first message (SPAKE2 or Noise) of the init, for sending again.
    first: Vec<u8>,
    cookie: [u8; COOKIE_LEN],
    /// The reply taken and the finish it was answered with (codes), to
    /// answer a copy of the reply with the same finish.
    finished: Option<(Vec<u8>, Vec<u8>)>,
    /// Seeds the ephemeral key of the Noise message a code's initiator
    /// writes (its finish).
    noise_seed: [u8; 32],
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("method", &self.method)
            .field("own", &self.own)
            .field("waiting", &self.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Begins a handshake as `own`, its randomness from `seed`.
    pub fn start(secret: &Secret, own: SessionId, seed: [u8; 32]) -> Initiator {
        let (first_seed, noise_seed) = split_seed(seed);
        let (waiting, first) = match secret {
            Secret::KeyFile(key) => {
                let mut state = noise(key.as_bytes(), PROLOGUE_KEY_FILE, first_seed, true);
                let first = write(&mut state, own);
                (Waiting::KeyFile(Box::new(state)), first)
            }
            Secret::Code(password) => {
                let (spake, first) = spake_start(password, first_seed);
                (Waiting::Code(spake), first)
            }
        };
        Initiator {
            method: secret.method(),
            own,
            waiting: Some(waiting),
            first,
            cookie: [0; COOKIE_LEN],
            finished: None,
            noise_seed,
        }
    }

    /// The handshake's method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// True while the reply has not come.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// The init datagram (with the cookie, once one came), to send or
    /// send again.
    pub fn init(&self) -> Vec<u8> {
        let (spake, noise) = match self.method {
            Method::KeyFile => (None, Some(&self.first[..])),
            Method::Code => (Some(&self.first[..]), None),
        };
        wire::encode(&Handshake {
            method: self.method,
            sender: self.own,
            receiver: SessionId([0; 8]),
            step: Step::Init {
                cookie: self.cookie,
                spake,
                noise,
            },
        })
    }

    /// The responder is under load: the init goes again with `cookie`.
    pub fn take_cookie(&mut self, cookie: [u8; COOKIE_LEN]) {
        self.cookie = cookie;
    }

    /// The reply came (`reply` is its whole datagram, `peer` the
    /// responder's session): the session's keys, and for codes the finish
    /// to send. A copy of a reply already taken gives its finish again
    /// (the first was lost) and no keys.
    pub fn take_reply(
        &mut self,
        reply: &[u8],
        now: Instant,
        limits: RekeyLimits,
    ) -> Result<Taken, Refusal> {
        if let Some((taken, finish)) = &self.finished {
            return if taken == reply {
                Ok((None, Some(finish.clone())))
            } else {
                Err(Refusal::Unexpected)
            };
        }
        let decoded = wire::decode(reply).map_err(|_| Refusal::Unexpected)?;
        let (
            Step::Reply {
                spake,
                noise: message,
            },
            true,
        ) = (decoded.step, decoded.receiver == self.own)
        else {
            return Err(Refusal::Unexpected);
        };
        let peer = decoded.sender;
        match self.waiting.take() {
            Some(Waiting::KeyFile(mut state)) => {
                if let Err(refusal) = read(&mut state, message, peer) {
                    // A forged reply: keep waiting for the real one.
                    self.waiting = Some(Waiting::KeyFile(state));
                    return Err(refusal);
                }
                Ok((Some(finish(*state, true, limits, now)), None))
            }
            Some(Waiting::Code(spake_state)) => {
                let spake = spake.ok_or(Refusal::Unexpected)?;
                // The code is spent from here on, whatever follows: one
                // guess per run.
                let key = spake_state.finish(spake).map_err(|_| Refusal::WrongCode)?;
                let (noise2, established) = code_noise_answer(
                    &code_psk(&key),
                    self.noise_seed,
                    self.own,
                    peer,
                    message,
                    now,
                    limits,
                )
                .map_err(|_| Refusal::WrongCode)?;
                let finish_bytes = wire::encode(&Handshake {
                    method: Method::Code,
                    sender: self.own,
                    receiver: peer,
                    step: Step::Finish { noise: &noise2 },
                });
                self.finished = Some((reply.to_vec(), finish_bytes.clone()));
                Ok((Some(established), Some(finish_bytes)))
            }
            None => Err(Refusal::Unexpected),
        }
    }

    /// The `fail` datagram telling the responder `peer` that the code did
    /// not confirm.
    pub fn fail(&self, peer: SessionId) -> Vec<u8> {
        wire::encode(&Handshake {
            method: Method::Code,
            sender: self.own,
            receiver: peer,
            step: Step::Fail,
        })
    }
}

/// Answers a key-file init (`init` decoded, `init_bytes` its datagram) as
/// `own`: the reply and the session's keys. Nothing is kept for an init
/// that does not authenticate.
pub fn respond_key_file(
    key: &Key,
    own: SessionId,
    init: &Handshake<'_>,
    seed: [u8; 32],
    now: Instant,
    limits: RekeyLimits,
) -> Result<(Vec<u8>, Established), Refusal> {
    let Step::Init {
        noise: Some(message),
        ..
    } = init.step
    else {
        return Err(Refusal::Unexpected);
    };
    let mut state = noise(key.as_bytes(), PROLOGUE_KEY_FILE, split_seed(seed).0, false);
    read(&mut state, message, init.sender)?;
    let noise2 = write(&mut state, own);
    let reply = wire::encode(&Handshake {
        method: Method::KeyFile,
        sender: own,
        receiver: init.sender,
        step: Step::Reply {
            spake: None,
            noise: &noise2,
        },
    });
    Ok((reply, finish(state, false, limits, now)))
}

/// A code handshake this side answered, waiting for the finish.
pub struct CodeResponder {
    own: SessionId,
    peer: SessionId,
    /// `None` once the finish was taken.
    state: Option<Box<HandshakeState>>,
    /// The reply, to send again when the init comes again.
    pub reply: Vec<u8>,
}

impl fmt::Debug for CodeResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeResponder")
            .field("own", &self.own)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl CodeResponder {
    /// Answers a code init as `own` (this spends the code: the caller
    /// answers one init per run).
    pub fn answer(
        password: &[u8],
        own: SessionId,
        init: &Handshake<'_>,
        seed: [u8; 32],
    ) -> Result<CodeResponder, Refusal> {
        let Step::Init {
            spake: Some(theirs),
            ..
        } = init.step
        else {
            return Err(Refusal::Unexpected);
        };
        let (spake_seed, noise_seed) = split_seed(seed);
        let (spake, ours) = spake_start(password, spake_seed);
        let key = spake.finish(theirs).map_err(|_| Refusal::Unexpected)?;
        let (state, noise1) = code_noise_begin(&code_psk(&key), noise_seed, own);
        let reply = wire::encode(&Handshake {
            method: Method::Code,
            sender: own,
            receiver: init.sender,
            step: Step::Reply {
                spake: Some(&ours),
                noise: &noise1,
            },
        });
        Ok(CodeResponder {
            own,
            peer: init.sender,
            state: Some(Box::new(state)),
            reply,
        })
    }

    /// The initiator's session.
    pub fn peer(&self) -> SessionId {
        self.peer
    }

    /// The finish came: the session's keys. A finish that does not
    /// authenticate is refused, and ends the handshake.
    pub fn take_finish(
        &mut self,
        finish_message: &[u8],
        now: Instant,
        limits: RekeyLimits,
    ) -> Result<Established, Refusal> {
        // A finish that fails leaves Noise's state changed: the handshake
        // is over (only someone on the path, who knows both sessions,
        // can send one; such a one could drop the datagrams anyway).
        let state = self.state.take().ok_or(Refusal::Unexpected)?;
        code_noise_finish(*state, self.peer, finish_message, now, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::secure::wire::split_secured;

    fn sealed_round_trip(a: &mut Established, b: &mut Established, now: Instant) {
        let sealed = a.channel.seal(now, b"ping");
        let opened = b.channel.open(&split_secured(&sealed).unwrap());
        assert_eq!(opened, Ok((b"ping".to_vec(), true)));
        let sealed = b.channel.seal(now, b"pong");
        let opened = a.channel.open(&split_secured(&sealed).unwrap());
        assert_eq!(opened, Ok((b"pong".to_vec(), true)));
    }

    /// A key-file handshake: one round trip; both sides get keys that
    /// open each other's datagrams, and the same verification bytes.
    #[test]
    fn key_file_handshake_gives_matching_keys() {
        let now = Instant::now();
        let secret = Secret::KeyFile(Key::from_bytes([7; 32]));
        let (alice, bob) = (SessionId([1; 8]), SessionId([2; 8]));
        let mut initiator = Initiator::start(&secret, alice, [11; 32]);
        let init = initiator.init();
        let decoded = wire::decode(&init).unwrap();
        let Secret::KeyFile(key) = &secret else {
            unreachable!()
        };
        let (reply, mut b) =
            respond_key_file(key, bob, &decoded, [12; 32], now, RekeyLimits::default()).unwrap();
        assert!(reply.len() <= init.len());
        let (a, finish) = initiator
            .take_reply(&reply, now, RekeyLimits::default())
            .unwrap();
        assert!(finish.is_none(), "one round trip");
        let mut a = a.unwrap();
        assert_eq!(a.verify, b.verify);
        sealed_round_trip(&mut a, &mut b, now);
    }

    /// Another key: the responder cannot read the init, and answers
    /// nothing.
    #[test]
    fn key_file_handshake_with_another_key_is_refused() {
        let now = Instant::now();
        let mine = Secret::KeyFile(Key::from_bytes([7; 32]));
        let init = Initiator::start(&mine, SessionId([1; 8]), [11; 32]).init();
        let other = Key::from_bytes([8; 32]);
        let refused = respond_key_file(
            &other,
            SessionId([2; 8]),
            &wire::decode(&init).unwrap(),
            [12; 32],
            now,
            RekeyLimits::default(),
        );
        assert_eq!(refused.err(), Some(Refusal::Unauthentic));
    }

    fn code_run(theirs: &[u8], mine: &[u8]) -> (Initiator, Result<Taken, Refusal>, CodeResponder) {
        let now = Instant::now();
        let mut initiator =
            Initiator::start(&Secret::Code(theirs.to_vec()), SessionId([1; 8]), [21; 32]);
        let init = initiator.init();
        let responder = CodeResponder::answer(
            mine,
            SessionId([2; 8]),
            &wire::decode(&init).unwrap(),
            [22; 32],
        )
        .unwrap();
        assert!(responder.reply.len() <= init.len(), "no amplification");
        let taken = initiator.take_reply(&responder.reply, now, RekeyLimits::default());
        (initiator, taken, responder)
    }

    /// A code handshake with the same code: the initiator confirms the
    /// key from the reply, the responder from the finish; keys and
    /// verification bytes match; a copy of the reply gets the same
    /// finish.
    #[test]
    fn code_handshake_confirms_the_key() {
        let now = Instant::now();
        let code = b"7-crossover-clockwork-ragtime";
        let (mut initiator, taken, mut responder) = code_run(code, code);
        let (a, finish) = taken.unwrap();
        let (mut a, finish) = (a.unwrap(), finish.unwrap());
        let again = initiator
            .take_reply(&responder.reply.clone(), now, RekeyLimits::default())
            .unwrap();
        assert_eq!(again.1.as_deref(), Some(&finish[..]));
        assert!(again.0.is_none());
        let Step::Finish { noise } = wire::decode(&finish).unwrap().step else {
            panic!("a finish")
        };
        let mut b = responder
            .take_finish(noise, now, RekeyLimits::default())
            .unwrap();
        assert_eq!(a.verify, b.verify);
        sealed_round_trip(&mut a, &mut b, now);
    }

    /// Different codes: the initiator finds out from the reply (wrong
    /// code) and has no keys.
    #[test]
    fn a_wrong_code_is_found_at_the_reply() {
        let (initiator, taken, _) = code_run(b"7-crossover-clockwork", b"7-crossover-clockwerk");
        assert_eq!(taken.err(), Some(Refusal::WrongCode));
        assert!(!initiator.is_waiting(), "the code is spent");
    }
}
