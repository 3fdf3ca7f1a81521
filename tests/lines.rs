//! Lines of input, one datagram each, in `dgram send` and in a piped
//! `dgram chat` alike: `\r\n` is a line ending, a line too long for one
//! datagram is reported by its number and skipped, the rest still go, and
//! the command fails at the end.

use crate::util::{Proc, Pty, listener, stop};

/// Three lines: "a", one of 70000 bytes, and "b" ended by `\r\n`.
fn three_lines() -> Vec<u8> {
    let mut input = b"a\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 70000));
    input.extend_from_slice(b"\nb\r\n");
    input
}

/// `dgram send` skips the long line and sends the others ("b" without its
/// `\r`), says which line it skipped, and exits 1 after its "sent" line.
#[test]
fn send_skips_a_long_line_and_goes_on() {
    let (mut listen, addr) = listener(&[]);
    let mut send = Proc::dgram(&["send", &addr.to_string(), "--wait", "0"]);
    send.write_bytes(&three_lines());
    send.close_stdin();
    assert_eq!(send.finish().code(), Some(1), "{}", send.dump());
    assert_eq!(listen.next("datagram")["text"], "a");
    assert_eq!(listen.next("datagram")["text"], "b");
    assert!(
        send.stdout()
            .contains("!! line 2 not sent: 70000 B is over the 65507-byte limit of one datagram"),
        "{}",
        send.dump()
    );
    let stderr = send.stderr();
    assert!(stderr.contains("sent 2 datagrams (2 B)"), "{stderr}");
    assert!(
        stderr.contains("error: 1 line of input was not sent"),
        "{stderr}"
    );
    assert_eq!(stop(&mut listen)["received"], 2);
}

/// A piped chat does the same: the long line is a `line_skipped` event with
/// its number, the others are sent, the chat exits 1 after its summary.
#[test]
fn piped_chat_skips_a_long_line_and_goes_on() {
    let (mut listen, addr) = listener(&[]);
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &addr.to_string(),
        "--json",
        "--no-history",
        "--linger",
        "0",
    ]);
    chat.write_bytes(&three_lines());
    chat.close_stdin();
    assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
    assert_eq!(listen.next("message")["text"], "a");
    assert_eq!(listen.next("message")["text"], "b");
    let skipped = chat.first_event("line_skipped");
    assert_eq!(skipped["line"], 2, "{skipped}");
    assert_eq!(skipped["len"], 70000, "{skipped}");
    assert_eq!(skipped["limit"], 65507, "{skipped}");
    let summary = chat.first_event("summary");
    assert_eq!(summary["sent"], 2, "{summary}");
    assert_eq!(summary["skipped_lines"], 1, "{summary}");
    assert!(chat.stderr().contains("1 line of input was not sent"));
    assert_eq!(stop(&mut listen)["received"], 2);
}

/// `dgram send ADDR` with no TEXT on a terminal says that it reads lines
/// until Ctrl-D, sends each line typed, and ends at Ctrl-D.
#[test]
fn send_from_a_terminal_says_how_to_end() {
    let (mut listen, addr) = listener(&[]);
    let mut send = Pty::dgram(&["send", &addr.to_string(), "--wait", "0"], "xterm");
    send.expect("reading lines from the terminal: each line is one datagram");
    send.expect("Ctrl-D ends");
    send.type_line("typed");
    assert_eq!(listen.next("datagram")["text"], "typed");
    send.session.send_control('d').unwrap();
    send.expect("sent 1 datagram (5 B)");
    assert_eq!(send.finish(), Some(0), "{}", send.transcript);
}

/// `send --count` for people counts what it sends in batches rather than
/// an event per datagram (10000 datagrams: several batches): the closing
/// line still counts every datagram and byte.
#[test]
fn batched_send_counts_every_datagram() {
    // A socket that never reads: what is counted is what was sent.
    let sink = crate::util::Peer::bind();
    let addr = sink.addr();
    let mut send = Proc::dgram(&[
        "send",
        &addr.to_string(),
        "--size",
        "64",
        "--count",
        "10000",
        "--wait",
        "0",
    ]);
    assert!(send.finish().success(), "{}", send.dump());
    assert!(
        send.stderr()
            .starts_with(&format!("sent 10000 datagrams (640000 B) to {addr}")),
        "{}",
        send.dump()
    );
}
