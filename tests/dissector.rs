//! The Wireshark dissector (`contrib/wireshark/dgram.lua`) read by tshark
//! against dgram itself: PROTOCOL.md's worked examples and datagrams made
//! by dgram's own encoders decode field by field to what dgram's decoders
//! say; malformed envelopes are flagged with dgram's reasons; plain text
//! and STUN are left to others; and captures of real chats decode to what
//! the chats report in their `--json` events.
//!
//! tshark runs with `-X lua_script:` (as root too: Debian's init.lua sets
//! `run_user_scripts_when_superuser`, and [`tshark`] checks that the
//! dissector did load) and `-o udp.try_heuristic_first:TRUE`, so that a
//! port some other dissector registered cannot take an ephemeral port's
//! datagrams before the heuristic sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dgram::proto::envelope::{self, Ack, Decoded, Envelope, Message, Presence, SessionId};
use dgram::proto::mtu;
use dgram::proto::rendezvous::{self, Status};
use dgram::proto::seal::{Key, Sealer};
use dgram::proto::secure::wire::{self, Handshake, Method, PathCheck, Step};
use dgram::proto::traverse::{self, Probe};
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::util::{
    DEADLINE, Proc, any_local_addr, closed_port, has, keygen, listener, need, stop, temp_path,
    wait_for,
};

/// The Lua plugin under test.
fn plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/wireshark/dgram.lua")
}

/// Every field a test reads, one tshark column each.
const FIELDS: &[&str] = &[
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "frame.protocols",
    "dgram.kind",
    "dgram.version",
    "dgram.session",
    "dgram.seq",
    "dgram.try",
    "dgram.name",
    "dgram.text",
    "dgram.payload",
    "dgram.challenge",
    "dgram.answer",
    "dgram.prefix",
    "dgram.counter",
    "dgram.ciphertext_len",
    "dgram.step",
    "dgram.method",
    "dgram.sender",
    "dgram.receiver",
    "dgram.cookie",
    "dgram.spake2",
    "dgram.noise",
    "dgram.session_id",
    "dgram.epoch",
    "dgram.token",
    "dgram.seen.ipv4",
    "dgram.seen.ipv6",
    "dgram.seen.port",
    "dgram.number",
    "dgram.registrant",
    "dgram.status",
    "dgram.count",
    "dgram.candidate",
    "dgram.flags",
    "dgram.direction",
    "dgram.size",
    "dgram.malformed",
    "dgram.encrypted",
    "_ws.expert.message",
];

/// One frame as tshark decoded it: field name to value (several
/// occurrences joined by `|`; absent fields are absent).
type Row = BTreeMap<String, String>;

/// Runs tshark with the plugin over `pcap` and returns one row per frame.
/// Fails when the dissector did not load or printed an error.
fn tshark(pcap: &Path) -> Vec<Row> {
    need("tshark");
    let mut args = vec![
        "-n".to_string(),
        "-X".to_string(),
        format!("lua_script:{}", plugin().display()),
        "-o".to_string(),
        "udp.try_heuristic_first:TRUE".to_string(),
        "-r".to_string(),
        pcap.display().to_string(),
        "-T".to_string(),
        "fields".to_string(),
        "-E".to_string(),
        "separator=/t".to_string(),
        "-E".to_string(),
        "occurrence=a".to_string(),
        "-E".to_string(),
        "aggregator=|".to_string(),
    ];
    for field in FIELDS {
        args.push("-e".to_string());
        args.push(field.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proc = Proc::spawn("tshark", &args);
    let status = proc.finish_within(DEADLINE);
    // tshark warns when it runs as root; anything else on stderr (a Lua
    // error, a field the plugin did not register) is a failure.
    let complaints: Vec<String> = proc
        .stderr()
        .lines()
        .filter(|line| !line.starts_with("Running as user \"root\""))
        .map(str::to_string)
        .collect();
    assert!(
        status.success() && complaints.is_empty(),
        "tshark failed (if it says Lua is disabled for root, see docs/wireshark.md)\n{}",
        proc.dump()
    );
    proc.stdout()
        .lines()
        .map(|line| {
            FIELDS
                .iter()
                .zip(line.split('\t'))
                .filter(|(_, value)| !value.is_empty())
                .map(|(field, value)| (field.to_string(), value.to_string()))
                .collect()
        })
        .collect()
}

/// Writes `datagrams` as a pcap file of IPv4/UDP packets from
/// 127.0.0.1:`ports.0` to 127.0.0.2:`ports.1` (LINKTYPE_IPV4), one a
/// second; with `snap`, a packet longer than that keeps only `snap` bytes
/// (the IP and UDP headers still say its whole length).
fn write_pcap(path: &Path, datagrams: &[Vec<u8>], ports: (u16, u16), snap: Option<usize>) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // microseconds
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&228u32.to_le_bytes()); // LINKTYPE_IPV4
    for (i, datagram) in datagrams.iter().enumerate() {
        let total = 20 + 8 + datagram.len();
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2]);
        let sum = ip
            .chunks(2)
            .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
            .sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        let checksum = !(((folded & 0xffff) + (folded >> 16)) as u16);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        ip.extend_from_slice(&ports.0.to_be_bytes());
        ip.extend_from_slice(&ports.1.to_be_bytes());
        ip.extend_from_slice(&((8 + datagram.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]); // no UDP checksum
        ip.extend_from_slice(datagram);
        let captured = total.min(snap.unwrap_or(total));
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(captured as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&ip[..captured]);
    }
    std::fs::write(path, out).unwrap();
}

/// Writes `datagrams` to a pcap file (ports 40000 to 40001, which no
/// dissector of Wireshark's claims) and has tshark decode it: one row per
/// datagram, in order.
fn dissect(name: &str, datagrams: &[Vec<u8>]) -> Vec<Row> {
    dissect_between(name, datagrams, (40_000, 40_001))
}

/// [`dissect`] between other ports.
fn dissect_between(name: &str, datagrams: &[Vec<u8>], ports: (u16, u16)) -> Vec<Row> {
    let path = temp_path(&format!("{name}.pcap"));
    write_pcap(&path, datagrams, ports, None);
    let rows = tshark(&path);
    assert_eq!(
        rows.len(),
        datagrams.len(),
        "one row per datagram: {rows:#?}"
    );
    rows
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A worked example: the label PROTOCOL.md gives it and its bytes.
struct Example {
    label: String,
    bytes: Vec<u8>,
}

/// The hex bytes of a line (`f5 01 0c …`), or `None` when it is not all
/// hex pairs.
fn hex_line(line: &str) -> Option<Vec<u8>> {
    line.split_whitespace()
        .map(|pair| match pair.len() {
            2 => u8::from_str_radix(pair, 16).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|bytes| !bytes.is_empty())
}

/// The worked examples of docs/PROTOCOL.md that are datagrams (they begin
/// with `F5 01`), read out of its fenced blocks: a block titled `name:`
/// whose lines are hex is one datagram, a line `label: hex` is one, and
/// an untitled block of hex lines is one. Keys, hashes and STUN are left
/// out; so the test follows the specification when it changes.
fn worked_examples() -> Vec<Example> {
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md"))
            .unwrap();
    let mut examples = Vec::new();
    let mut section = String::new();
    let mut block: Option<Vec<&str>> = None;
    for line in spec.lines() {
        if line.starts_with('#') && block.is_none() {
            section = line.trim_start_matches('#').trim().to_string();
        }
        if line.starts_with("```") {
            match block.take() {
                None => block = Some(Vec::new()),
                Some(lines) => examples.extend(block_examples(&section, &lines)),
            }
            continue;
        }
        if let Some(lines) = block.as_mut() {
            lines.push(line);
        }
    }
    let not_datagrams = [
        "psk",
        "private key",
        "spake2 key",
        "session id",
        "verify",
        "noise message",
    ];
    examples
        .into_iter()
        .filter(|example| example.bytes.starts_with(&[0xF5, 0x01]))
        .filter(|example| {
            !not_datagrams
                .iter()
                .any(|word| example.label.contains(word))
        })
        .collect()
}

fn block_examples(section: &str, lines: &[&str]) -> Vec<Example> {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let Some(first) = lines.first() else {
        return Vec::new();
    };
    if let Some(title) = first.strip_suffix(':') {
        let bytes: Option<Vec<Vec<u8>>> = lines[1..].iter().map(|l| hex_line(l)).collect();
        return bytes
            .map(|parts| Example {
                label: title.to_string(),
                bytes: parts.concat(),
            })
            .into_iter()
            .collect();
    }
    if let Some(bytes) = lines
        .iter()
        .map(|l| hex_line(l))
        .collect::<Option<Vec<_>>>()
    {
        return vec![Example {
            label: section.to_string(),
            bytes: bytes.concat(),
        }];
    }
    lines
        .iter()
        .filter_map(|line| {
            let (label, rest) = line.split_once(':')?;
            Some(Example {
                label: format!("{section}: {}", label.trim()),
                bytes: hex_line(rest)?,
            })
        })
        .collect()
}

fn step_byte(step: &Step<'_>) -> u8 {
    match step {
        Step::Init { .. } => 1,
        Step::Reply { .. } => 2,
        Step::Finish { .. } => 3,
        Step::Cookie { .. } => 4,
        Step::Fail => 5,
    }
}

fn status_byte(status: Status) -> u8 {
    match status {
        Status::Waiting => 1,
        Status::PairedFirst => 2,
        Status::PairedSecond => 3,
        Status::Taken => 4,
        Status::Busy => 5,
    }
}

/// What dgram's own decoders read in `bytes`, under the dissector's field
/// names. Kinds 14 and 15 (`dgram mtu`) are read by PROTOCOL.md section
/// 15's layout.
fn expected(bytes: &[u8]) -> BTreeMap<&'static str, String> {
    let mut want = BTreeMap::new();
    want.insert("dgram.kind", bytes[2].to_string());
    want.insert("dgram.version", bytes[1].to_string());
    want.insert("udp.length", (8 + bytes.len()).to_string());
    let session = |s: SessionId| s.to_string();
    match bytes[2] {
        1..=4 => match envelope::decode(bytes) {
            Decoded::Envelope(Envelope::Message(Message {
                session: s,
                seq,
                attempt,
                name,
                payload,
            })) => {
                want.insert("dgram.session", session(s));
                want.insert("dgram.seq", seq.to_string());
                want.insert("dgram.try", attempt.to_string());
                if !name.is_empty() {
                    want.insert("dgram.name", name);
                }
                if !payload.is_empty() {
                    want.insert("dgram.payload", hex(&payload));
                    if let Ok(text) = String::from_utf8(payload) {
                        want.insert("dgram.text", text);
                    }
                }
            }
            Decoded::Envelope(Envelope::Receipt(Ack {
                session: s,
                seq,
                attempt,
            })) => {
                want.insert("dgram.session", session(s));
                want.insert("dgram.seq", seq.to_string());
                want.insert("dgram.try", attempt.to_string());
            }
            Decoded::Envelope(Envelope::Hello(p) | Envelope::Bye(p)) => {
                want.insert("dgram.session", session(p.session));
                if !p.name.is_empty() {
                    want.insert("dgram.name", p.name.clone());
                }
                // The tokens, when the hello carries them (an older
                // dgram's ends after the name: dgram reads zeros).
                if bytes.len() >= envelope::encode_presence(&p, false).len() {
                    want.insert("dgram.challenge", hex(&p.challenge));
                    want.insert("dgram.answer", hex(&p.answer));
                }
            }
            other => panic!("dgram does not decode {}: {other:?}", hex(bytes)),
        },
        5 => {
            let n = bytes.len() - dgram::proto::seal::OVERHEAD;
            want.insert("dgram.prefix", hex(&bytes[3..19]));
            want.insert(
                "dgram.counter",
                u64::from_be_bytes(bytes[19..27].try_into().unwrap()).to_string(),
            );
            want.insert("dgram.ciphertext_len", n.to_string());
        }
        6 => {
            let handshake = wire::decode(bytes)
                .unwrap_or_else(|e| panic!("dgram does not decode {}: {e:?}", hex(bytes)));
            want.insert("dgram.step", step_byte(&handshake.step).to_string());
            want.insert("dgram.method", (handshake.method as u8).to_string());
            want.insert("dgram.sender", session(handshake.sender));
            want.insert("dgram.receiver", session(handshake.receiver));
            let (cookie, spake, noise) = match handshake.step {
                Step::Init {
                    cookie,
                    spake,
                    noise,
                } => (Some(cookie), spake, noise),
                Step::Reply { spake, noise } => (None, spake, Some(noise)),
                Step::Finish { noise } => (None, None, Some(noise)),
                Step::Cookie { cookie } => (Some(cookie), None, None),
                Step::Fail => (None, None, None),
            };
            if let Some(cookie) = cookie {
                want.insert("dgram.cookie", hex(&cookie));
            }
            if let Some(spake) = spake {
                want.insert("dgram.spake2", hex(spake));
            }
            if let Some(noise) = noise {
                want.insert("dgram.noise", hex(noise));
            }
        }
        7 => {
            let secured = wire::split_secured(bytes)
                .unwrap_or_else(|| panic!("dgram does not split {}", hex(bytes)));
            want.insert("dgram.session_id", session(secured.sender));
            want.insert("dgram.epoch", secured.epoch.to_string());
            want.insert("dgram.counter", secured.counter.to_string());
            want.insert(
                "dgram.ciphertext_len",
                (secured.sealed.len() - wire::TAG_LEN).to_string(),
            );
        }
        8 | 9 => match wire::decode_path(bytes) {
            Some(PathCheck::Challenge { token, seen }) => {
                want.insert("dgram.token", hex(&token));
                let field = match seen {
                    SocketAddr::V4(_) => "dgram.seen.ipv4",
                    SocketAddr::V6(_) => "dgram.seen.ipv6",
                };
                want.insert(field, seen.ip().to_string());
                want.insert("dgram.seen.port", seen.port().to_string());
            }
            Some(PathCheck::Response { token }) => {
                want.insert("dgram.token", hex(&token));
            }
            None => panic!("dgram does not decode the path check {}", hex(bytes)),
        },
        10 => {
            let register = rendezvous::decode_register(bytes)
                .unwrap_or_else(|e| panic!("dgram does not decode {}: {e:?}", hex(bytes)));
            want.insert("dgram.number", register.number.to_string());
            want.insert("dgram.registrant", hex(&register.session));
            want.insert("dgram.count", register.candidates.len().to_string());
            if !register.candidates.is_empty() {
                want.insert("dgram.candidate", candidates(&register.candidates));
            }
        }
        11 => {
            let answer = rendezvous::decode_answer(bytes)
                .unwrap_or_else(|| panic!("dgram does not decode {}", hex(bytes)));
            want.insert("dgram.number", answer.number.to_string());
            want.insert("dgram.status", status_byte(answer.status).to_string());
            want.insert("dgram.count", answer.candidates.len().to_string());
            if !answer.candidates.is_empty() {
                want.insert("dgram.candidate", candidates(&answer.candidates));
            }
        }
        12 | 13 => {
            let probe = traverse::decode_probe(bytes)
                .unwrap_or_else(|| panic!("dgram does not decode {}", hex(bytes)));
            want.insert("dgram.number", probe.number.to_string());
            want.insert("dgram.flags", format!("0x{:02x}", probe.flags));
            want.insert("dgram.token", hex(&probe.token));
        }
        14 | 15 => {
            let probe = mtu::parse(bytes)
                .unwrap_or_else(|e| panic!("dgram does not decode {}: {e}", hex(bytes)));
            let direction = match probe.direction {
                mtu::Direction::Forward => 1,
                mtu::Direction::Reverse => 2,
            };
            want.insert("dgram.direction", direction.to_string());
            want.insert("dgram.token", hex(&probe.token));
            want.insert("dgram.size", probe.size.to_string());
        }
        other => panic!("no worked example can have kind {other}"),
    }
    want
}

fn candidates(list: &[SocketAddr]) -> String {
    list.iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join("|")
}

/// Checks that `row` holds every value `want` names, and no malformed
/// mark but for kinds 8 and 9: they exist only inside a secured datagram,
/// and dgram calls one on the wire malformed ("unknown kind 8").
fn check_row(label: &str, bytes: &[u8], row: &Row) {
    let want = expected(bytes);
    for (field, value) in &want {
        assert_eq!(
            row.get(*field),
            Some(value),
            "{label}: {field} of {}\nrow: {row:#?}",
            hex(bytes)
        );
    }
    if matches!(bytes[2], 8 | 9) {
        let message = row.get("_ws.expert.message").cloned().unwrap_or_default();
        assert!(
            row.contains_key("dgram.malformed") && message.contains(&chat_reason(bytes)),
            "{label} on the wire is malformed: {row:#?}"
        );
    } else {
        assert_eq!(
            row.get("dgram.malformed"),
            None,
            "{label} is valid: {row:#?}"
        );
    }
    assert_eq!(
        row.get("dgram.encrypted").is_some(),
        matches!(bytes[2], 5 | 7),
        "{label}: kinds 5 and 7 say their inside needs keys: {row:#?}"
    );
}

/// Every worked example of PROTOCOL.md that is a datagram (sections 3,
/// 10.9, 12.7, 14.5 and, once it is there, 15.5), read out of the file
/// itself, decodes in tshark field by field to the values dgram's own
/// decoders read in it.
#[test]
fn the_worked_examples_decode_as_dgram_reads_them() {
    let examples = worked_examples();
    let kinds: BTreeSet<u8> = examples.iter().map(|e| e.bytes[2]).collect();
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md"))
            .unwrap();
    let mut want = vec![1, 2, 6, 7, 8, 9, 10, 11, 12, 13];
    // The MTU probes' section (15) comes with `dgram mtu`.
    if spec.contains("Probe (kind 14) and answer (kind 15)") {
        want.extend([14, 15]);
    }
    for kind in want {
        assert!(
            kinds.contains(&kind),
            "PROTOCOL.md's examples read here lack kind {kind}: {:?}",
            examples.iter().map(|e| &e.label).collect::<Vec<_>>()
        );
    }
    let datagrams: Vec<Vec<u8>> = examples.iter().map(|e| e.bytes.clone()).collect();
    let rows = dissect("examples", &datagrams);
    for (example, row) in examples.iter().zip(&rows) {
        check_row(&example.label, &example.bytes, row);
    }
}

/// Datagrams of the kinds PROTOCOL.md gives no worked example of, made by
/// dgram's own encoders (hello and bye with and without tokens, a sealed
/// envelope, every handshake step of both methods, an IPv6 path
/// challenge, a registration with candidates of both families, a probe
/// with every flag, a message whose payload is not UTF-8, a long varint),
/// decode in tshark to what dgram's decoders read in them.
#[test]
fn every_kind_dgram_makes_decodes_as_dgram_reads_it() {
    let datagrams = made_datagrams();
    let rows = dissect("made", &datagrams);
    for (bytes, row) in datagrams.iter().zip(&rows) {
        check_row("made by dgram", bytes, row);
    }
}

/// Datagrams of every kind made by dgram's own encoders.
fn made_datagrams() -> Vec<Vec<u8>> {
    let alice = SessionId([0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]);
    let bob = SessionId([0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8]);
    let presence = |challenge: [u8; 8], answer: [u8; 8]| Presence {
        session: alice,
        name: "ännä".into(),
        challenge,
        answer,
    };
    let mut sealer = Sealer::with_prefix(&Key::from_bytes([7; 32]), [0x5a; 16]);
    let message = envelope::encode_message(&Message {
        session: alice,
        seq: envelope::MAX_SEQ,
        attempt: 255,
        name: String::new(),
        payload: vec![0xff, 0xfe, 0x00],
    });
    let spake = [0x53; wire::SPAKE_LEN];
    let noise = [0x42; wire::NOISE_LEN];
    let handshake = |method, step| {
        wire::encode(&Handshake {
            method,
            sender: alice,
            receiver: bob,
            step,
        })
    };
    let mut datagrams = vec![
        envelope::encode_presence(&presence([1; 8], [0; 8]), false),
        envelope::encode_presence(&presence([0; 8], [2; 8]), true),
        // A hello of an older dgram: it ends after the name.
        envelope::encode_presence(&presence([0; 8], [0; 8]), false)[..3 + 8 + 1 + 6].to_vec(),
        message.clone(),
        sealer.seal(&message),
        sealer.seal(&envelope::encode_receipt(&Ack {
            session: bob,
            seq: 128,
            attempt: 1,
        })),
        wire::encode_path(&PathCheck::Challenge {
            token: [9; 8],
            seen: "[2001:db8::7]:61000".parse().unwrap(),
        }),
        rendezvous::encode_register(
            999,
            [3; 8],
            &[
                "192.0.2.1:1".parse().unwrap(),
                "[2001:db8::1]:65535".parse().unwrap(),
                "198.51.100.9:9000".parse().unwrap(),
                "[fd00::9]:9000".parse().unwrap(),
            ],
        )
        .unwrap(),
        rendezvous::encode_answer(1, Status::Busy, &[]),
        traverse::encode_probe(&Probe {
            kind: traverse::KIND_ACK,
            number: 512,
            flags: traverse::FLAG_NAT | traverse::FLAG_RELAYED | traverse::FLAG_NOMINATE,
            token: [0xee; 8],
        })
        .to_vec(),
    ];
    for method in [Method::KeyFile, Method::Code] {
        let code = method == Method::Code;
        datagrams.push(handshake(
            method,
            Step::Init {
                cookie: [0xc0; wire::COOKIE_LEN],
                spake: code.then_some(&spake[..]),
                noise: (!code).then_some(&noise[..]),
            },
        ));
        datagrams.push(handshake(
            method,
            Step::Reply {
                spake: code.then_some(&spake[..]),
                noise: &noise,
            },
        ));
        datagrams.push(handshake(
            method,
            Step::Cookie {
                cookie: [0xc1; wire::COOKIE_LEN],
            },
        ));
    }
    datagrams.push(handshake(Method::Code, Step::Finish { noise: &noise }));
    datagrams.push(handshake(Method::Code, Step::Fail));
    // `dgram mtu`'s probes and the listener's answers to them.
    for probe in [
        mtu::forward_probe([0x14; 8], 1372),
        mtu::reverse_probe([0x15; 8], 1200),
    ] {
        let answer = mtu::answer(&mtu::parse(&probe).unwrap()).unwrap();
        datagrams.extend([probe, answer]);
    }
    datagrams
}

/// A xorshift generator: the same "random" datagrams on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A byte, often one at a boundary of some field.
    fn byte(&mut self) -> u8 {
        const EDGES: [u8; 10] = [0, 1, 2, 4, 5, 6, 0x7f, 0x80, 0xff, 0xf5];
        match self.below(2) {
            0 => EDGES[self.below(EDGES.len())],
            _ => self.next() as u8,
        }
    }
}

/// What dgram's own decoders say of a datagram that starts with `0xF5`
/// (a path check, kind 8 or 9, by a chat's: on the wire it is malformed).
#[derive(Debug)]
enum Verdict {
    Valid,
    /// Malformed, with dgram's words when its decoder has them.
    Malformed(Option<String>),
}

fn verdict(bytes: &[u8]) -> Verdict {
    let valid = |ok: bool| match ok {
        true => Verdict::Valid,
        false => Verdict::Malformed(None),
    };
    if bytes.len() < 3
        || bytes[1] != 1
        || matches!(bytes[2], 1..=4 | 8 | 9)
        || bytes[2] > 15
        || bytes[2] == 0
    {
        return match envelope::decode(bytes) {
            Decoded::Envelope(_) => Verdict::Valid,
            Decoded::Malformed(why) => Verdict::Malformed(Some(why.to_string())),
            Decoded::Plain => panic!("{} starts with 0xF5", hex(bytes)),
        };
    }
    match bytes[2] {
        5 => valid(bytes.len() >= dgram::proto::seal::OVERHEAD),
        6 => match wire::decode(bytes) {
            Ok(_) => Verdict::Valid,
            Err(wire::BadHandshake::NotHandshake) => Verdict::Malformed(None),
            Err(why) => Verdict::Malformed(Some(why.describe().to_string())),
        },
        7 => valid(wire::split_secured(bytes).is_some()),
        10 => match rendezvous::decode_register(bytes) {
            Ok(_) => Verdict::Valid,
            Err(why) => Verdict::Malformed(Some(why.as_str().to_string())),
        },
        11 => valid(rendezvous::decode_answer(bytes).is_some()),
        12 | 13 => valid(traverse::decode_probe(bytes).is_some()),
        _ => match mtu::parse(bytes) {
            Ok(_) => Verdict::Valid,
            Err(why) => Verdict::Malformed(Some(why.to_string())),
        },
    }
}

/// Thousands of datagrams that start with `0xF5`: dgram's own datagrams
/// and PROTOCOL.md's examples cut, lengthened and with bytes changed, and
/// random bodies after every header. The dissector never fails (no Lua
/// error), and calls each one valid or malformed as dgram's decoders do,
/// with dgram's reason where dgram words one.
#[test]
fn the_dissector_judges_mangled_datagrams_as_dgram_does() {
    let mut seeds = made_datagrams();
    seeds.extend(worked_examples().into_iter().map(|e| e.bytes));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut datagrams = Vec::new();
    for _ in 0..3000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        match rng.below(5) {
            0 => bytes.truncate(1 + rng.below(bytes.len())),
            1 => (0..1 + rng.below(20)).for_each(|_| bytes.push(rng.byte())),
            2 | 3 => {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.byte();
                }
            }
            _ => {
                let kind = rng.below(17) as u8;
                bytes = vec![0xF5, 1, kind];
                let len = [0, 5, 11, 14, 18, 21, 36, 43, 77, 93, 110, 112][rng.below(12)];
                (0..len).for_each(|_| bytes.push(rng.byte()));
            }
        }
        if bytes.first() == Some(&0xF5) {
            datagrams.push(bytes);
        }
    }
    let rows = dissect("mangled", &datagrams);
    let (mut valid, mut malformed) = (0, 0);
    for (bytes, row) in datagrams.iter().zip(&rows) {
        let message = row.get("_ws.expert.message").cloned().unwrap_or_default();
        assert!(!message.contains("Lua Error"), "{}: {row:#?}", hex(bytes));
        let flagged = row.get("dgram.malformed").is_some();
        match verdict(bytes) {
            Verdict::Valid => {
                valid += 1;
                assert!(!flagged, "dgram takes {} as valid: {row:#?}", hex(bytes));
            }
            Verdict::Malformed(reason) => {
                malformed += 1;
                assert!(flagged, "dgram calls {} malformed: {row:#?}", hex(bytes));
                if let Some(reason) = reason {
                    assert!(
                        message.contains(&reason),
                        "{}: dgram's reason {reason:?} in {row:#?}",
                        hex(bytes)
                    );
                }
            }
        }
    }
    // Both sides of the line were tried, not only one.
    assert!(
        valid > 300 && malformed > 300,
        "{valid} valid, {malformed} malformed"
    );
}

/// A malformed datagram for the test below, with the reason the
/// dissector must give (a part of its expert message).
struct Bad {
    bytes: Vec<u8>,
    reason: String,
}

/// dgram's own reason for a malformed chat envelope (kinds 1 to 4, a bad
/// header): what `dgram listen` shows.
fn chat_reason(bytes: &[u8]) -> String {
    match envelope::decode(bytes) {
        Decoded::Malformed(why) => why.to_string(),
        other => panic!("dgram takes {} for {other:?}", hex(bytes)),
    }
}

/// Malformed envelopes of every kind are flagged (`dgram.malformed`, an
/// expert item of the Malformed group) with dgram's own reason where
/// dgram gives one: `envelope::decode`'s for the header and kinds 1 to 4,
/// the handshake decoder's, the rendezvous's; and PROTOCOL.md's rule for
/// the others.
#[test]
fn malformed_envelopes_are_flagged_with_dgrams_reasons() {
    let session = SessionId([1, 2, 3, 4, 5, 6, 7, 8]);
    let message = envelope::encode_message(&Message {
        session,
        seq: 300,
        attempt: 1,
        name: "al".into(),
        payload: b"hi".to_vec(),
    });
    let mut chat: Vec<Vec<u8>> = vec![
        vec![0xF5],
        vec![0xF5, 1],
        vec![0xF5, 2, 1],
        vec![0xF5, 1, 0],
        vec![0xF5, 1, 16],
        vec![0xF5, 1, 255],
    ];
    // A message cut anywhere before its payload ends.
    chat.extend((4..message.len()).map(|cut| message[..cut].to_vec()));
    let with = |at: usize, replace: usize, bytes: &[u8]| {
        let mut out = message.clone();
        out.splice(at..at + replace, bytes.iter().copied());
        out
    };
    // seq at 11..13: zero, above 2^53 − 1, a varint of 11 bytes, a tenth
    // byte above 1; try 0; a name that is not UTF-8; a 65-byte name.
    chat.push(with(11, 2, &[0]));
    chat.push(with(
        11,
        2,
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
    ));
    chat.push(with(11, 2, &[0xff; 11]));
    chat.push(with(
        11,
        2,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
    ));
    chat.push(with(13, 1, &[0]));
    chat.push(with(15, 2, &[0xc3, 0x28]));
    let mut long = vec![65];
    long.extend_from_slice(&[b'x'; 65]);
    chat.push(with(14, 3, &long));
    let hello = envelope::encode_presence(
        &Presence {
            session,
            name: "x".repeat(65),
            challenge: [0; 8],
            answer: [0; 8],
        },
        false,
    );
    chat.push(hello);
    let mut bad: Vec<Bad> = chat
        .into_iter()
        .map(|bytes| Bad {
            reason: chat_reason(&bytes),
            bytes,
        })
        .collect();

    let init = wire::encode(&Handshake {
        method: Method::Code,
        sender: session,
        receiver: SessionId([0; 8]),
        step: Step::Init {
            cookie: [0; 16],
            spake: Some(&[0x53; wire::SPAKE_LEN]),
            noise: None,
        },
    });
    let mut padded = init.clone();
    *padded.last_mut().unwrap() = 1;
    let mut key_file_finish = init[..wire::HEADER_LEN + wire::NOISE_LEN].to_vec();
    key_file_finish[3..5].copy_from_slice(&[3, 1]);
    let mut step_six = init.clone();
    step_six[3] = 6;
    let mut method_three = init.clone();
    method_three[4] = 3;
    for bytes in [
        init[..init.len() - 1].to_vec(),
        cat(&init, &[0]),
        init[..4].to_vec(),
        padded,
        key_file_finish,
        step_six,
        method_three,
    ] {
        let reason = match wire::decode(&bytes) {
            Err(wire::BadHandshake::NotHandshake) => {
                "a handshake datagram of the wrong length".to_string()
            }
            Err(why) => why.describe().to_string(),
            Ok(_) => panic!("dgram takes {} for a handshake", hex(&bytes)),
        };
        bad.push(Bad { bytes, reason });
    }

    let register =
        rendezvous::encode_register(7, [1; 8], &["10.0.0.5:50000".parse().unwrap()]).unwrap();
    let edit = |at: usize, byte: u8| {
        let mut out = register.clone();
        out[at] = byte;
        out
    };
    for bytes in [
        register[..111].to_vec(),
        cat(&register, &[0]),
        edit(4, 0),
        cat(&[0xF5, 1, 10, 0x03, 0xe8], &register[5..]),
        edit(13, 5),
        edit(14, 5),
        cat(&cat(&register[..15], &[0, 0]), &register[17..]),
        edit(21, 0xff),
        edit(111, 1),
    ] {
        let reason = rendezvous::decode_register(&bytes)
            .expect_err("malformed registration")
            .as_str()
            .to_string();
        bad.push(Bad { bytes, reason });
    }

    let probe = traverse::encode_probe(&Probe {
        kind: traverse::KIND_PROBE,
        number: 7,
        flags: traverse::FLAG_NAT,
        token: [1; 8],
    });
    for bytes in [
        probe[..13].to_vec(),
        cat(&probe, &[0]),
        cat(&cat(&probe[..5], &[0x08]), &probe[6..]),
    ] {
        assert_eq!(traverse::decode_probe(&bytes), None, "{}", hex(&bytes));
        bad.push(Bad {
            bytes,
            reason: "not a path probe".into(),
        });
    }
    let response = wire::encode_path(&PathCheck::Response { token: [1; 8] });
    for bytes in [response[..10].to_vec(), cat(&response, &[0])] {
        // A chat's reason ("unknown kind 9"), and that the body does not
        // decode as a path response either.
        assert_eq!(wire::decode_path(&bytes), None, "{}", hex(&bytes));
        bad.push(Bad {
            reason: format!("{}: a path response", chat_reason(&bytes)),
            bytes: bytes.clone(),
        });
        bad.push(Bad {
            reason: "its body does not decode either".into(),
            bytes,
        });
    }
    // Secured and sealed datagrams too short for their header and tag:
    // dgram cannot split them (PROTOCOL.md 10.6, 10.10).
    let secured = vec![
        0xF5, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    assert!(wire::split_secured(&cat(&secured, &[0; 15])).is_none());
    bad.push(Bad {
        bytes: cat(&secured, &[0; 15]),
        reason: "shorter than its header and tag".into(),
    });
    bad.push(Bad {
        bytes: cat(&[0xF5, 1, 5], &[0; 39]),
        reason: "a sealed envelope that does not decode".into(),
    });
    // An answer with a status PROTOCOL.md 12.2 does not define, and one
    // with a byte after its candidates.
    let answer = rendezvous::encode_answer(7, Status::Waiting, &[]);
    for bytes in [edit_at(&answer, 5, 9), cat(&answer, &[0])] {
        assert_eq!(rendezvous::decode_answer(&bytes), None, "{}", hex(&bytes));
        bad.push(Bad {
            reason: if bytes.len() == answer.len() {
                "unknown status 9".into()
            } else {
                "body does not decode".into()
            },
            bytes,
        });
    }
    // MTU probes that PROTOCOL.md 15.2 calls malformed, and answers that
    // do not have the length their direction gives them, with the words
    // of `dgram mtu` (its parser's).
    let probe = |kind: u8, direction: u8, size: u16, len: usize| {
        let mut out = vec![0xF5, 1, kind, direction, 1, 2, 3, 4, 5, 6, 7, 8];
        out.extend_from_slice(&size.to_be_bytes());
        out.resize(len, 0);
        out
    };
    for bytes in [
        probe(14, 1, 24, 24)[..13].to_vec(),
        probe(14, 3, 24, 24),
        probe(14, 1, 25, 24),
        probe(14, 2, 13, 24),
        probe(14, 2, 25, 24),
        edit_at(&probe(14, 1, 24, 24), 23, 1),
        probe(15, 1, 24, 15),
        probe(15, 1, 13, 14),
        probe(15, 2, 16, 17),
    ] {
        let reason = mtu::parse(&bytes)
            .expect_err("a malformed MTU probe")
            .to_string();
        bad.push(Bad { bytes, reason });
    }

    let datagrams: Vec<Vec<u8>> = bad.iter().map(|b| b.bytes.clone()).collect();
    let rows = dissect("malformed", &datagrams);
    for (bad, row) in bad.iter().zip(&rows) {
        assert_eq!(
            row.get("dgram.malformed").map(String::as_str),
            Some("1"),
            "{} is flagged malformed: {row:#?}",
            hex(&bad.bytes)
        );
        let message = row.get("_ws.expert.message").cloned().unwrap_or_default();
        assert!(
            message.contains(&bad.reason),
            "{}: the reason {:?} in {message:?}",
            hex(&bad.bytes),
            bad.reason
        );
    }
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fn edit_at(bytes: &[u8], at: usize, byte: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = byte;
    out
}

/// An envelope of which the capture kept only part (a listener's
/// `--max-size` under `--pcap`, or a snap length) is flagged as cut short,
/// as dgram calls an envelope cut short by its buffer malformed, and none
/// of its fields past the header is read; a whole one in the same file
/// is not.
#[test]
fn an_envelope_cut_short_in_the_capture_is_flagged() {
    let message = envelope::encode_message(&Message {
        session: SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
        seq: 1,
        attempt: 1,
        name: String::new(),
        payload: vec![b'x'; 40],
    });
    let short = message[..20].to_vec();
    let path = temp_path("cut.pcap");
    write_pcap(
        &path,
        &[message.clone(), short.clone(), vec![0xF5, 1]],
        (40_000, 40_001),
        Some(20 + 8 + 20),
    );
    let rows = tshark(&path);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let reasons = [
        format!("cut short: 20 of its {} bytes captured", message.len()),
        chat_reason(&short),
        chat_reason(&[0xF5, 1]),
    ];
    for (row, reason) in rows.iter().zip(&reasons) {
        assert_eq!(
            row.get("dgram.malformed").map(String::as_str),
            Some("1"),
            "{row:#?}"
        );
        let message = &row["_ws.expert.message"];
        assert!(message.contains(reason.as_str()), "{reason:?} in {row:#?}");
    }
    assert_eq!(rows[0].get("dgram.seq"), None, "{:#?}", rows[0]);
}

/// docs/wireshark.md's installation works: with the plugin copied into
/// `~/.local/lib/wireshark/plugins/` of a fresh home, tshark (run by
/// whoever runs the suite: root in CI) lists it among its plugins and
/// decodes an envelope with no `-X`.
#[test]
fn the_personal_plugin_folder_installs_it() {
    need("tshark");
    let home = temp_path("home");
    let plugins = home.join(".local/lib/wireshark/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin(), plugins.join("dgram.lua")).unwrap();
    let message = worked_examples().remove(0).bytes;
    let pcap = home.join("one.pcap");
    write_pcap(
        &pcap,
        std::slice::from_ref(&message),
        (40_000, 40_001),
        None,
    );
    let tshark = |args: &[&str]| {
        let mut command = std::process::Command::new("tshark");
        command.env("HOME", &home).args(args);
        let mut proc = Proc::start(command);
        assert!(proc.finish_within(DEADLINE).success(), "{}", proc.dump());
        proc.stdout()
    };
    let listed = tshark(&["-G", "plugins"]);
    assert!(
        listed.lines().any(|line| line.starts_with("dgram.lua")),
        "{listed}"
    );
    let seq = tshark(&[
        "-n",
        "-r",
        pcap.to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "dgram.seq",
    ]);
    assert_eq!(seq.trim(), expected(&message)["dgram.seq"], "{seq}");
}

/// What is not an envelope is not claimed: text (what `dgram send` and
/// nc send), the empty datagram, and a STUN Binding request (PROTOCOL.md
/// 12.7's, which shares a rendezvous's port) that Wireshark's own STUN
/// dissector takes.
#[test]
fn plain_datagrams_and_stun_are_left_alone() {
    let stun = worked_stun_request();
    let datagrams = vec![
        b"hello\n".to_vec(),
        Vec::new(),
        "héllo".as_bytes().to_vec(),
        stun,
    ];
    let rows = dissect("plain", &datagrams);
    for (bytes, row) in datagrams.iter().zip(&rows) {
        assert_eq!(row.get("dgram.kind"), None, "{}: {row:#?}", hex(bytes));
        let protocols = &row["frame.protocols"];
        assert!(!protocols.contains("dgram"), "{}: {protocols}", hex(bytes));
    }
    assert!(
        rows[3]["frame.protocols"].ends_with(":stun"),
        "{:#?}",
        rows[3]
    );
}

/// An envelope relayed by a TURN server (PROTOCOL.md 13) in a
/// ChannelData message from port 3478 (TURN's) is handed by Wireshark's
/// STUN dissector to this one, and decodes as dgram reads it.
#[test]
fn an_envelope_in_turn_channel_data_decodes() {
    let message = envelope::encode_message(&Message {
        session: SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
        seq: 5,
        attempt: 2,
        name: "bob".into(),
        payload: b"through the relay".to_vec(),
    });
    // Channel 0x4000, the length, the datagram, zeros to 4 bytes (RFC
    // 8656 section 12.4).
    let mut channel_data = vec![0x40, 0x00];
    channel_data.extend_from_slice(&(message.len() as u16).to_be_bytes());
    channel_data.extend_from_slice(&message);
    channel_data.resize(channel_data.len().next_multiple_of(4), 0);
    let rows = dissect_between("channel-data", &[channel_data], (3478, 40_000));
    let mut want = expected(&message);
    want.remove("udp.length");
    for (field, value) in &want {
        assert_eq!(rows[0].get(*field), Some(value), "{field}: {:#?}", rows[0]);
    }
    assert!(
        rows[0]["frame.protocols"].ends_with(":stun:dgram"),
        "{:#?}",
        rows[0]
    );
}

/// The STUN Binding request of PROTOCOL.md 12.7, read out of the file.
fn worked_stun_request() -> Vec<u8> {
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md"))
            .unwrap();
    let start = spec
        .find("a STUN Binding request padded to 40 bytes:")
        .expect("PROTOCOL.md 12.7's STUN example");
    spec[start..]
        .lines()
        .skip(1)
        .map_while(hex_line)
        .flatten()
        .collect()
}

/// A capture of loopback traffic to or from `port`, made by dumpcap
/// while it runs.
struct Capture {
    dumpcap: Proc,
    path: PathBuf,
    /// The closed port the sentinels went to (their rows are left out).
    sentinel: u16,
}

impl Capture {
    /// Starts dumpcap on `lo` for UDP `port` and waits until it has
    /// captured a datagram: dumpcap says "Capturing on" before its filter
    /// sees packets, so sentinel datagrams go to a closed port, in the
    /// filter too, until dumpcap counts one ("Packets: N").
    fn start(name: &str, port: u16) -> Capture {
        need("dumpcap");
        let path = temp_path(&format!("{name}.pcapng"));
        let sentinel = closed_port();
        let dumpcap = Proc::spawn(
            "dumpcap",
            &[
                "-i",
                "lo",
                "-f",
                &format!("udp port {port} or udp dst port {}", sentinel.port()),
                "-w",
                path.to_str().unwrap(),
            ],
        );
        let socket = UdpSocket::bind(any_local_addr()).unwrap();
        let mut last = Instant::now() - Duration::from_secs(1);
        wait_for(
            "dumpcap to capture a sentinel",
            || dumpcap.dump(),
            || {
                if last.elapsed() > Duration::from_millis(50) {
                    // A refusal (ICMP) may come back: nothing listens there.
                    let _ = socket.send_to(b"sentinel", sentinel);
                    last = Instant::now();
                }
                dumpcap.stderr().contains("Packets: ").then_some(())
            },
        );
        Capture {
            dumpcap,
            path,
            sentinel: sentinel.port(),
        }
    }

    /// Stops the capture and returns tshark's rows, one per datagram,
    /// without the sentinels.
    fn finish(mut self) -> Vec<Row> {
        self.dumpcap.signal(Signal::SIGINT);
        let status = self.dumpcap.finish();
        assert!(status.success(), "{}", self.dumpcap.dump());
        tshark(&self.path)
            .into_iter()
            .filter(|row| row["udp.dstport"] != self.sentinel.to_string())
            .collect()
    }
}

/// A chat's port on 127.0.0.1, from its `listening` event.
fn port_of(event: &Value) -> u16 {
    event["local"]
        .as_str()
        .unwrap()
        .parse::<SocketAddr>()
        .unwrap()
        .port()
}

/// The rows sent from `port`.
fn from(rows: &[Row], port: u16) -> Vec<&Row> {
    rows.iter()
        .filter(|row| row["udp.srcport"] == port.to_string())
        .collect()
}

/// Sorted, so that two lists compare whatever their order.
fn sorted<T: Ord>(mut list: Vec<T>) -> Vec<T> {
    list.sort();
    list
}

/// A finished chat with a listener: both processes (exited) and where
/// they were.
struct ChatRun {
    listen: Proc,
    chat: Proc,
    listen_port: u16,
    chat_port: u16,
}

/// The lines the plain chat sends.
const PLAIN_LINES: [&str; 3] = ["hi", "ünïcödé", "a \"quoted\" line"];

/// A plain chat (`dgram chat --json`, with `chat_extra`) sends
/// [`PLAIN_LINES`] to `listen` and waits for their receipts, then a plain
/// `dgram send` datagram goes to the listener, which is stopped.
fn plain_chat(listen: (Proc, SocketAddr), chat_extra: &[&str]) -> ChatRun {
    let (mut listen, addr) = listen;
    let peer = addr.to_string();
    let mut args = vec!["chat", "--peer", &peer, "--json", "--no-history"];
    args.extend_from_slice(chat_extra);
    let mut chat = Proc::dgram(&args);
    let chat_port = port_of(&chat.expect("listening"));
    for line in PLAIN_LINES {
        chat.write_line(line);
    }
    for _ in PLAIN_LINES {
        let receipt = chat.next("receipt");
        assert_eq!(receipt["status"], "delivered", "{}", chat.dump());
    }
    chat.close_stdin();
    assert!(chat.finish().success(), "{}", chat.dump());
    let mut send = Proc::dgram(&["send", &peer, "plain text"]);
    assert!(send.finish().success(), "{}", send.dump());
    listen.wait_stdout_contains("plain text");
    stop(&mut listen);
    ChatRun {
        listen,
        chat,
        listen_port: addr.port(),
        chat_port,
    }
}

/// Checks a capture of [`plain_chat`] (`with_plain`: it holds the plain
/// datagram, as the listener's side does): every message decodes to the
/// session, seq, try, name and text the listener's `message` events
/// report and to the seq, try and length of the chat's `sent` events;
/// every receipt to the listener's `sent` receipts; the plain datagram is
/// left unclaimed.
fn check_plain_chat(run: &ChatRun, rows: &[Row], with_plain: bool) {
    let ChatRun {
        listen,
        chat,
        listen_port,
        chat_port,
    } = run;
    let envelopes: Vec<&Row> = rows
        .iter()
        .filter(|r| r.contains_key("dgram.kind"))
        .collect();
    let plain: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.contains_key("dgram.kind"))
        .collect();
    assert_eq!(plain.len(), usize::from(with_plain), "{rows:#?}");
    assert!(
        plain
            .iter()
            .all(|r| !r["frame.protocols"].contains("dgram")),
        "{rows:#?}"
    );
    assert!(
        envelopes.iter().all(|r| !r.contains_key("dgram.malformed")),
        "{rows:#?}"
    );

    let field = |row: &Row, name: &str| row.get(name).cloned().unwrap_or_default();
    let decoded_messages = sorted(
        from(rows, *chat_port)
            .into_iter()
            .map(|r| {
                assert_eq!(
                    field(r, "dgram.kind"),
                    "1",
                    "the chat sends messages: {r:#?}"
                );
                (
                    field(r, "dgram.session"),
                    field(r, "dgram.seq"),
                    field(r, "dgram.try"),
                    field(r, "dgram.name"),
                    field(r, "dgram.text"),
                )
            })
            .collect(),
    );
    let shown = sorted(
        listen
            .events("message")
            .iter()
            .map(|m| {
                (
                    m["session"].as_str().unwrap().to_string(),
                    m["seq"].to_string(),
                    m["try"].to_string(),
                    m["name"].as_str().unwrap_or_default().to_string(),
                    m["text"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    );
    assert_eq!(decoded_messages.len(), PLAIN_LINES.len(), "{rows:#?}");
    assert_eq!(decoded_messages, shown, "{}", listen.dump());

    let sent = |proc: &Proc| {
        sorted(
            proc.events("sent")
                .iter()
                .map(|s| {
                    (
                        s["seq"].to_string(),
                        s["try"].to_string(),
                        s["len"].as_u64().unwrap() + 8,
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    let decoded = |port: u16| {
        sorted(
            from(rows, port)
                .into_iter()
                .map(|r| {
                    (
                        field(r, "dgram.seq"),
                        field(r, "dgram.try"),
                        field(r, "udp.length").parse::<u64>().unwrap(),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(decoded(*chat_port), sent(chat), "{}", chat.dump());
    let receipts: Vec<&Row> = from(rows, *listen_port);
    assert!(
        receipts.iter().all(|r| field(r, "dgram.kind") == "2"),
        "the listener sends receipts: {rows:#?}"
    );
    assert_eq!(decoded(*listen_port), sent(listen), "{}", listen.dump());
}

/// A plain chat (`dgram chat --json`, no key) sends three lines to a
/// listener while dumpcap captures loopback (the kernel's view, apart
/// from dgram's own code), and a plain `dgram send` datagram goes to the
/// listener too. tshark with the dissector decodes every message to what
/// the listener's `message` events and the chat's `sent` events report,
/// every receipt to the listener's `sent` receipts, and leaves the plain
/// datagram unclaimed.
#[test]
fn a_captured_plain_chat_decodes_to_what_the_chat_reports() {
    let (listen, addr) = listener(&[]);
    let capture = Capture::start("plain-chat", addr.port());
    let run = plain_chat((listen, addr), &[]);
    check_plain_chat(&run, &capture.finish(), true);
}

/// A keyed chat (`--key-file`, with `chat_extra`) sends two lines to
/// `listen` (a keyed listener) and waits for their receipts; the listener
/// is stopped.
fn keyed_chat(listen: (Proc, SocketAddr), key: &str, chat_extra: &[&str]) -> ChatRun {
    let (mut listen, addr) = listen;
    let peer = addr.to_string();
    let mut args = vec![
        "chat",
        "--peer",
        &peer,
        "--key-file",
        key,
        "--json",
        "--no-history",
    ];
    args.extend_from_slice(chat_extra);
    let mut chat = Proc::dgram(&args);
    let chat_port = port_of(&chat.expect("listening"));
    for line in ["one", "two"] {
        chat.write_line(line);
    }
    for _ in 0..2 {
        let receipt = chat.next("receipt");
        assert_eq!(receipt["status"], "delivered", "{}", chat.dump());
    }
    chat.close_stdin();
    assert!(chat.finish().success(), "{}", chat.dump());
    stop(&mut listen);
    ChatRun {
        listen,
        chat,
        listen_port: addr.port(),
        chat_port,
    }
}

/// Checks a capture of [`keyed_chat`]: the handshake (init from the chat,
/// reply from the listener) decodes to the run sessions the two report in
/// `session_opened`, and every secured datagram to the session id both
/// report, with its length and sealed size as their `sent` events give
/// them, counters rising from 1 in each direction.
fn check_keyed_chat(run: &ChatRun, rows: &[Row]) {
    let ChatRun {
        listen,
        chat,
        listen_port,
        chat_port,
    } = run;
    assert!(
        rows.iter()
            .all(|r| r.contains_key("dgram.kind") && !r.contains_key("dgram.malformed")),
        "{rows:#?}"
    );
    let (opened, answered) = (
        chat.first_event("session_opened"),
        listen.first_event("session_opened"),
    );
    let field = |row: &Row, name: &str| row.get(name).cloned().unwrap_or_default();
    let handshakes = |port: u16| -> Vec<&Row> {
        from(rows, port)
            .into_iter()
            .filter(|r| field(r, "dgram.kind") == "6")
            .collect()
    };
    let (inits, replies) = (handshakes(*chat_port), handshakes(*listen_port));
    assert_eq!((inits.len(), replies.len()), (1, 1), "{rows:#?}");
    let (init, reply) = (inits[0], replies[0]);
    assert_eq!(field(init, "dgram.step"), "1");
    assert_eq!(field(init, "dgram.method"), "1");
    let peer_session = |event: &Value| event["peer_session"].as_str().unwrap().to_string();
    assert_eq!(field(init, "dgram.sender"), peer_session(&answered));
    assert_eq!(field(init, "dgram.receiver"), "0000000000000000");
    assert_eq!(field(reply, "dgram.step"), "2");
    assert_eq!(field(reply, "dgram.sender"), peer_session(&opened));
    assert_eq!(field(reply, "dgram.receiver"), field(init, "dgram.sender"));

    assert_eq!(opened["session_id"], answered["session_id"]);
    for (proc, port) in [(chat, *chat_port), (listen, *listen_port)] {
        let secured: Vec<&Row> = from(rows, port)
            .into_iter()
            .filter(|r| field(r, "dgram.kind") == "7")
            .collect();
        for row in &secured {
            assert_eq!(
                field(row, "dgram.session_id"),
                opened["session_id"].as_str().unwrap(),
                "{row:#?}"
            );
            assert_eq!(field(row, "dgram.epoch"), "0", "{row:#?}");
            let len: usize = field(row, "udp.length").parse().unwrap();
            assert_eq!(
                field(row, "dgram.ciphertext_len"),
                (len - 8 - wire::SECURED_OVERHEAD).to_string(),
                "{row:#?}"
            );
        }
        let counters: Vec<String> = secured.iter().map(|r| field(r, "dgram.counter")).collect();
        let rising: Vec<String> = (1..=secured.len()).map(|n| n.to_string()).collect();
        assert_eq!(counters, rising, "{rows:#?}");
        let lengths = sorted(
            from(rows, port)
                .into_iter()
                .map(|r| field(r, "udp.length").parse::<u64>().unwrap() - 8)
                .collect(),
        );
        let reported = sorted(
            proc.events("sent")
                .iter()
                .map(|s| s["len"].as_u64().unwrap())
                .collect(),
        );
        assert_eq!(lengths, reported, "{}\n{rows:#?}", proc.dump());
    }
}

/// A keyed chat (`--key-file`) with a keyed listener, captured by dumpcap
/// on loopback: see [`check_keyed_chat`].
#[test]
fn a_captured_keyed_chat_decodes_to_what_the_chat_reports() {
    let key = keygen("dissector-key");
    let (listen, addr) = listener(&["--key-file", key.to_str().unwrap()]);
    let capture = Capture::start("keyed-chat", addr.port());
    let run = keyed_chat((listen, addr), key.to_str().unwrap(), &[]);
    check_keyed_chat(&run, &capture.finish());
}

/// The rows of `rows` that are envelopes, without what differs between
/// two captures of the same datagrams (nothing here: the fields read are
/// the datagrams' own and their ports).
fn envelopes(rows: &[Row]) -> Vec<Row> {
    sorted(
        rows.iter()
            .filter(|r| r.contains_key("dgram.kind"))
            .cloned()
            .collect(),
    )
}

/// The plain chat recorded by dgram itself, `--pcap` on the listener and
/// on the chat: each file decodes as [`check_plain_chat`] requires (the
/// chat's holds no plain datagram: that one was not the chat's), and the
/// two hold the same envelopes, decoded the same.
#[test]
fn a_plain_chat_recorded_with_pcap_decodes_to_what_it_reports() {
    let (heard, said) = (temp_path("listen.pcap"), temp_path("chat.pcap"));
    let listen = listener(&["--pcap", heard.to_str().unwrap()]);
    let run = plain_chat(listen, &["--pcap", said.to_str().unwrap()]);
    let (heard, said) = (tshark(&heard), tshark(&said));
    check_plain_chat(&run, &heard, true);
    check_plain_chat(&run, &said, false);
    assert_eq!(envelopes(&heard), envelopes(&said));
}

/// The keyed chat recorded by dgram itself, `--pcap` on the keyed
/// listener and on the chat: each file decodes as [`check_keyed_chat`]
/// requires, and the two hold the same datagrams, decoded the same.
#[test]
fn a_keyed_chat_recorded_with_pcap_decodes_to_what_it_reports() {
    let key = keygen("dissector-pcap-key");
    let key = key.to_str().unwrap();
    let (heard, said) = (temp_path("keyed-listen.pcap"), temp_path("keyed-chat.pcap"));
    let listen = listener(&["--key-file", key, "--pcap", heard.to_str().unwrap()]);
    let run = keyed_chat(listen, key, &["--pcap", said.to_str().unwrap()]);
    let (heard, said) = (tshark(&heard), tshark(&said));
    check_keyed_chat(&run, &heard);
    check_keyed_chat(&run, &said);
    assert_eq!(envelopes(&heard), envelopes(&said));
}

/// A listener with `--max-size 16` and `--pcap` records a 37-byte
/// message as the 16 bytes it received, with its true length (where the
/// platform tells it): the dissector flags it cut short, as the
/// listener's own `malformed` event does ("cut short by --max-size"), and
/// reads none of its fields. The portable build's record holds the 16
/// bytes as a whole datagram, flagged for what they are.
#[test]
fn an_envelope_cut_by_max_size_in_dgrams_capture_is_flagged() {
    let path = temp_path("max-size.pcap");
    let (mut listen, addr) = listener(&["--max-size", "16", "--pcap", path.to_str().unwrap()]);
    let message = envelope::encode_message(&Message {
        session: SessionId([1, 2, 3, 4, 5, 6, 7, 8]),
        seq: 1,
        attempt: 1,
        name: "al".into(),
        payload: vec![b'x'; 20],
    });
    let mut send = Proc::dgram(&["send", &addr.to_string(), "--hex", &hex(&message)]);
    assert!(send.finish().success(), "{}", send.dump());
    let event = listen.next("malformed");
    assert_eq!(event["truncated"], true, "{event}");
    stop(&mut listen);
    let rows = tshark(&path);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(
        row.get("dgram.malformed").map(String::as_str),
        Some("1"),
        "{row:#?}"
    );
    let reason = match has("true_length") {
        true => format!("cut short: 16 of its {} bytes captured", message.len()),
        // The portable build cannot learn the true length (no MSG_TRUNC):
        // its record is the 16 bytes as a whole datagram, malformed as
        // what they are.
        false => chat_reason(&message[..16]),
    };
    assert!(
        row["_ws.expert.message"].contains(&reason),
        "{reason:?} in {row:#?}\n{event}"
    );
    if has("true_length") {
        assert_eq!(row.get("dgram.seq"), None, "{row:#?}");
    }
}

/// `dgram mtu --json` against a listener that records with `--pcap`:
/// every probe the listener received decodes (kind 14, direction, size)
/// to a `probe` event of the run, and every answer it sent (kind 15) to
/// an `answered` event, none malformed. (The portable build cannot set
/// the don't-fragment flag and has no `dgram mtu` to run: skipped there,
/// as in tests/mtu.rs.)
#[test]
fn a_dgram_mtu_run_decodes_to_its_events() {
    if !has("icmp_errors") {
        eprintln!("SKIPPED: the portable build cannot probe the path MTU (no IP_MTU_DISCOVER)");
        return;
    }
    let path = temp_path("mtu.pcap");
    let (mut listen, addr) = listener(&["--pcap", path.to_str().unwrap()]);
    let mut run = Proc::dgram(&["mtu", &addr.to_string(), "--json"]);
    assert!(run.finish().success(), "{}", run.dump());
    stop(&mut listen);
    let rows = tshark(&path);
    assert!(
        rows.iter().all(|r| !r.contains_key("dgram.malformed")),
        "{rows:#?}"
    );
    let direction = |name: &Value| match name.as_str() {
        Some("forward") => "1".to_string(),
        Some("reverse") => "2".to_string(),
        other => panic!("direction {other:?}"),
    };
    let decoded = |kind: &str| {
        sorted(
            rows.iter()
                .filter(|r| r.get("dgram.kind").map(String::as_str) == Some(kind))
                .map(|r| (r["dgram.direction"].clone(), r["dgram.size"].clone()))
                .collect::<Vec<_>>(),
        )
    };
    let reported = |event: &str| {
        sorted(
            run.events(event)
                .iter()
                .map(|e| (direction(&e["direction"]), e["size"].to_string()))
                .collect::<Vec<_>>(),
        )
    };
    assert!(!reported("probe").is_empty(), "{}", run.dump());
    assert_eq!(
        decoded("14"),
        reported("probe"),
        "{}\n{rows:#?}",
        run.dump()
    );
    assert_eq!(
        decoded("15"),
        reported("answered"),
        "{}\n{rows:#?}",
        run.dump()
    );
}

/// Two group members in network namespaces (`chat --group`), each
/// recording with `--pcap`; bob says a line and both leave. In ann's
/// file, bob's hellos and his bye decode (kinds 3 and 4) with the name and
/// port ann's `member` event gives him; the join's proof of address is
/// there, a challenge token one side sent coming back as the other's
/// answer; and bob's message decodes to ann's `message` event.
#[test]
fn a_group_recorded_with_pcap_decodes_to_what_its_members_report() {
    let Some(lan) = crate::netns::Lan::or_skip(2) else {
        return;
    };
    let files = [temp_path("ann.pcap"), temp_path("bob.pcap")];
    let member = |host: usize, name: &str| {
        let pcap = files[host].to_str().unwrap();
        let args = [
            "chat",
            "--group",
            "239.1.2.3:5000",
            "--iface",
            "eth0",
            "--name",
            name,
            "--json",
            "--no-history",
            "--hello",
            "300",
            "--linger",
            "1000",
            "--pcap",
            pcap,
        ];
        let proc = lan.dgram(host, &args);
        proc.wait_stdout_contains("\"event\":\"joined\"");
        proc
    };
    let (mut ann, mut bob) = (member(0, "ann"), member(1, "bob"));
    for proc in [&ann, &bob] {
        wait_for(
            "the members to meet",
            || proc.dump(),
            || (!proc.events("member").is_empty()).then_some(()),
        );
    }
    bob.write_line("hello, group");
    ann.wait_stdout_contains("hello, group");
    bob.close_stdin();
    assert!(bob.finish_within(DEADLINE).success(), "{}", bob.dump());
    wait_for(
        "ann to see bob leave",
        || ann.dump(),
        || {
            ann.events("member")
                .iter()
                .any(|e| e["change"] == "left")
                .then_some(())
        },
    );
    ann.close_stdin();
    assert!(ann.finish_within(DEADLINE).success(), "{}", ann.dump());

    let rows = tshark(&files[0]);
    assert!(
        rows.iter().all(|r| !r.contains_key("dgram.malformed")),
        "{rows:#?}"
    );
    let joined = ann.first_event("member");
    let bob_port = joined["member"]
        .as_str()
        .unwrap()
        .parse::<SocketAddr>()
        .unwrap()
        .port();
    let field = |row: &Row, name: &str| row.get(name).cloned().unwrap_or_default();
    let of_kind = |kind: &str| -> Vec<&Row> {
        from(&rows, bob_port)
            .into_iter()
            .filter(|r| field(r, "dgram.kind") == kind)
            .collect()
    };
    let (hellos, byes) = (of_kind("3"), of_kind("4"));
    assert!(!hellos.is_empty() && byes.len() == 1, "{rows:#?}");
    for row in hellos.iter().chain(&byes) {
        assert_eq!(
            field(row, "dgram.name"),
            joined["name"].as_str().unwrap(),
            "{row:#?}"
        );
    }
    // Proof of address: a token ann sent bob as a challenge comes back
    // from bob as his answer (and the other way round).
    let port_of_member = |event: &Value| {
        event["member"]
            .as_str()
            .unwrap()
            .parse::<SocketAddr>()
            .unwrap()
            .port()
    };
    let ann_port = port_of_member(&bob.first_event("member"));
    let tokens = |port: u16, name: &str| -> BTreeSet<String> {
        from(&rows, port)
            .into_iter()
            .filter(|r| field(r, "dgram.kind") == "3")
            .map(|r| field(r, name))
            .filter(|t| !t.is_empty() && t != "0000000000000000")
            .collect()
    };
    for (asker, answerer) in [(ann_port, bob_port), (bob_port, ann_port)] {
        let (asked, answered) = (
            tokens(asker, "dgram.challenge"),
            tokens(answerer, "dgram.answer"),
        );
        assert!(
            !asked.is_empty() && asked.intersection(&answered).next().is_some(),
            "challenges from {asker} {asked:?}, answers from {answerer} {answered:?}\n{rows:#?}"
        );
    }
    let message = ann.first_event("message");
    let decoded = of_kind("1");
    assert_eq!(decoded.len(), 1, "{rows:#?}");
    for (name, key) in [
        ("dgram.session", "session"),
        ("dgram.name", "name"),
        ("dgram.text", "text"),
    ] {
        assert_eq!(
            field(decoded[0], name),
            message[key].as_str().unwrap(),
            "{message}"
        );
    }
    assert_eq!(field(decoded[0], "dgram.seq"), message["seq"].to_string());
}
