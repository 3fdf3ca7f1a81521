//! `dgram chat` driven as a person would: in pseudo-terminals (rexpect),
//! through a pipe, and against a peer that is down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use rexpect::process::{Signal, WaitStatus};
use rexpect::session::{PtySession, spawn_command};

use crate::util::{DEADLINE, Proc, closed_port, dgram_path, listener, stop};

/// A chat in a pseudo-terminal, with everything it printed kept for
/// failure messages and counting.
struct Pty {
    session: PtySession,
    transcript: String,
}

impl Pty {
    /// Starts `dgram ARGS…` in a pseudo-terminal with `TERM`.
    fn start(args: &[&str], term: &str) -> Pty {
        let mut command = Command::new(dgram_path());
        command.args(args).env("TERM", term);
        let session = spawn_command(command, Some(DEADLINE.as_millis() as u64))
            .unwrap_or_else(|e| panic!("cannot start dgram {args:?} in a pty: {e}"));
        Pty {
            session,
            transcript: String::new(),
        }
    }

    /// Waits for `text` on the screen.
    fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(text);
            }
            Err(e) => panic!(
                "waiting for {text:?}: {e}\n--- screen so far:\n{}\n---",
                self.transcript
            ),
        }
    }

    /// Waits for the `chat on ADDR` banner and returns ADDR.
    fn bound_addr(&mut self) -> SocketAddr {
        let (before, found) = self
            .session
            .exp_regex(r"chat on [0-9.]+:[0-9]+")
            .unwrap_or_else(|e| panic!("no banner: {e}\n{}", self.transcript));
        self.transcript.push_str(&before);
        self.transcript.push_str(&found);
        found.trim_start_matches("chat on ").parse().unwrap()
    }

    /// Types `text` without pressing Enter.
    fn type_text(&mut self, text: &str) {
        self.session.send(text).unwrap();
        self.session.flush().unwrap();
    }

    /// Types `line` and presses Enter.
    fn type_line(&mut self, line: &str) {
        self.session.send_line(line).unwrap();
    }

    /// Waits for the end of output and returns the exit code.
    fn finish(&mut self) -> Option<i32> {
        let rest = self
            .session
            .exp_eof()
            .unwrap_or_else(|e| panic!("no exit: {e}\n{}", self.transcript));
        self.transcript.push_str(&rest);
        match self.session.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        }
    }
}

/// A history file path in a fresh temporary directory.
fn history_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dgram-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("history")
}

/// Two chats in pseudo-terminals talk: what B types appears on A's screen
/// above its prompt with B's address; a message arriving while B has a
/// half-typed line leaves that line intact and still sendable; `/empty`
/// arrives as an empty datagram; `/rcvbuf` changes the effective size that
/// `/buf` shows; `/quit` exits 0, SIGTERM exits 0 with the summary, and
/// both history files hold the lines typed.
#[test]
fn two_chats_talk_in_pseudo_terminals() {
    let history_a = history_file("a");
    let history_b = history_file("b");
    let mut a = Pty::start(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--history",
            history_a.to_str().unwrap(),
        ],
        "xterm",
    );
    let a_addr = a.bound_addr();
    a.expect("(no peer: /to ADDR)> ");
    let mut b = Pty::start(
        &[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--peer",
            &a_addr.to_string(),
            "--history",
            history_b.to_str().unwrap(),
        ],
        "xterm",
    );
    let b_addr = b.bound_addr();
    b.expect(&format!("{a_addr}> "));

    b.type_line("hello from b");
    a.expect(&format!("{b_addr}  12 B  hello from b"));
    a.type_line("/reply");
    a.expect(&format!("talking to {b_addr}"));
    a.expect(&format!("{b_addr}> "));

    // B starts a line; A's message arrives before B presses Enter.
    b.type_text("half typed");
    b.expect("half typed");
    a.type_line("interruption");
    b.expect(&format!("{a_addr}  12 B  interruption"));
    b.expect("half typed"); // repainted under the message
    b.type_line(" and finished");
    a.expect(&format!("{b_addr}  23 B  half typed and finished"));

    b.type_line("/empty");
    a.expect(&format!("{b_addr}  0 B  <empty>"));

    a.type_line("/rcvbuf 65536");
    a.expect("SO_RCVBUF: requested 65536, effective 131072");
    a.type_line("/buf");
    a.expect("SO_RCVBUF: requested 65536, effective 131072");

    a.type_line("/quit");
    a.expect("summary: received 3 datagrams (35 B; 1 empty, 0 truncated)");
    assert_eq!(a.finish(), Some(0), "{}", a.transcript);

    // SIGTERM while B is in the middle of a line.
    b.type_text("never sent");
    b.expect("never sent");
    b.session.process_mut().signal(Signal::SIGTERM).unwrap();
    b.expect("summary: received 1 datagram");
    assert_eq!(b.finish(), Some(0), "{}", b.transcript);
    assert!(b.transcript.contains("\x1b[?2004l"), "terminal put back");

    let history = std::fs::read_to_string(&history_a).unwrap();
    for line in ["/reply", "interruption", "/rcvbuf 65536", "/buf", "/quit"] {
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

/// Typing to a peer whose port is closed: one report, not one per message,
/// and the REPL stays usable (a payload over the UDP limit is refused with
/// a message, commands answer, Ctrl-D leaves with status 0, the summary
/// counts every refusal).
#[test]
fn chat_with_a_downed_peer_reports_once_and_goes_on() {
    let peer = closed_port();
    let mut chat = Pty::start(
        &["chat", "--peer", &peer.to_string(), "--no-history"],
        "xterm",
    );
    chat.expect(&format!("{peer}> "));
    chat.type_line("anyone there?");
    chat.expect(&format!("nothing is listening at {peer}"));
    chat.expect(&format!("{peer}> "));
    chat.type_line("still nobody?");
    chat.expect(&format!("{peer}> "));
    chat.type_line("/size 70000");
    chat.expect("over the 65507-byte limit");
    chat.expect(&format!("{peer}> "));
    chat.type_line("/stats");
    chat.expect("stats: received 0 datagrams");
    chat.expect(&format!("{peer}> "));
    chat.session.send_control('d').unwrap();
    chat.expect("summary: received 0 datagrams (0 B; 0 empty, 0 truncated), kernel dropped 0, sent 2 (26 B), unreachable reports 2");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(
        chat.transcript.matches("nothing is listening at").count(),
        1,
        "{}",
        chat.transcript
    );
}

/// `printf 'a\n\nb\n' | dgram chat --peer …` sends exactly three
/// datagrams, the middle one empty, prints the echoes that come back within
/// the linger time as JSON events, and writes no escape sequence.
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
        "3000",
    ]);
    chat.write_line("a");
    chat.write_line("");
    chat.write_line("b");
    chat.close_stdin();
    for text in ["a", "", "b"] {
        let seen = echo.next("datagram");
        assert_eq!(seen["text"], text, "{seen}");
    }
    assert!(chat.finish().success(), "{}", chat.dump());
    let echoes: Vec<_> = chat
        .events("datagram")
        .iter()
        .map(|e| e["text"].clone())
        .collect();
    assert_eq!(echoes, ["a", "", "b"], "{}", chat.dump());
    assert_eq!(chat.first_event("summary")["sent"], 3);
    assert!(!chat.stdout().contains('\x1b'), "{}", chat.dump());
    assert_eq!(stop(&mut echo)["received"], 3);
}

/// With `TERM=dumb` a terminal gets plain lines too: no line editor, no
/// escape sequence, and each line typed is still one datagram.
#[test]
fn dumb_terminal_gets_plain_lines() {
    let (mut echo, addr) = listener(&[]);
    let mut chat = Pty::start(
        &["chat", "--peer", &addr.to_string(), "--no-history"],
        "dumb",
    );
    chat.expect("each line of input is one datagram");
    chat.type_line("plain");
    assert_eq!(echo.next("datagram")["text"], "plain");
    chat.session.send_control('d').unwrap();
    chat.expect("summary:");
    chat.finish();
    assert!(!chat.transcript.contains('\x1b'), "{:?}", chat.transcript);
}

/// `scripts/chat-demo.sh` runs two chats side by side in tmux, types into
/// them as a person would and prints both screens: each screen shows what
/// the other typed, with the sender's address, and the empty datagram.
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
    assert!(alice.contains("18 B  hi alice, bob here"), "{alice}");
    assert!(alice.contains("stats: received 2 datagrams"), "{alice}");
    assert!(
        bob.contains("40 B  hello bob! sending you an empty datagram"),
        "{bob}"
    );
    assert!(bob.contains("0 B  <empty>"), "{bob}");
}
