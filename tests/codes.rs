//! `dgram chat --code`: short codes are checked as the command line is
//! read (usage errors, status 2, saying what is wrong), and two chats
//! given the same code talk in a secure session.

use std::net::SocketAddr;

use crate::util::{Proc, Relay, run};

/// Runs dgram with `args` and checks that it exits with `status` and one
/// line on stderr holding each of `messages`, nothing on stdout, no panic.
/// Returns stderr.
fn refused(args: &[&str], status: i32, messages: &[&str]) -> String {
    let proc = run(args);
    let stderr = proc.stderr();
    assert_eq!(proc.code(), Some(status), "{}", proc.dump());
    for message in messages {
        assert!(
            stderr.contains(message),
            "expected {message:?}\n{}",
            proc.dump()
        );
    }
    assert!(!stderr.contains("panicked"), "{}", proc.dump());
    assert!(proc.stdout().is_empty(), "{}", proc.dump());
    stderr
}

/// A code with a word that is not in the list is a usage error naming
/// the word (escaped when it holds a control character), with the list
/// words close to it.
#[test]
fn a_code_with_an_unknown_word_exits_2_naming_it() {
    refused(
        &["chat", "--peer", "127.0.0.1:9", "--code", "7-bogus-word"],
        2,
        &["--code", "word 1, \"bogus\", is not in the word list"],
    );
    refused(
        &[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--code",
            "7 clokwork crossover",
        ],
        2,
        &["word 1, \"clokwork\", is not in the word list; did you mean clockwork?"],
    );
    let stderr = refused(
        &[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--code",
            "7-clock\x1b[2Jwork-crossover",
        ],
        2,
        &["word 1, \"clock\\u{1b}[2Jwork\", is not in the word list"],
    );
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

/// `--code` sets up its own secure session: with `--key-file` (either
/// way round, with or without a value) it is a usage error saying the two
/// cannot be used together.
#[test]
fn a_code_with_a_key_file_exits_2() {
    for args in [
        &[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--code",
            "--key-file",
            "team.key",
        ][..],
        &[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--key-file",
            "team.key",
            "--code",
            "7-clockwork-crossover",
        ],
    ] {
        refused(args, 2, &["--code", "--key-file", "cannot be used with"]);
    }
}

/// Two chats given the same code (written two ways: digits, case and
/// separators as people type them) open a secure session and exchange a
/// message each way, both delivered and shown on the other side.
#[test]
fn two_chats_with_the_same_given_code_exchange_a_message() {
    let mut relay = Relay::new();
    let mut chats = Vec::new();
    for (side, (name, code)) in [
        ("ann", "7-clockwork-crossover-ragtime"),
        ("bob", "007 Clockwork crossover RAGTIME"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut chat = Proc::dgram(&[
            "chat",
            "--bind",
            "127.0.0.1:0",
            "--peer",
            &relay.addr(side).to_string(),
            "--code",
            code,
            "--name",
            name,
            "--json",
            "--no-history",
            "--linger",
            "200",
        ]);
        let local: SocketAddr = chat.expect("listening")["local"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        chats.push((chat, local, name));
    }
    relay.start([chats[0].1, chats[1].1]);
    for (chat, _, name) in &mut chats {
        chat.write_line(&format!("hello from {name}"));
    }
    for (chat, _, _) in &mut chats {
        let receipt = chat.next("receipt");
        assert_eq!(receipt["status"], "delivered", "{}", chat.dump());
    }
    for side in 0..2 {
        let (chat, _, _) = &mut chats[side];
        chat.close_stdin();
        chat.finish();
        assert!(chat.finish_ok(), "{}", chat.dump());
        let shown: Vec<String> = chat
            .events("message")
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        let other = chats[1 - side].2;
        assert_eq!(
            shown,
            [format!("hello from {other}")],
            "{}",
            chats[side].0.dump()
        );
        assert_eq!(
            chats[side].0.first_event("session_opened")["method"],
            "code"
        );
    }
}
