//! Secure sessions (PROTOCOL.md section 10) against the independent Python
//! peer (tests/peer/dgram_secure.py, written from the document and the Noise
//! specification alone): key files and codes, each side beginning once,
//! messages both ways inside the session, the same verification words on
//! both sides, and a wrong code reported by both.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Proc, Pty, keygen, need};

/// How long a Python peer may run; its own `--timeout` is shorter, so a
/// hang ends as its `timeout` event, with a dump.
const PYTHON_LIMIT: Duration = Duration::from_secs(30);

/// The code both sides are given (section 10.1: a number and PGP words).
const CODE: &str = "42-clockwork-crossover-ragtime";

/// The same number and words but the last: a code that does not match.
const OTHER_CODE: &str = "42-clockwork-crossover-allow";

/// Fails the test, with what to do, when python3 or the Python peer's
/// packages are missing.
fn need_python_crypto() {
    need("python3");
    let status = Command::new("python3")
        .args(["-c", "import spake2, cryptography"])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "the Python packages spake2 and cryptography are missing: run scripts/setup-test-deps.sh"
    );
}

/// Starts the Python peer with `args` and returns it with its `bound`
/// event (its address and run session).
fn start_python(args: &[&str]) -> (Proc, Value) {
    let mut command = Command::new("python3");
    command
        .arg("tests/peer/dgram_peer.py")
        .args(args)
        .args(["--timeout", "15"]);
    let mut proc = Proc::start(command);
    let bound = proc.next("bound");
    (proc, bound)
}

/// Waits for the Python peer to exit and returns its exit code.
fn python_exit(python: &mut Proc) -> Option<i32> {
    python.finish_within(PYTHON_LIMIT).code()
}

/// The texts of the messages `proc` showed, first copies only, as
/// (name, text).
fn shown(proc: &Proc) -> Vec<(String, String)> {
    proc.events("message")
        .iter()
        .filter(|m| m["duplicate"] != true)
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The statuses of the receipts `proc` reported, by number.
fn receipts(proc: &Proc) -> Vec<(u64, String)> {
    proc.events("receipt")
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Checks that dgram's and the Python peer's `session_opened` events
/// describe one session: the same verification words (dgram's `verify` is
/// words, the Python peer's `verify_words`), the method, who began, and
/// each names the other's run session.
fn same_session(
    dgram: &Proc,
    dgram_initiator: bool,
    python: &Proc,
    python_bound: &Value,
    method: &str,
) {
    let ours = dgram.first_event("session_opened");
    let theirs = python.first_event("session_opened");
    let why = || format!("{}\n{}", dgram.dump(), python.dump());
    assert_eq!(ours["verify"], theirs["verify_words"], "{}", why());
    assert_eq!(
        theirs["verify"].as_str().map(str::len),
        Some(8),
        "{}",
        why()
    );
    assert_eq!(
        (ours["method"].as_str(), theirs["method"].as_str()),
        (Some(method), Some(method)),
        "{}",
        why()
    );
    assert_eq!(
        (ours["initiator"].as_bool(), theirs["initiator"].as_bool()),
        (Some(dgram_initiator), Some(!dgram_initiator)),
        "{}",
        why()
    );
    assert_eq!(ours["peer_session"], python_bound["session"], "{}", why());
    assert_eq!(ours["session_id"], theirs["session_id"], "{}", why());
}

/// The Python peer opens a key-file session as its initiator with
/// `dgram listen --key-file`: the listener shows its message (name, text)
/// and acknowledges it inside the session, the Python peer reports it
/// delivered, and both show the same verification words; the listener
/// names the Python peer's run session as the handshake carried it.
#[test]
fn python_initiator_with_a_key_file_reaches_a_keyed_listener() {
    need_python_crypto();
    let key = keygen("py-listen.key");
    let (mut listen, addr) = crate::util::listener(&["--key-file", key.to_str().unwrap()]);
    let (mut python, bound) = start_python(&[
        "--peer",
        &addr.to_string(),
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        "pyth",
        "--send",
        "secured from python",
    ]);
    assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
    assert_eq!(
        receipts(&python),
        [(1, "delivered".to_string())],
        "{}",
        python.dump()
    );
    let message = listen.next("message");
    assert_eq!(
        (message["name"].as_str(), message["text"].as_str()),
        (Some("pyth"), Some("secured from python")),
        "{}",
        listen.dump()
    );
    let summary = crate::util::stop(&mut listen);
    assert_eq!(summary["messages"], 1, "{}", listen.dump());
    assert!(
        listen
            .events("sent")
            .iter()
            .any(|s| s["kind"] == "receipt" && s["seq"] == 1),
        "{}",
        listen.dump()
    );
    same_session(&listen, false, &python, &bound, "key_file");
}

/// `dgram chat --key-file` from a pipe opens a session as its initiator
/// with the Python peer as responder: both of the chat's messages reach
/// the Python peer and are delivered, the Python peer's message reaches the
/// chat (the Python peer speaks only once a datagram of the session came,
/// as 10.6 asks of a responder) and is delivered, and both show the same
/// verification words.
#[test]
fn a_keyed_chat_talks_to_a_python_responder() {
    need_python_crypto();
    let key = keygen("py-responder.key");
    let (mut python, bound) = start_python(&[
        "--reply",
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        "pyth",
        "--send",
        "from python",
        "--expect",
        "2",
    ]);
    let peer = bound["local"].as_str().unwrap().to_string();
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &peer,
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        "rusty",
        "--json",
        "--no-history",
        "--linger",
        "2000",
    ]);
    chat.write_line("from dgram 1");
    chat.write_line("from dgram 2");
    chat.close_stdin();
    assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
    assert_eq!(chat.finish().code(), Some(0), "{}", chat.dump());
    assert_eq!(
        shown(&python),
        [
            ("rusty".to_string(), "from dgram 1".to_string()),
            ("rusty".to_string(), "from dgram 2".to_string())
        ],
        "{}",
        python.dump()
    );
    assert_eq!(
        receipts(&python),
        [(1, "delivered".to_string())],
        "{}",
        python.dump()
    );
    assert_eq!(
        shown(&chat),
        [("pyth".to_string(), "from python".to_string())],
        "{}",
        chat.dump()
    );
    assert_eq!(
        chat.first_event("summary")["delivered"],
        2,
        "{}",
        chat.dump()
    );
    same_session(&chat, true, &python, &bound, "key_file");
}

/// With a code, `dgram chat --code` from a pipe begins (SPAKE2, then Noise
/// NNpsk0 with the chat as Noise's responder) and the Python peer answers:
/// messages both ways are shown and delivered, and both show the same
/// verification words.
#[test]
fn a_code_chat_begins_with_a_python_responder() {
    need_python_crypto();
    let (mut python, bound) = start_python(&[
        "--reply",
        "--code",
        CODE,
        "--name",
        "pyth",
        "--send",
        "from python",
        "--expect",
        "1",
    ]);
    let peer = bound["local"].as_str().unwrap().to_string();
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &peer,
        "--code",
        CODE,
        "--name",
        "rusty",
        "--json",
        "--no-history",
        "--linger",
        "2000",
    ]);
    chat.write_line("from dgram");
    chat.close_stdin();
    assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
    assert_eq!(chat.finish().code(), Some(0), "{}", chat.dump());
    assert_eq!(
        shown(&python),
        [("rusty".to_string(), "from dgram".to_string())],
        "{}",
        python.dump()
    );
    assert_eq!(
        receipts(&python),
        [(1, "delivered".to_string())],
        "{}",
        python.dump()
    );
    assert_eq!(
        shown(&chat),
        [("pyth".to_string(), "from python".to_string())],
        "{}",
        chat.dump()
    );
    assert_eq!(
        chat.first_event("summary")["delivered"],
        1,
        "{}",
        chat.dump()
    );
    same_session(&chat, true, &python, &bound, "code");
}

/// With a code, the Python peer begins and `dgram chat --code` (in a
/// terminal, waiting without a peer) answers: the chat shows the Python
/// peer's message and the same verification words as the Python peer;
/// after `/reply` its message reaches the Python peer, and both messages
/// are delivered.
#[test]
fn a_python_initiator_with_a_code_reaches_a_waiting_chat() {
    need_python_crypto();
    let mut chat = Pty::dgram(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--code",
            CODE,
            "--name",
            "rusty",
            "--no-history",
        ],
        "dumb",
    );
    let addr = chat.bound_addr();
    let (mut python, bound) = start_python(&[
        "--peer",
        &addr.to_string(),
        "--code",
        CODE,
        "--name",
        "pyth",
        "--send",
        "from python",
        "--expect",
        "1",
    ]);
    let opened = python.next("session_opened");
    assert_eq!(opened["initiator"], true, "{}", python.dump());
    let words = opened["verify_words"].as_str().unwrap().to_string();
    chat.expect(&format!("verify: {words}"));
    chat.expect(&format!(
        "pyth ({})  #1  \"from python\"",
        bound["local"].as_str().unwrap()
    ));
    chat.type_line("/reply");
    chat.type_line("from dgram");
    assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
    assert_eq!(
        shown(&python),
        [("rusty".to_string(), "from dgram".to_string())],
        "{}",
        python.dump()
    );
    assert_eq!(
        receipts(&python),
        [(1, "delivered".to_string())],
        "{}",
        python.dump()
    );
    chat.expect("\"from dgram\"  ok ");
    chat.type_line("/quit");
    chat.finish();
}

/// A wrong code, each side beginning once: the side that begins finds the
/// codes differ (Noise message 1 does not authenticate) and says so, the
/// other hears its `fail` and says so too; nothing is shown, and a message
/// waiting for the session fails.
#[test]
fn a_wrong_code_is_reported_by_both_sides() {
    need_python_crypto();
    // dgram begins.
    let (mut python, bound) = start_python(&["--reply", "--code", OTHER_CODE, "--name", "pyth"]);
    let peer = bound["local"].as_str().unwrap().to_string();
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &peer,
        "--code",
        CODE,
        "--json",
        "--no-history",
        "--linger",
        "0",
    ]);
    chat.write_line("never shown");
    chat.close_stdin();
    assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
    assert_eq!(chat.events("wrong_code").len(), 1, "{}", chat.dump());
    assert_eq!(
        receipts(&chat),
        [(1, "failed".to_string())],
        "{}",
        chat.dump()
    );
    assert_eq!(python_exit(&mut python), Some(1), "{}", python.dump());
    assert_eq!(python.events("wrong_code").len(), 1, "{}", python.dump());
    assert!(python.events("message").is_empty(), "{}", python.dump());

    // The Python peer begins.
    let mut chat = Proc::dgram(&[
        "chat",
        "--bind",
        "127.0.0.1:0",
        "--code",
        CODE,
        "--json",
        "--no-history",
    ]);
    let addr = chat.expect("listening")["local"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut python, _) = start_python(&[
        "--peer",
        &addr,
        "--code",
        OTHER_CODE,
        "--name",
        "pyth",
        "--send",
        "never shown",
    ]);
    assert_eq!(python_exit(&mut python), Some(1), "{}", python.dump());
    assert_eq!(python.events("wrong_code").len(), 1, "{}", python.dump());
    assert_eq!(
        receipts(&python),
        [(1, "failed".to_string())],
        "{}",
        python.dump()
    );
    chat.next("wrong_code");
    chat.close_stdin();
    chat.finish();
    assert!(chat.events("message").is_empty(), "{}", chat.dump());
}

/// Roaming (10.8) with the Python peer: after its first message is
/// delivered it speaks from a new port (the old socket closed). The keyed
/// listener shows the next message, challenges the new address inside the
/// session (with the address it saw), the Python peer answers from there,
/// and the listener reports the move from the old address to the new one;
/// both messages are delivered.
#[test]
fn a_python_peer_that_moves_answers_the_path_check() {
    need_python_crypto();
    let key = keygen("py-roam.key");
    let (mut listen, addr) = crate::util::listener(&["--key-file", key.to_str().unwrap()]);
    let (mut python, bound) = start_python(&[
        "--peer",
        &addr.to_string(),
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        "pyth",
        "--send",
        "before the move",
        "--send",
        "after the move",
        "--move-after",
        "1",
    ]);
    assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
    assert_eq!(
        receipts(&python),
        [(1, "delivered".to_string()), (2, "delivered".to_string())],
        "{}",
        python.dump()
    );
    let moved = python.first_event("moved");
    assert_eq!(moved["from"], bound["local"], "{}", python.dump());
    let challenge = python.first_event("path_challenge");
    assert_eq!(
        (challenge["from"].as_str(), &challenge["seen"]),
        (Some(addr.to_string().as_str()), &moved["to"]),
        "{}",
        python.dump()
    );
    let peer_moved = listen.next("peer_moved");
    assert_eq!(
        (&peer_moved["from"], &peer_moved["to"]),
        (&moved["from"], &moved["to"]),
        "{}",
        listen.dump()
    );
    crate::util::stop(&mut listen);
    assert_eq!(
        shown(&listen),
        [
            ("pyth".to_string(), "before the move".to_string()),
            ("pyth".to_string(), "after the move".to_string())
        ],
        "{}",
        listen.dump()
    );
}

/// Cookies (10.5): a Python responder that answers no init without proof
/// of address (`--inits-per-second 0`) sends a cookie instead; `dgram chat`
/// sends its init again at once with the cookie in it and the session
/// opens, with a key file and with a code; messages go both ways.
#[test]
fn a_chat_brings_back_the_python_responders_cookie() {
    need_python_crypto();
    let key = keygen("py-cookie.key");
    let key = key.to_str().unwrap();
    for (flag, secret, init_len) in [("--key-file", key, 93), ("--code", CODE, 110)] {
        let (mut python, bound) = start_python(&[
            "--reply",
            flag,
            secret,
            "--inits-per-second",
            "0",
            "--name",
            "pyth",
            "--send",
            "from python",
            "--expect",
            "1",
        ]);
        let peer = bound["local"].as_str().unwrap().to_string();
        let mut chat = Proc::dgram(&[
            "chat",
            "--peer",
            &peer,
            flag,
            secret,
            "--name",
            "rusty",
            "--json",
            "--no-history",
            "--linger",
            "2000",
        ]);
        chat.write_line("from dgram");
        chat.close_stdin();
        assert_eq!(python_exit(&mut python), Some(0), "{}", python.dump());
        assert_eq!(chat.finish().code(), Some(0), "{}", chat.dump());
        assert_eq!(python.events("cookie_sent").len(), 1, "{}", python.dump());
        let inits = chat
            .events("sent")
            .iter()
            .filter(|s| s["kind"] == "control" && s["len"] == init_len)
            .count();
        assert_eq!(inits, 2, "{}", chat.dump());
        assert_eq!(
            shown(&python),
            [("rusty".to_string(), "from dgram".to_string())],
            "{}",
            python.dump()
        );
        assert_eq!(
            shown(&chat),
            [("pyth".to_string(), "from python".to_string())],
            "{}",
            chat.dump()
        );
        assert_eq!(
            chat.first_event("summary")["delivered"],
            1,
            "{}",
            chat.dump()
        );
    }
}
