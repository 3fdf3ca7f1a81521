//! What a person types into `dgram chat`, and how it becomes datagrams:
//! type-ahead and pastes, empty lines, commands when stdout is piped,
//! sizes and addresses refused at the prompt, Ctrl-C, history problems.

use std::process::Command;

use crate::util::{Peer, Pty, dgram_path, listener, stop, temp_path};

/// Starts an editor chat (TERM=xterm) talking to `peer`, without history,
/// and waits for its prompt.
fn chat_with(peer: &str) -> Pty {
    let mut chat = Pty::dgram(&["chat", "--peer", peer, "--no-history"], "xterm");
    chat.expect(&format!("{peer}> "));
    chat
}

/// Four lines typed faster than the prompt comes back (one write to the
/// terminal, as `tmux send-keys` of four lines does) become four datagrams,
/// in order; none is lost.
#[test]
fn type_ahead_lines_are_all_sent() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_text("line one\rline two\rline three\rline four\r");
    for text in ["line one", "line two", "line three", "line four"] {
        assert_eq!(echo.next("message")["text"], text);
    }
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(stop(&mut echo)["received"], 4);
}

/// A bracketed paste of three lines (with `\r` line ends, as terminals
/// send them) becomes three datagrams, not one with embedded newlines; a
/// blank line inside the paste sends nothing, and says nothing.
#[test]
fn pasted_lines_are_one_datagram_each() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_text("\x1b[200~alpha\rbeta\r\r\ngamma\r\x1b[201~");
    chat.type_text("\r");
    for text in ["alpha", "beta", "gamma"] {
        assert_eq!(echo.next("message")["text"], text);
    }
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(stop(&mut echo)["received"], 3);
    assert!(
        !chat.transcript.contains("an empty line sends nothing"),
        "{}",
        chat.transcript
    );
}

/// A line that is not UTF-8 (a Latin-1 terminal's "café": `caf`, byte
/// e9, Enter) is refused at the prompt with one line, and the chat goes
/// on: the next line typed is sent, and `/quit` ends it with status 0.
#[test]
fn a_line_that_is_not_utf8_is_refused_and_the_chat_goes_on() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_bytes(b"caf\xe9\r");
    chat.expect("not sent: that line is not UTF-8");
    chat.type_line("after");
    assert_eq!(echo.next("message")["text"], "after");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(stop(&mut echo)["received"], 1);
}

/// At a terminal, Enter on an empty line sends nothing (it would end an
/// `nc -u -l` peer by accident) and says once how to send an empty
/// datagram; `/empty` sends one on purpose.
#[test]
fn empty_enter_sends_nothing_but_empty_command_does() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_line("");
    chat.expect("an empty line sends nothing; /empty sends an empty datagram");
    chat.type_line("");
    chat.type_line("after");
    assert_eq!(echo.next("message")["text"], "after");
    chat.type_line("/empty");
    assert_eq!(echo.next("datagram")["len"], 0);
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(stop(&mut echo)["received"], 2);
    assert_eq!(
        chat.transcript
            .matches("an empty line sends nothing")
            .count(),
        1
    );
}

/// `/empty`, `/size N` and `/hex …` each put a line on the sender's screen
/// saying what went out: its length and destination, and that it is a
/// plain datagram without a receipt.
#[test]
fn plain_sends_say_what_went_where() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_line("/empty");
    chat.expect(&format!(
        "-> {addr}  0 B  <empty>  (plain datagram: no receipt)"
    ));
    assert_eq!(echo.next("datagram")["len"], 0);
    chat.type_line("/size 10");
    chat.expect(&format!(
        "-> {addr}  10 B  \"0123456789\"  (plain datagram: no receipt)"
    ));
    assert_eq!(echo.next("datagram")["len"], 10);
    chat.type_line("/hex 00ff10");
    chat.expect(&format!("-> {addr}  3 B  "));
    chat.expect("(plain datagram: no receipt)");
    assert_eq!(echo.next("datagram")["len"], 3);
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}

/// `/plain` and `/dgram` are the user's choice and say so, naming the
/// peer ("treating … (your choice: /plain)"); they do not read as news
/// from the peer ("… speaks dgram").
#[test]
fn plain_and_dgram_say_they_are_your_choice() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_line("/plain");
    chat.expect(&format!(
        "treating {addr} as a plain UDP peer (your choice: /plain)"
    ));
    chat.type_line("as typed");
    assert_eq!(echo.next("datagram")["text"], "as typed");
    chat.type_line("/dgram");
    chat.expect(&format!(
        "treating {addr} as a dgram peer (your choice: /dgram): messages to it go in envelopes and wait for receipts"
    ));
    chat.type_line("enveloped");
    assert_eq!(echo.next("message")["text"], "enveloped");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert!(!chat.transcript.contains(" speaks "), "{}", chat.transcript);
}

/// With stdin a terminal but stdout piped (`dgram chat … | cat`),
/// `/commands` still work: `/stats` answers and `/quit` leaves, and
/// neither is sent to the peer; what is typed otherwise is sent.
#[test]
fn commands_work_with_stdout_piped() {
    let (mut echo, addr) = listener(&[]);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "'{}' chat --peer {addr} --no-history | cat",
            dgram_path()
        ))
        .env("TERM", "xterm");
    let mut chat = Pty::start(command);
    chat.expect("type a message and press Enter; /help lists commands");
    chat.type_line("through a pipe");
    assert_eq!(echo.next("message")["text"], "through a pipe");
    chat.type_line("/stats");
    // The one datagram received is the message's receipt.
    chat.expect("stats: received 1 datagram");
    chat.type_line("/quit");
    chat.expect("summary:");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(stop(&mut echo)["received"], 1, "only the message was sent");
}

/// Sizes are checked before anything is allocated: `/size 1000000000000`
/// and `/burst 2 4G` are refused with the limits, and the chat goes on
/// (the next `/size` arrives).
#[test]
fn huge_sizes_are_refused_at_the_prompt() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_line("/size 1000000000000");
    chat.expect("1000000000000 bytes do not fit in one datagram");
    chat.type_line("/burst 2 4G");
    chat.expect("4294967296 bytes do not fit in one datagram");
    chat.type_line("/size 10");
    assert_eq!(echo.next("datagram")["text"], "0123456789");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}

/// `/to` refuses an IPv6 address without brackets (showing the bracketed
/// form) and a peer of the other family (an IPv4 chat cannot reach
/// `[::1]`), with one line each; the current peer stays.
#[test]
fn to_refuses_ambiguous_and_other_family_addresses() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.type_line("/to ::1:9120");
    chat.expect("write an IPv6 address in brackets, as in [::1]:9120");
    chat.type_line("/to [::1]:9120");
    chat.expect("cannot reach IPv6 address [::1]:9120 from the IPv4 address 0.0.0.0:");
    chat.type_line("still here");
    assert_eq!(echo.next("message")["text"], "still here");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}

/// Ctrl-C on an empty prompt says how to leave, and the chat goes on.
#[test]
fn ctrl_c_on_an_empty_prompt_says_how_to_leave() {
    let (_echo, addr) = listener(&[]);
    let mut chat = chat_with(&addr.to_string());
    chat.session.send_control('c').unwrap();
    chat.expect("(to leave: /quit or Ctrl-D");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}

/// Ctrl-C during a long `/burst` stops the burst, not the chat: it says how
/// many went out, the prompt comes back, and the chat goes on.
#[test]
fn ctrl_c_stops_a_burst_and_the_chat_goes_on() {
    // A socket nobody reads: the kernel drops what does not fit, and no
    // ICMP error comes back.
    let sink = Peer::bind();
    let mut chat = chat_with(&sink.addr().to_string());
    chat.type_line("/burst 1000000 60000");
    // The burst is under way once a datagram has arrived.
    assert_eq!(sink.recv().len(), 60000);
    chat.session.send_control('c').unwrap();
    chat.expect("burst interrupted: sent ");
    chat.expect(" of 1000000 datagrams of 60000 B");
    chat.expect(&format!("{}> ", sink.addr()));
    chat.type_line("/stats");
    chat.expect("stats: received 0 datagrams");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
}

/// A history file that is not UTF-8, or that is a directory, is a one-line
/// warning (its cause said once) and the chat starts without history.
#[test]
fn unusable_history_is_a_warning() {
    let (_echo, addr) = listener(&[]);
    let binary = temp_path("history-binary");
    std::fs::write(&binary, b"\xff\xfe not utf-8 \x80\n").unwrap();
    let directory = temp_path("history-dir");
    std::fs::create_dir_all(&directory).unwrap();
    for (path, cause) in [
        (&binary, "valid UTF-8"),
        (&directory, "it is a directory, not a regular file"),
    ] {
        let mut chat = Pty::dgram(
            &[
                "chat",
                "--peer",
                &addr.to_string(),
                "--history",
                path.to_str().unwrap(),
            ],
            "xterm",
        );
        chat.expect(&format!(
            "warning: could not load the history file {}",
            path.display()
        ));
        chat.expect("the chat goes on without history");
        chat.expect(&format!("{addr}> "));
        chat.type_line("/quit");
        assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
        assert_eq!(
            chat.transcript.matches(cause).count(),
            1,
            "{}",
            chat.transcript
        );
    }
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        b"\xff\xfe not utf-8 \x80\n",
        "a file dgram could not read is left as it was"
    );
}
