//! `dgram chat` driven as a person would: in pseudo-terminals (rexpect),
//! through a pipe, and against a peer that is down.

use std::process::Command;

use rexpect::process::Signal;

use crate::util::{Peer, Proc, Pty, closed_port, dgram_path, has, listener, stop, temp_path};

/// Two chats in pseudo-terminals talk: what B types appears on A's screen
/// above its prompt with B's address; a message arriving while B has a
/// half-typed line leaves that line intact and still sendable; `/empty`
/// arrives as an empty datagram; `/rcvbuf` changes the effective size that
/// `/buf` shows; `/quit` exits 0, SIGTERM exits 0 with the summary, and
/// both history files hold the lines typed.
#[test]
fn two_chats_talk_in_pseudo_terminals() {
    let history_a = temp_path("history-a");
    let history_b = temp_path("history-b");
    let mut a = Pty::dgram(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--history",
            history_a.to_str().unwrap(),
            "--name",
            "alice",
        ],
        "xterm",
    );
    let a_addr = a.bound_addr();
    a.expect("(no peer: /to ADDR)> ");
    let mut b = Pty::dgram(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--peer",
            &a_addr.to_string(),
            "--history",
            history_b.to_str().unwrap(),
            "--name",
            "bob",
        ],
        "xterm",
    );
    let b_addr = b.bound_addr();
    b.expect(&format!("{a_addr}> "));

    b.type_line("hello from b");
    a.expect(&format!("bob ({b_addr})  #1  \"hello from b\""));
    b.expect(&format!("-> {a_addr}  #1  \"hello from b\"  ok "));
    a.type_line("/reply");
    a.expect(&format!("talking to {b_addr}"));
    a.expect(&format!("bob ({b_addr})> "));

    // B starts a line; A's message arrives before B presses Enter.
    b.type_text("half typed");
    b.expect("half typed");
    a.type_line("interruption");
    b.expect(&format!("alice ({a_addr})  #1  \"interruption\""));
    b.expect("half typed"); // repainted under the message
    b.type_line(" and finished");
    a.expect(&format!("bob ({b_addr})  #2  \"half typed and finished\""));

    b.type_line("/empty");
    a.expect(&format!("{b_addr}  0 B  <empty>"));

    a.type_line("/rcvbuf 65536");
    a.expect("SO_RCVBUF: requested 65536, effective 131072");
    a.type_line("/buf");
    a.expect("SO_RCVBUF: requested 65536, effective 131072");

    a.type_line("/pending");
    a.expect("no messages waiting for receipts");
    a.type_line("/peers");
    a.expect("messages in 2: lost 0, reordered 0, duplicates 0");
    a.expect("messages out 1: delivered 1, failed 0");
    a.type_line("/quit");
    // Two messages, the empty datagram and the receipt for "interruption".
    a.expect("summary: received 4 datagrams");
    a.expect("messages out 1 (delivered 1, failed 0, late 0");
    assert_eq!(a.finish(), Some(0), "{}", a.transcript);

    // SIGTERM while B is in the middle of a line.
    b.type_text("never sent");
    b.expect("never sent");
    b.session.process_mut().signal(Signal::SIGTERM).unwrap();
    b.expect("summary: received 3 datagrams");
    assert_eq!(b.finish(), Some(0), "{}", b.transcript);
    assert!(b.transcript.contains("\x1b[?2004l"), "terminal put back");

    let history = std::fs::read_to_string(&history_a).unwrap();
    for line in [
        "/reply",
        "interruption",
        "/rcvbuf 65536",
        "/buf",
        "/peers",
        "/quit",
    ] {
        assert!(
            history.lines().any(|l| l == line),
            "{line:?} not in A's history:\n{history}"
        );
    }
    let history = std::fs::read_to_string(&history_b).unwrap();
    for line in ["hello from b", "half typed and finished", "/empty"] {
        assert!(
            history.lines().any(|l| l == line),
            "{line:?} not in B's history:\n{history}"
        );
    }
    assert!(!history.contains("never sent"));
}

/// Typing to a peer whose port is closed: one report, not one per message
/// (where the platform hears ICMP errors), each message fails (at once on
/// the refusal, else after its one try with `--retries 0`), and the REPL
/// stays usable: a payload over the UDP
/// limit is refused with a message, commands answer, `/pending` lists
/// what waits, Ctrl-D leaves with status 0, the summary counts every
/// refusal and both failures.
#[test]
fn chat_with_a_downed_peer_reports_once_and_goes_on() {
    let peer = closed_port();
    let mut chat = Pty::dgram(
        &[
            "chat",
            "--peer",
            &peer.to_string(),
            "--no-history",
            "--retries",
            "0",
        ],
        "xterm",
    );
    chat.expect(&format!("{peer}> "));
    chat.type_line("anyone there?");
    if has("icmp_errors") {
        chat.expect(&format!("nothing is listening at {peer}"));
    }
    // Where the platform hears the refusal, the message fails at once;
    // elsewhere after its one try.
    let why = if has("icmp_errors") {
        "nothing is listening there (ICMP port unreachable; 1 try sent)"
    } else {
        "no receipt after 1 try"
    };
    chat.expect(&format!("#1 to {peer} failed: {why}  \"anyone there?\""));
    chat.type_line("still nobody?");
    chat.expect(&format!("#2 to {peer} failed: {why}"));
    chat.type_line("/size 65510");
    chat.expect("over the 65507-byte limit");
    chat.expect(&format!("{peer}> "));
    chat.type_line("/stats");
    chat.expect("stats: received 0 datagrams");
    chat.expect(&format!("{peer}> "));
    chat.type_line("/pending");
    chat.expect("no messages waiting for receipts");
    chat.session.send_control('d').unwrap();
    let refusals = if has("icmp_errors") { 2 } else { 0 };
    chat.expect(
        "summary: received 0 datagrams (0 B; 0 empty, 0 truncated), kernel dropped 0, sent 2 (",
    );
    chat.expect(&format!(
        "unreachable reports {refusals}; messages out 2 (delivered 0, failed 2"
    ));
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(
        chat.transcript.matches("nothing is listening at").count(),
        usize::from(has("icmp_errors")),
        "{}",
        chat.transcript
    );
}

/// `printf 'a\n\nb\n' | dgram chat --peer …` sends exactly three
/// messages, the middle one empty (from a pipe an empty line is an empty
/// message), each delivered (the listener acknowledges them), reported as
/// JSON `receipt` events; it exits 0 and writes no escape sequence.
#[test]
fn piped_chat_sends_one_datagram_per_line() {
    let (mut echo, addr) = listener(&["--echo"]);
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &addr.to_string(),
        "--json",
        "--no-history",
        "--linger",
        "0",
    ]);
    chat.write_line("a");
    chat.write_line("");
    chat.write_line("b");
    chat.close_stdin();
    for text in ["a", "", "b"] {
        let seen = echo.next("message");
        assert_eq!(seen["text"], text, "{seen}");
    }
    assert!(chat.finish().success(), "{}", chat.dump());
    let receipts: Vec<_> = chat
        .events("receipt")
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["status"].clone()))
        .collect();
    assert_eq!(
        receipts,
        [
            (1, "delivered".into()),
            (2, "delivered".into()),
            (3, "delivered".into())
        ],
        "{}",
        chat.dump()
    );
    let summary = chat.first_event("summary");
    assert_eq!(
        (summary["sent"].as_u64(), summary["delivered"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(!chat.stdout().contains('\x1b'), "{}", chat.dump());
    assert_eq!(stop(&mut echo)["received"], 3);
}

/// A line piped into a chat that cannot go out fails the chat (exit 1),
/// as a line too long does: with no peer to send to, and when the kernel
/// refuses the send (a broadcast address, without `SO_BROADCAST`; nothing
/// leaves loopback). Each line is named on stderr, and the error counts
/// them, and the banner does not offer `/to`, which a pipe does not have.
/// Before, both ended with status 0, a silent loss to a script.
#[test]
fn piped_lines_that_cannot_go_out_fail_the_chat() {
    for (args, reason) in [
        (&["chat", "--bind", "127.0.0.1:0"][..], "no peer"),
        (
            &["chat", "--peer", "127.255.255.255:9"][..],
            "Permission denied",
        ),
    ] {
        let mut args = args.to_vec();
        args.extend(["--no-history", "--linger", "0"]);
        let mut chat = Proc::dgram(&args);
        chat.write_line("one");
        chat.write_line("two");
        chat.close_stdin();
        assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
        let stderr = chat.stderr();
        for number in [1, 2] {
            assert!(
                stderr.contains(&format!("line {number} not sent: ")) && stderr.contains(reason),
                "{}",
                chat.dump()
            );
        }
        assert!(
            stderr.contains("error: 2 lines of input were not sent; each is reported above"),
            "{}",
            chat.dump()
        );
        // A pipe has no /commands: the banner does not offer /to.
        assert!(!chat.stdout().contains("/to ADDR"), "{}", chat.dump());
    }
}

/// `/to` the chat's own address is refused with one line and the peer
/// stays as it was (it used to be taken, and each message then came back
/// to the chat itself and failed after its tries).
#[test]
fn to_own_address_is_refused() {
    let mut chat = Pty::dgram(&["chat", "--bind", "127.0.0.1:0", "--no-history"], "dumb");
    let own = chat.bound_addr();
    chat.type_line(&format!("/to {own}"));
    chat.expect("is this socket's own address");
    chat.type_line("/to 127.0.0.1:9");
    chat.expect("talking to 127.0.0.1:9");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0));
}

/// With `TERM=dumb` a terminal gets plain lines (no line editor, no escape
/// sequence), each line typed is still one datagram, and `/commands` are
/// commands: `/stats` answers, `/quit` leaves and is never sent.
#[test]
fn dumb_terminal_gets_plain_lines_and_commands() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = Pty::dgram(
        &["chat", "--peer", &addr.to_string(), "--no-history"],
        "dumb",
    );
    chat.expect("type a message and press Enter; /help lists commands");
    chat.type_line("plain");
    assert_eq!(echo.next("message")["text"], "plain");
    chat.expect("#1  \"plain\"  ok ");
    chat.type_line("/stats");
    // The one datagram received is the message's receipt.
    chat.expect("stats: received 1 datagram");
    chat.expect("messages out 1 (delivered 1");
    chat.type_line("/quit");
    chat.expect("summary:");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert!(!chat.transcript.contains('\x1b'), "{:?}", chat.transcript);
    let summary = stop(&mut echo);
    assert_eq!(summary["received"], 1, "/quit was not sent: {summary}");
}

/// `scripts/chat-demo.sh` runs two chats side by side in tmux, types into
/// them as a person would and prints both screens: each screen shows what
/// the other typed, with the sender's name and address, each message sent
/// on one line with its receipt, the empty datagram, and, once Bob has
/// left, Alice's last message failing at once (Bob's closed port answers
/// ICMP port unreachable), with `/peers` counting it.
#[test]
fn chat_demo_script_shows_both_screens() {
    assert!(
        crate::util::have("tmux"),
        "tmux is missing: run scripts/setup-test-deps.sh"
    );
    let output = Command::new("bash")
        .arg("scripts/chat-demo.sh")
        .env("DGRAM", dgram_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let (alice, bob) = stdout
        .split_once("=== bob's screen")
        .unwrap_or_else(|| panic!("two screens expected:\n{stdout}"));
    assert!(alice.contains("#1  \"hi alice, bob here\""), "{alice}");
    assert!(
        alice.contains("#1  \"hello bob! sending you an empty datagram\"  ok "),
        "{alice}"
    );
    assert!(
        alice.contains("#2 to bob (127.0.0.1:")
            && alice.contains(if has("icmp_errors") {
                "failed: nothing is listening there (ICMP port unreachable"
            } else {
                "failed: no receipt after 5 tries"
            }),
        "{alice}"
    );
    assert!(
        alice.contains("messages out 2: delivered 1, failed 1"),
        "{alice}"
    );
    assert!(
        bob.contains("#1  \"hello bob! sending you an empty datagram\""),
        "{bob}"
    );
    assert!(bob.contains("0 B  <empty>"), "{bob}");
    assert!(
        bob.contains("\"got it: 0 bytes, still a datagram. bye!\"  ok "),
        "{bob}"
    );
}

/// A message to a peer that never answers (a socket that reads and says
/// nothing, so no ICMP either) waits for its receipt: its line shows
/// `(no receipt yet)`, the next prompt counts it, `/pending` lists it with
/// its tries, the peer gets it again (the same number, the next try), and
/// leaving reports it failed because the chat ended first.
#[test]
fn a_message_without_receipt_is_pending_until_the_chat_ends() {
    let silent = Peer::bind();
    let peer = silent.addr();
    let mut chat = Pty::dgram(
        &[
            "chat",
            "--peer",
            &peer.to_string(),
            "--no-history",
            "--name",
            "al",
        ],
        "xterm",
    );
    chat.expect(&format!("{peer}> "));
    chat.type_line("hello?");
    let first = silent.recv();
    chat.expect(&format!("-> {peer}  #1  \"hello?\"  (no receipt yet)"));
    chat.expect(&format!("{peer} [1 waiting]> "));
    chat.type_line("/pending");
    chat.expect("1 message waiting for receipts:");
    chat.expect(&format!("#1 to {peer}: "));
    // The second try: the same envelope but for its try byte.
    let second = silent.recv();
    assert_eq!(first.len(), second.len());
    let try_at = 3 + 8 + 1;
    assert_eq!((first[try_at], second[try_at]), (1, 2));
    assert_eq!(first[..try_at], second[..try_at]);
    assert_eq!(first[try_at + 1..], second[try_at + 1..]);
    chat.session.send_control('d').unwrap();
    // Two tries at least went out (a third may have, on a slow machine).
    chat.expect(&format!(
        "!! #1 to {peer} failed: the chat ended before its receipt came ("
    ));
    chat.expect("messages out 1 (delivered 0, failed 1, late 0, retransmissions ");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}
