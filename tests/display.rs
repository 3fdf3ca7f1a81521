//! What a listener shows on a terminal: text is quoted and escaped so that
//! nothing a peer sends can drive the terminal, hide itself, or pass for one
//! of dgram's markers; mostly-text payloads stay text; previews are cut
//! between characters.

use std::net::UdpSocket;

use crate::util::{Proc, any_local_addr, has};

/// Starts `dgram listen 127.0.0.1:0 --count N EXTRA…` (human output) and
/// returns it with its address.
fn human_listener(count: usize, extra: &[&str]) -> (Proc, String) {
    let count = count.to_string();
    let mut args = vec!["listen", "127.0.0.1:0", "--count", &count];
    args.extend_from_slice(extra);
    let listen = Proc::dgram(&args);
    listen.wait_stdout_contains("listening on ");
    let addr = listen
        .stdout()
        .split_whitespace()
        .nth(2)
        .expect("listening line names the address")
        .to_string();
    (listen, addr)
}

/// Sends each payload from one socket, waits for the listener to exit
/// after them, and returns its lines for the datagrams, in order.
fn show(payloads: &[&[u8]], extra: &[&str]) -> Vec<String> {
    let (mut listen, addr) = human_listener(payloads.len(), extra);
    let sender = UdpSocket::bind(any_local_addr()).unwrap();
    for payload in payloads {
        sender.send_to(payload, &addr).unwrap();
    }
    assert!(listen.finish().success(), "{}", listen.dump());
    let from = sender.local_addr().unwrap().to_string();
    let lines: Vec<String> = listen
        .stdout()
        .lines()
        .filter(|l| l.contains(&format!("  {from}  ")))
        .map(|l| l.split_once(&format!("  {from}  ")).unwrap().1.to_string())
        .collect();
    assert_eq!(lines.len(), payloads.len(), "{}", listen.dump());
    assert!(
        !listen.stdout().contains('\x1b'),
        "raw escape: {}",
        listen.dump()
    );
    lines
}

/// Texts that read like the markers are quoted, so `<empty>` and `hex …`
/// only ever mean an empty or binary datagram; an escape sequence and a
/// quote are escaped.
#[test]
fn texts_cannot_pass_for_markers() {
    let lines = show(
        &[
            b"",
            b"<empty>",
            &[0, 0xff],
            b"hex 00ff",
            b"hi\x1b[2J\n",
            b"say \"x\"",
        ],
        &[],
    );
    assert_eq!(
        lines,
        [
            "0 B  <empty>",
            "7 B  \"<empty>\"",
            "2 B  hex 00ff",
            "8 B  \"hex 00ff\"",
            "7 B  \"hi\\u{1b}[2J\\n\"",
            "7 B  \"say \\\"x\\\"\"",
        ]
    );
}

/// A text with one invalid byte stays text, with the byte written `\xff`;
/// a text cut mid-character by `--max-size` stays text, its cut character
/// escaped; a long text's preview is cut between characters, never through
/// one.
#[test]
fn mostly_text_stays_text_and_cuts_fall_between_characters() {
    let long = "你".repeat(1000); // 3000 bytes
    let lines = show(
        &[b"hello\xffworld", long.as_bytes()],
        &["--max-size", "1000"],
    );
    assert_eq!(lines[0], "11 B  \"hello\\xffworld\"");
    // 1000 bytes: 333 whole characters and the first byte of the next.
    let truncated = if has("true_length") {
        "[truncated: 3000 B sent, 2000 B lost]"
    } else {
        "[truncated]"
    };
    assert_eq!(
        lines[1],
        format!("1000 B {truncated}  \"{}\\xe4\"", "你".repeat(333))
    );

    let lines = show(&[long.as_bytes()], &[]);
    // The 1024-byte preview holds 341 characters (1023 bytes).
    assert_eq!(
        lines[0],
        format!("3000 B  \"{}\"… (+1977 B)", "你".repeat(341))
    );
    assert!(!lines[0].contains('\u{fffd}'));
}

/// Invisible characters are escaped by their Unicode class: tag
/// characters, the Hangul fillers, variation selectors, zero-width and
/// bidirectional controls.
#[test]
fn invisible_characters_are_escaped() {
    let text = "a\u{e0041}\u{e0042}b\u{3164}c\u{115f}d\u{fe0f}e\u{200b}f\u{202e}g";
    let lines = show(&[text.as_bytes()], &[]);
    assert_eq!(
        lines[0],
        format!(
            "{} B  \"a\\u{{e0041}}\\u{{e0042}}b\\u{{3164}}c\\u{{115f}}d\\u{{fe0f}}e\\u{{200b}}f\\u{{202e}}g\"",
            text.len()
        )
    );
}
