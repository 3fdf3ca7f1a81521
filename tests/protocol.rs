//! The chat protocol against real peers: plain peers (nc, a Python
//! `recvfrom(1024)` script) get plain text; `listen` decodes and
//! acknowledges envelopes, or with `--raw` shows them raw; malformed
//! envelopes are shown and counted; `--log` keeps every message and its
//! final state.

use std::process::Command;
use std::time::Duration;

use crate::util::{Proc, Pty, listener, nc_listener, need, stop, temp_path};

/// `dgram chat --plain --eol lf` to OpenBSD `nc -u -l` (which cannot speak
/// first): nc prints one line per message, exactly the text typed, no
/// envelope bytes; the chat expects no receipts from a plain peer and
/// exits 0.
#[test]
fn nc_listener_sees_one_plain_line_per_message() {
    let (mut nc, port) = nc_listener();
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &format!("127.0.0.1:{port}"),
        "--plain",
        "--eol",
        "lf",
        "--json",
        "--linger",
        "0",
    ]);
    chat.write_line("first message");
    chat.write_line("second message");
    chat.close_stdin();
    nc.wait_stdout_contains("second message");
    assert!(chat.finish().success(), "{}", chat.dump());
    assert_eq!(nc.stdout(), "first message\nsecond message\n");
    assert!(chat.events("receipt").is_empty(), "{}", chat.dump());
    let sent: Vec<_> = chat
        .events("sent")
        .iter()
        .map(|e| (e["kind"].clone(), e["text"].clone()))
        .collect();
    assert_eq!(
        sent,
        [
            ("text".into(), "first message".into()),
            ("text".into(), "second message".into())
        ]
    );
    nc.kill();
}

/// A chat with `nc -u -l` started without `--plain`: nc never answers the
/// envelopes, and when the first message's first retransmission goes out
/// the chat says once that the peer may be a plain UDP program and how to
/// switch (`/plain`, `--plain`); a second unanswered message does not say
/// it again, and after `/plain` the text reaches nc as typed.
#[test]
fn an_unanswered_peer_gets_the_plain_hint_once() {
    let (mut nc, port) = nc_listener();
    let peer = format!("127.0.0.1:{port}");
    let mut chat = Pty::dgram(
        &["chat", "--peer", &peer, "--no-history", "--retries", "1"],
        "xterm",
    );
    chat.expect(&format!("{peer}> "));
    chat.type_line("anyone?");
    chat.expect(&format!(
        "!! no receipt from {peer} yet, and nothing dgram-shaped ever came from it"
    ));
    chat.expect("/plain sends it the text as typed (or start with --plain)");
    chat.expect(&format!("#1 to {peer} failed: no receipt after 2 tries"));
    chat.type_line("still nothing?");
    chat.expect(&format!("#2 to {peer} failed: no receipt after 2 tries"));
    chat.type_line("/plain");
    chat.type_line("plain at last");
    nc.wait_stdout_contains("plain at last");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(
        chat.transcript.matches("nothing dgram-shaped").count(),
        1,
        "{}",
        chat.transcript
    );
    nc.kill();
}

/// A Python peer that knows nothing of dgram (`recvfrom(1024)`, then
/// `sendto`) speaks first: the chat shows its text with its address, says
/// once that it speaks plain UDP, and `/reply` messages reach it as plain
/// text with the `--eol` line ending, which it prints.
#[test]
fn python_plain_peer_gets_plain_text() {
    need("python3");
    let mut chat = Pty::dgram(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--eol",
            "lf",
            "--no-history",
        ],
        "xterm",
    );
    let addr = chat.bound_addr();
    chat.expect("(no peer: /to ADDR)> ");
    let script = format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(20)
s.sendto(b"hello from python", ("127.0.0.1", {port}))
for _ in range(2):
    data, peer = s.recvfrom(1024)
    print(repr(data), flush=True)
"#,
        port = addr.port()
    );
    let mut python = Proc::spawn("python3", &["-c", &script]);
    chat.expect("\"hello from python\"");
    chat.expect("speaks plain UDP: messages to it go as the bytes typed, without receipts");
    chat.type_line("/reply");
    chat.expect("talking to 127.0.0.1:");
    chat.type_line("hi python");
    chat.expect("  \"hi python\"  (plain: no receipt)");
    chat.type_line("second line");
    assert!(python.finish().success(), "{}", python.dump());
    assert_eq!(python.stdout(), "b'hi python\\n'\nb'second line\\n'\n");
    chat.type_line("/quit");
    chat.expect("summary:");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(
        chat.transcript.matches("speaks plain UDP").count(),
        1,
        "said once: {}",
        chat.transcript
    );
}

/// `listen --raw` knows no protocol: a chat message is shown as the raw
/// datagram it is (hex, starting f5 01 01) and not acknowledged, so the
/// chat's message fails after its one try (`--retries 0`) and the piped
/// chat exits 1, saying how many were not delivered.
#[test]
fn raw_listener_shows_envelopes_raw_and_sends_no_receipts() {
    let (mut listen, addr) = listener(&["--raw"]);
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &addr.to_string(),
        "--retries",
        "0",
        "--linger",
        "0",
        "--json",
    ]);
    chat.write_line("are you dgram?");
    chat.close_stdin();
    let seen = listen.next("datagram");
    assert!(
        seen["hex"].as_str().unwrap().starts_with("f50101"),
        "{seen}"
    );
    assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
    assert_eq!(chat.first_event("receipt")["status"], "failed");
    assert!(
        chat.stderr()
            .contains("error: 1 of 1 message not delivered; "),
        "{}",
        chat.dump()
    );
    let summary = stop(&mut listen);
    assert_eq!(
        (summary["received"].as_u64(), summary["sent"].as_u64()),
        (Some(1), Some(0))
    );
}

/// Datagrams that start like an envelope but are not valid ones (unknown
/// version, too short, a body cut short, try 0) are shown raw, marked
/// malformed with the reason, counted, never acknowledged; the listener
/// goes on and decodes the next valid message.
#[test]
fn malformed_envelopes_are_shown_and_counted() {
    let (mut listen, addr) = listener(&[]);
    let to = addr.to_string();
    let cases = [
        ("f50901", "unknown version 9"),
        ("f501", "shorter than the 3-byte header"),
        ("f5010101020304", "body does not decode"),
        ("f50101010203040506070801000000", "try 0"),
        ("f5010a01", "unknown kind 10"),
        (
            "f5010701",
            "secured in a session: needs --key-file or --code",
        ),
    ];
    for (hex, reason) in cases {
        let mut send = Proc::dgram(&["send", &to, "--hex", hex, "--wait", "0"]);
        assert!(send.finish().success(), "{}", send.dump());
        let seen = listen.next("malformed");
        assert_eq!(seen["hex"], hex, "{seen}");
        assert_eq!(seen["reason"], reason, "{seen}");
    }
    let mut chat = Proc::dgram(&["chat", "--peer", &to, "--linger", "0", "--name", "ok"]);
    chat.write_line("valid");
    chat.close_stdin();
    assert_eq!(listen.next("message")["text"], "valid");
    assert!(chat.finish().success(), "{}", chat.dump());
    let summary = stop(&mut listen);
    assert_eq!(summary["malformed"], cases.len() as u64, "{summary}");
    assert_eq!(summary["messages"], 1);
    // One receipt, for the valid message only.
    assert_eq!(summary["sent"], 1);
}

/// `--log FILE` appends every message out (with its text) and its final
/// state as JSON lines, written line by line, so a chat ended by SIGTERM
/// leaves a complete log: here a delivered message and, for a message to
/// the listener once it is gone, its failure: `refused` where the platform
/// hears the ICMP refusal, else `ended` (still waiting when SIGTERM came).
#[test]
fn log_keeps_messages_and_final_states_through_sigterm() {
    let (mut listen, addr) = listener(&[]);
    let log = temp_path("chat.log");
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &addr.to_string(),
        "--log",
        log.to_str().unwrap(),
        "--json",
    ]);
    chat.write_line("logged");
    assert_eq!(listen.next("message")["text"], "logged");
    chat.wait_stdout_contains("\"status\":\"delivered\"");
    // Nobody acknowledges the next one: the listener is gone.
    stop(&mut listen);
    chat.write_line("never acknowledged");
    chat.wait_stdout_contains("\"text\":\"never acknowledged\"");
    let why = if crate::util::has("icmp_errors") {
        chat.wait_stdout_contains("\"refused\":true");
        "refused"
    } else {
        "ended"
    };
    chat.signal(nix::sys::signal::Signal::SIGTERM);
    chat.finish();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<(String, u64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap().to_string(),
                l["seq"].as_u64().unwrap_or(0),
                l["status"]
                    .as_str()
                    .or(l["text"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("sent".to_string(), 1, "logged".to_string()),
            ("receipt".to_string(), 1, "delivered".to_string()),
            ("sent".to_string(), 2, "never acknowledged".to_string()),
            ("receipt".to_string(), 2, "failed".to_string()),
        ],
        "{text}"
    );
    assert_eq!(lines[3][why], true, "{text}");
}

/// A Python peer written only from docs/PROTOCOL.md (tests/peer) and
/// `dgram chat` exchange messages and receipts both ways: the chat's
/// messages reach the Python peer and are delivered; the Python peer's
/// reach the chat, shown with its name, and are delivered.
#[test]
fn python_peer_from_the_spec_talks_both_ways() {
    need("python3");
    // Its own check of the spec's worked examples first.
    let mut check = Proc::spawn("python3", &["tests/peer/dgram_peer.py", "--self-test"]);
    assert!(check.finish().success(), "{}", check.dump());
    let mut python = Proc::start({
        let mut command = Command::new("python3");
        command.args([
            "tests/peer/dgram_peer.py",
            "--reply",
            "--name",
            "pyth",
            "--send",
            "from python 1",
            "--send",
            "from python 2",
            "--expect",
            "3",
            "--timeout",
            "20",
        ]);
        command
    });
    let bound = python.next("bound");
    let peer = bound["local"].as_str().unwrap().to_string();
    let mut chat = Proc::dgram(&[
        "chat", "--peer", &peer, "--name", "rusty", "--json", "--linger", "3000",
    ]);
    for text in ["from dgram 1", "from dgram 2", ""] {
        chat.write_line(text);
    }
    chat.close_stdin();
    assert!(
        python.finish_within(Duration::from_secs(30)).success(),
        "{}",
        python.dump()
    );
    assert!(chat.finish().success(), "{}", chat.dump());
    let heard: Vec<_> = python
        .events("message")
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["name"].clone(),
                m["text"].clone(),
            )
        })
        .collect();
    assert_eq!(
        heard,
        [
            (1, "rusty".into(), "from dgram 1".into()),
            (2, "rusty".into(), "from dgram 2".into()),
            (3, "rusty".into(), "".into()),
        ],
        "{}",
        python.dump()
    );
    let python_receipts = python.events("receipt");
    assert!(
        python_receipts.iter().all(|r| r["status"] == "delivered") && python_receipts.len() == 2,
        "{}",
        python.dump()
    );
    let shown: Vec<_> = chat
        .events("message")
        .iter()
        .filter(|m| m["duplicate"] == false)
        .map(|m| (m["name"].clone(), m["text"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            ("pyth".into(), "from python 1".into()),
            ("pyth".into(), "from python 2".into())
        ],
        "{}",
        chat.dump()
    );
    let summary = chat.first_event("summary");
    assert_eq!(summary["delivered"], 3, "{}", chat.dump());
}

/// From a pipe to a closed port: the refusal fails the messages at once
/// (`refused`, one try each, not after the whole retry schedule) where the
/// platform hears ICMP errors, and the chat exits 1; to a `--plain` peer,
/// which sends no receipts, the refusal alone fails the chat, as it fails
/// `send`.
#[test]
fn a_closed_port_fails_a_piped_chat() {
    if !crate::util::has("icmp_errors") {
        // Without ICMP errors the schedule runs out: chat.rs tests that.
        eprintln!("SKIPPED: this build hears no ICMP errors");
        return;
    }
    let peer = crate::util::closed_port().to_string();
    let mut chat = Proc::dgram(&["chat", "--peer", &peer, "--json", "--linger", "0"]);
    chat.write_line("a");
    chat.write_line("b");
    chat.close_stdin();
    assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
    let receipts = chat.events("receipt");
    assert_eq!(receipts.len(), 2, "{}", chat.dump());
    for receipt in receipts {
        assert_eq!(
            (&receipt["status"], &receipt["refused"], &receipt["tries"]),
            (&"failed".into(), &true.into(), &1.into()),
            "{receipt}"
        );
    }
    let mut plain = Proc::dgram(&["chat", "--peer", &peer, "--plain", "--linger", "200"]);
    plain.write_line("a");
    plain.close_stdin();
    assert_eq!(plain.finish().code(), Some(1), "{}", plain.dump());
    assert!(
        plain.stderr().contains("error: nothing is listening at"),
        "{}",
        plain.dump()
    );
}

/// From a pipe, a line that fits in a datagram but not in a message (its
/// envelope takes room) is skipped like a line too long for a datagram:
/// a `line_skipped` event with the message limit, counted, exit 1.
#[test]
fn a_line_too_long_for_a_message_is_skipped_and_counted() {
    let (mut listen, addr) = listener(&[]);
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &addr.to_string(),
        "--json",
        "--name",
        "n",
        "--linger",
        "0",
    ]);
    chat.write_line(&"q".repeat(65500));
    chat.write_line("short");
    chat.close_stdin();
    assert_eq!(listen.next("message")["text"], "short");
    assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
    let skipped = chat.first_event("line_skipped");
    assert_eq!(skipped["line"], 1);
    assert_eq!(skipped["len"], 65500);
    assert!(skipped["limit"].as_u64().unwrap() < 65507, "{skipped}");
    assert_eq!(chat.first_event("summary")["skipped_lines"], 1);
    assert!(
        chat.stderr().contains("1 line of input was not sent"),
        "{}",
        chat.dump()
    );
    stop(&mut listen);
}

/// A `--name` with an escape sequence is refused (status 2) with the name
/// shown escaped, so the error cannot drive the terminal; a name of spaces
/// is refused too.
#[test]
fn bad_names_are_refused_escaped() {
    let mut chat = Proc::dgram(&["chat", "--name", "evil\x1b[2Jname"]);
    assert_eq!(chat.finish().code(), Some(2), "{}", chat.dump());
    assert!(!chat.stderr().contains('\x1b'), "{}", chat.dump());
    assert!(
        chat.stderr().contains("evil\\u{1b}[2Jname"),
        "{}",
        chat.dump()
    );
    let mut spaces = Proc::dgram(&["chat", "--name", "   "]);
    assert_eq!(spaces.finish().code(), Some(2), "{}", spaces.dump());
}

/// To `listen --echo`, a datagram that starts like an envelope but is not
/// a valid one (binary data whose first byte happens to be 0xF5) is still
/// a datagram to echo: the reply comes back byte for byte, and the
/// listener marks it malformed.
#[test]
fn echo_answers_malformed_envelopes_too() {
    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "0"]);
    let mut send = Proc::dgram(&[
        "send",
        &addr.to_string(),
        "--hex",
        "f5000102",
        "--json",
        "--wait",
        "2000",
    ]);
    let reply = send.next("datagram");
    assert_eq!(reply["hex"], "f5000102", "{}", send.dump());
    send.kill();
    assert_eq!(echo.next("malformed")["reason"], "unknown version 0");
    let summary = stop(&mut echo);
    assert_eq!(
        (summary["received"].as_u64(), summary["sent"].as_u64()),
        (Some(1), Some(1))
    );
}

/// A peer that changes address mid-chat in a chat without keys, played by
/// the independent Python peer's encoder: it acknowledges the chat's first
/// message from one socket, then speaks from a second one with the same
/// session. The chat shows the message (no gap, no restart) and
/// acknowledges it where it came from, but does not follow the move
/// (anyone could forge one without keys): it says so once
/// (`peer_not_followed`), reports no `peer_moved`, and its next message
/// still goes to the first address, where it is acknowledged.
#[test]
fn an_unsealed_peer_that_changes_address_is_not_followed() {
    need("python3");
    let script = r#"
import json, socket, sys
sys.path.insert(0, "tests/peer")
from dgram_peer import encode_message, encode_receipt, decode_envelope
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", 0))
a.settimeout(15); b.settimeout(15)
print(json.dumps({"a": a.getsockname()[1], "b": b.getsockname()[1]}), flush=True)
session = bytes(range(1, 9))
data, chat = a.recvfrom(65535)
m = decode_envelope(data)
a.sendto(encode_receipt(session, m["seq"], m["try"]), chat)
b.sendto(encode_message(session, 1, 1, b"py", b"from b"), chat)
data, _ = b.recvfrom(65535)
print(json.dumps({"at_b": decode_envelope(data)["kind"]}), flush=True)
while True:
    data, peer = a.recvfrom(65535)
    m = decode_envelope(data)
    if m["kind"] == 1:
        a.sendto(encode_receipt(session, m["seq"], m["try"]), peer)
        print(json.dumps({"got": m["payload"].decode()}), flush=True)
        break
"#;
    let mut python = Proc::spawn("python3", &["-c", script]);
    let ports: serde_json::Value = crate::util::wait_for(
        "the Python peer's ports",
        || python.dump(),
        || {
            python
                .stdout()
                .lines()
                .next()
                .and_then(|l| serde_json::from_str(l).ok())
        },
    );
    let (a, b) = (
        format!("127.0.0.1:{}", ports["a"]),
        format!("127.0.0.1:{}", ports["b"]),
    );
    let mut chat = Proc::dgram(&["chat", "--peer", &a, "--json", "--linger", "0"]);
    chat.write_line("one");
    let noted = chat.next("peer_not_followed");
    assert_eq!(
        (noted["at"].as_str(), noted["heard"].as_str()),
        (Some(a.as_str()), Some(b.as_str()))
    );
    let message = chat.next("message");
    assert_eq!(message["text"], "from b", "{}", chat.dump());
    // The receipt went back to where the message came from.
    python.wait_stdout_contains(r#""at_b": 2"#);
    chat.write_line("two");
    python.wait_stdout_contains(r#""got": "two""#);
    chat.close_stdin();
    assert!(chat.finish().success(), "{}", chat.dump());
    let receipts: Vec<(u64, String)> = chat
        .events("receipt")
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        [(1, "delivered".into()), (2, "delivered".into())],
        "{}",
        chat.dump()
    );
    assert!(chat.events("gap").is_empty(), "{}", chat.dump());
    assert!(chat.events("peer_moved").is_empty(), "{}", chat.dump());
    assert_eq!(chat.events("peer_not_followed").len(), 1, "{}", chat.dump());
    let sent_two = chat
        .events("sent")
        .into_iter()
        .find(|s| s["text"] == "two")
        .unwrap();
    assert_eq!(sent_two["to"].as_str(), Some(a.as_str()), "{}", chat.dump());
    python.finish();
}
