//! The secure-session decoders: handshake datagrams (kind 6), secured
//! datagrams (kind 7) and path checks never panic; every handshake
//! datagram and path check they accept encodes back to the same bytes;
//! and a keyed side fed any bytes (its first byte picks key file or code)
//! shows no message and answers nothing longer than what it got.
#![no_main]

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use dgram::proto::chat::{ChatEvent, Incoming};
use dgram::proto::seal::Key;
use dgram::proto::secure::wire;
use dgram::proto::{ChatConfig, Core, Entropy, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(handshake) = wire::decode(data) {
        assert_eq!(wire::encode(&handshake), data);
    }
    if let Some(check) = wire::decode_path(data) {
        assert_eq!(wire::encode_path(&check), data);
    }
    let _ = wire::split_secured(data);

    let now = Instant::now();
    let code = data.first().is_some_and(|b| b & 1 == 1);
    let config = ChatConfig {
        key: (!code).then(|| Key::from_bytes([7; 32])),
        code: code.then(|| b"7-clockwork-crossover".to_vec()),
        ..ChatConfig::receiver(SessionId([1; 8]))
    };
    let entropy = Entropy {
        seed: 1,
        prefix: [1; 16],
        secret: [2; 32],
        crypto: [3; 32],
    };
    let mut core = Core::new(config, entropy, now);
    let from: SocketAddr = "10.0.0.9:4000".parse().unwrap();
    core.handle_datagram(
        now,
        Incoming {
            at: SystemTime::UNIX_EPOCH,
            from,
            payload: data,
            truncated: false,
        },
    );
    while let Some(event) = core.poll_event() {
        assert!(!matches!(event, ChatEvent::Message(_)), "{event:?}");
    }
    while let Some(transmit) = core.poll_transmit() {
        assert!(transmit.bytes.len() <= data.len(), "{transmit:?}");
    }
});
