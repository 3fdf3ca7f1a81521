//! Empty datagrams are real messages.

use crate::util::{listener, run, stop};

/// `dgram send --empty` reaches `dgram listen` as a datagram of length 0
/// from the sender's own address, and the listener keeps running: the next
/// datagram arrives too (OpenBSD `nc -u` would have exited).
#[test]
fn empty_datagram_arrives_and_listener_keeps_running() {
    let (mut listen, addr) = listener(&[]);
    let addr = addr.to_string();

    let send = run(&["send", &addr, "--empty", "--json", "--bind", "127.0.0.1:0"]);
    assert!(send.finish_ok(), "{}", send.dump());
    let sender = send.first_event("listening")["local"].clone();

    let event = listen.next("datagram");
    assert_eq!(event["len"], 0, "{event}");
    assert_eq!(event["text"], "", "{event}");
    assert_eq!(event["from"], sender, "{event}");

    let next = run(&["send", &addr, "still here"]);
    assert!(next.finish_ok(), "{}", next.dump());
    assert_eq!(listen.next("datagram")["text"], "still here");

    let summary = stop(&mut listen);
    assert_eq!(summary["received"], 2);
    assert_eq!(summary["empty"], 1);
}

/// On a terminal an empty datagram reads `<empty>` (never blank), text is
/// quoted and escaped (an escape sequence cannot reach the terminal), and
/// bytes that are not text show as hex.
#[test]
fn human_output_marks_empty_escapes_text_and_shows_hex() {
    let mut listen = crate::util::Proc::dgram(&["listen", "127.0.0.1:0", "--count", "3"]);
    listen.wait_stdout_contains("listening on ");
    let out = listen.stdout();
    let addr = out
        .split_whitespace()
        .nth(2)
        .expect("listening line names the address")
        .to_string();
    for args in [
        vec!["send", &addr, "--empty"],
        vec!["send", &addr, "hi\x1b[2J\n"],
        vec!["send", &addr, "--hex", "00ff"],
    ] {
        assert!(run(&args).finish_ok());
    }
    let status = listen.finish();
    assert!(status.success(), "{}", listen.dump());
    let out = listen.stdout();
    assert!(out.contains(" 0 B  <empty>"), "{out}");
    assert!(out.contains(" 7 B  \"hi\\u{1b}[2J\\n\""), "{out}");
    assert!(
        !out.contains('\x1b'),
        "a raw escape reached the terminal: {out}"
    );
    assert!(out.contains(" 2 B  hex 00ff"), "{out}");
    assert!(out.contains("summary: received 3 datagrams"), "{out}");
}
