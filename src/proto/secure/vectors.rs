//! The worked examples of PROTOCOL.md section 10.9, computed here from
//! their inputs and checked against the document, so that a second
//! implementation can trust every byte written there.

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::super::envelope::{self, Message, SessionId};
use super::super::seal::Key;
use super::RekeyLimits;
use super::handshake::{self, Initiator, Secret, code_psk, split_seed};
use super::wire::{self, Step, split_secured};

/// Alice's message number `seq`, first try, name `al`, text `hi`.
fn alice_says_hi(seq: u64) -> Vec<u8> {
    envelope::encode_message(&Message {
        session: SessionId([0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]),
        seq,
        attempt: 1,
        name: "al".into(),
        payload: b"hi".to_vec(),
    })
}

/// Lowercase hex, bytes separated by spaces, 16 to a line.
fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ephemeral private key a side with `seed` draws: the first 32
/// bytes of the ChaCha20 stream of one half of the seed (the first half
/// for a key file's handshake, the second for a code's Noise part).
fn ephemeral(seed: [u8; 32], second: bool) -> [u8; 32] {
    let (first, other) = split_seed(seed);
    let mut key = [0u8; 32];
    ChaCha20Rng::from_seed(if second { other } else { first }).fill_bytes(&mut key);
    key
}

/// X25519's public key of `private`, as snow computes it.
fn public(private: &[u8; 32]) -> Vec<u8> {
    use snow::params::DHChoice;
    use snow::resolvers::{CryptoResolver, DefaultResolver};
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .expect("X25519");
    dh.set(private);
    dh.pubkey().to_vec()
}

/// Every labelled value of the examples, in the document's order.
fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let now = Instant::now();
    // Every datagram under a new key, so that the examples show REKEY.
    let limits = RekeyLimits {
        after: std::time::Duration::from_secs(3600),
        datagrams: 1,
    };
    let (alice, bob) = (
        SessionId([0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]),
        SessionId([0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8]),
    );
    let psk: [u8; 32] = std::array::from_fn(|i| i as u8);
    let (seed_a, seed_b) = ([0x11; 32], [0x22; 32]);
    let mut out = Vec::new();

    // Key file: alice begins.
    out.push(("key file psk", psk.to_vec()));
    out.push((
        "alice ephemeral private key",
        ephemeral(seed_a, false).to_vec(),
    ));
    out.push((
        "bob ephemeral private key",
        ephemeral(seed_b, false).to_vec(),
    ));
    let secret = Secret::KeyFile(Key::from_bytes(psk));
    let mut initiator = Initiator::start(&secret, alice, seed_a);
    let init = initiator.init();
    out.push(("key file init", init.clone()));
    assert_eq!(
        init[37..69],
        public(&ephemeral(seed_a, false))[..],
        "alice's e"
    );
    let (reply, mut b) = handshake::respond_key_file(
        &Key::from_bytes(psk),
        bob,
        &wire::decode(&init).unwrap(),
        seed_b,
        now,
        limits,
    )
    .unwrap();
    out.push(("key file reply", reply.clone()));
    assert_eq!(
        reply[21..53],
        public(&ephemeral(seed_b, false))[..],
        "bob's e"
    );
    let (a, _) = initiator.take_reply(&reply, now, limits).unwrap();
    let mut a = a.unwrap();
    assert_eq!(a.verify, b.verify);
    out.push(("key file session id", a.id.0.to_vec()));
    out.push(("key file verify", a.verify.to_vec()));
    let message = alice_says_hi(1);
    out.push(("message envelope", message.clone()));
    let secured = a.channel.seal(now, &message);
    out.push(("key file secured message", secured.clone()));
    let opened = b.channel.open(&split_secured(&secured).unwrap()).unwrap();
    assert_eq!(opened.0, message);
    let again = alice_says_hi(2);
    out.push(("second message envelope", again.clone()));
    let rekeyed = a.channel.seal(now, &again);
    out.push(("key file secured second message (epoch 1)", rekeyed.clone()));
    assert_eq!(
        b.channel.open(&split_secured(&rekeyed).unwrap()).unwrap().0,
        again
    );
    let keepalive = b.channel.seal(now, &[]);
    out.push(("key file keepalive from bob", keepalive.clone()));
    assert!(
        a.channel
            .open(&split_secured(&keepalive).unwrap())
            .unwrap()
            .0
            .is_empty()
    );
    let challenge = wire::encode_path(&wire::PathCheck::Challenge {
        token: [1, 2, 3, 4, 5, 6, 7, 8],
        seen: "10.0.9.7:4000".parse().unwrap(),
    });
    out.push(("path challenge", challenge.clone()));
    out.push((
        "path challenge secured by bob (epoch 1)",
        b.channel.seal(now, &challenge),
    ));
    let response = wire::encode_path(&wire::PathCheck::Response {
        token: [1, 2, 3, 4, 5, 6, 7, 8],
    });
    out.push(("path response", response));

    // Code: alice begins; the SPAKE2 key is given (SPAKE2 itself is
    // python-spake2's and the spake2 crate's, with random scalars).
    let spake_key: [u8; 32] = std::array::from_fn(|i| 0x40 + i as u8);
    out.push(("spake2 key", spake_key.to_vec()));
    out.push(("code psk", code_psk(&spake_key).to_vec()));
    out.push((
        "bob noise ephemeral private key",
        ephemeral(seed_b, true).to_vec(),
    ));
    out.push((
        "alice noise ephemeral private key",
        ephemeral(seed_a, true).to_vec(),
    ));
    out
}

/// The code handshake's Noise part, from a given SPAKE2 key: bob's Noise
/// message 1 (in his reply) and alice's finish, with the ephemeral keys
/// above.
fn code_examples() -> Vec<(&'static str, Vec<u8>)> {
    let now = Instant::now();
    let limits = RekeyLimits::default();
    let (alice, bob) = (
        SessionId([0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]),
        SessionId([0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8]),
    );
    let spake_key: [u8; 32] = std::array::from_fn(|i| 0x40 + i as u8);
    let psk = code_psk(&spake_key);
    let (seed_a, seed_b) = ([0x11; 32], [0x22; 32]);
    let (bob_noise, noise1) = handshake::code_noise_begin(&psk, split_seed(seed_b).1, bob);
    let (finish, a) =
        handshake::code_noise_answer(&psk, split_seed(seed_a).1, alice, bob, &noise1, now, limits)
            .unwrap();
    assert_eq!(
        noise1[..32],
        public(&ephemeral(seed_b, true))[..],
        "bob's e"
    );
    assert_eq!(
        finish[..32],
        public(&ephemeral(seed_a, true))[..],
        "alice's e"
    );
    let mut out = vec![("code noise message 1", noise1.clone())];
    let finish_bytes = wire::encode(&wire::Handshake {
        method: wire::Method::Code,
        sender: alice,
        receiver: bob,
        step: Step::Finish { noise: &finish },
    });
    out.push(("code finish", finish_bytes));
    let b = handshake::code_noise_finish(bob_noise, alice, &finish, now, limits).unwrap();
    assert_eq!(a.verify, b.verify);
    out.push(("code session id", a.id.0.to_vec()));
    out.push(("code verify", a.verify.to_vec()));
    let message = alice_says_hi(1);
    let mut a = a;
    let mut b = b;
    let secured = a.channel.seal(now, &message);
    out.push(("code secured message", secured.clone()));
    assert_eq!(
        b.channel.open(&split_secured(&secured).unwrap()).unwrap().0,
        message
    );
    out
}

/// Every example in PROTOCOL.md section 10.9 is what this code computes.
#[test]
fn protocol_md_examples_hold() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let mut missing = Vec::new();
    for (label, bytes) in examples().into_iter().chain(code_examples()) {
        let block = format!("{label}:\n{}\n", hex(&bytes));
        if !doc.contains(&block) {
            missing.push(block);
        }
    }
    for (label, bytes) in examples().into_iter().chain(code_examples()) {
        if label.ends_with("verify") {
            let words = crate::proto::code::verification_words(&bytes.try_into().unwrap());
            if !doc.contains(&format!("`{words}`")) {
                missing.push(format!("{label} words: {words}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in PROTOCOL.md:\n{}",
        missing.join("\n")
    );
}
