//! What a line typed into `dgram chat` means: a message, or a `/command`.
//!
//! Parsing is kept apart from running so that it can be tested on its own
//! and so that completion and `/help` read from the same table.

use std::net::SocketAddr;

use crate::cmd::parse;

/// The chat commands, their arguments and what they do: the source of
/// `/help` and of tab completion.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "/empty",
        "",
        "send an empty datagram (plain, outside the chat protocol)",
    ),
    ("/size", " N", "send an N-byte plain datagram (0123456789…)"),
    (
        "/hex",
        " HEX",
        "send raw bytes written in hex (00ff10, 00 ff 10)",
    ),
    (
        "/burst",
        " N [SIZE]",
        "send N datagrams of SIZE bytes (default 32) back to back",
    ),
    ("/to", " ADDR", "talk to another peer from now on"),
    ("/reply", "", "talk to whoever sent the last datagram"),
    (
        "/pending",
        "",
        "messages still waiting for their receipts, with their tries",
    ),
    (
        "/plain",
        "",
        "send to the current peer as plain bytes, without receipts",
    ),
    (
        "/dgram",
        "",
        "send to the current peer in envelopes, with receipts",
    ),
    (
        "/peers",
        "",
        "everyone heard from or sent to: counts, loss, round trips, last heard",
    ),
    (
        "/verify",
        "",
        "in a keyed chat: words from the session's keys, the same on both screens unless someone sits in between",
    ),
    (
        "/path",
        "",
        "with --via: the path found, every candidate tried and what it did",
    ),
    (
        "/members",
        "",
        "in a group: its members, their addresses, when last heard",
    ),
    (
        "/why",
        "",
        "in a group: interface, TTL, membership and route (when nobody answers)",
    ),
    (
        "/buf",
        "",
        "requested and effective SO_RCVBUF and SO_SNDBUF",
    ),
    ("/rcvbuf", " BYTES", "set SO_RCVBUF on the live socket"),
    ("/sndbuf", " BYTES", "set SO_SNDBUF on the live socket"),
    (
        "/stats",
        "",
        "totals: datagrams, messages, receipts, loss, kernel drops",
    ),
    ("/help", "", "this list"),
    ("/quit", "", "leave (so does Ctrl-D on an empty line)"),
];

/// The commands a keyed chat (`--key-file`) refuses: what they send would
/// go out in clear, outside the sealed protocol.
pub const IN_CLEAR: &[&str] = &["/empty", "/size", "/hex", "/burst", "/plain"];

/// The default payload size of `/burst`.
pub const DEFAULT_BURST_SIZE: usize = 32;

/// The most datagrams one `/burst` sends.
pub const MAX_BURST: u64 = 1_000_000;

/// A line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Send these bytes as one datagram. A line that starts with `//` sends
    /// the rest with one `/` (so `//help` sends `/help`).
    Message(Vec<u8>),
    /// Run a command.
    Command(Command),
}

/// A chat command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/empty`
    Empty,
    /// `/size N`
    Size(usize),
    /// `/hex HEX`
    Hex(Vec<u8>),
    /// `/burst N [SIZE]`
    Burst {
        /// How many datagrams.
        count: u64,
        /// Bytes in each.
        size: usize,
    },
    /// `/to ADDR`
    To(SocketAddr),
    /// `/reply`
    Reply,
    /// `/pending`
    Pending,
    /// `/plain`
    Plain,
    /// `/dgram`
    Dgram,
    /// `/peers`
    Peers,
    /// `/verify`
    Verify,
    /// `/path`
    Path,
    /// `/members`
    Members,
    /// `/why`
    Why,
    /// `/buf`
    Buf,
    /// `/rcvbuf BYTES`
    RcvBuf(usize),
    /// `/sndbuf BYTES`
    SndBuf(usize),
    /// `/stats`
    Stats,
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

/// Understands one typed line; the error says what is wrong and what to
/// type instead.
pub fn parse(line: &str) -> Result<Input, String> {
    if let Some(rest) = line.strip_prefix("//") {
        return Ok(Input::Message(format!("/{rest}").into_bytes()));
    }
    let Some(body) = line.strip_prefix('/') else {
        return Ok(Input::Message(line.as_bytes().to_vec()));
    };
    let mut words = body.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let usage = |name: &str| {
        let (cmd, params, _) = COMMANDS
            .iter()
            .find(|(cmd, _, _)| &cmd[1..] == name)
            .expect("a known command");
        format!("usage: {cmd}{params}")
    };
    let arity = |min: usize, max: usize| {
        if args.len() < min || args.len() > max {
            Err(usage(name))
        } else {
            Ok(())
        }
    };
    let command = match name {
        "empty" => arity(0, 0).map(|_| Command::Empty)?,
        "size" => {
            arity(1, 1)?;
            Command::Size(parse::payload_size(args[0])?)
        }
        "hex" => {
            arity(1, usize::MAX)?;
            // The words stay apart: a space separates bytes.
            Command::Hex(parse::hex(&args.join(" "))?)
        }
        "burst" => {
            arity(1, 2)?;
            let count: u64 = parse::count(1, MAX_BURST)(args[0])?;
            let size = match args.get(1) {
                Some(size) => parse::payload_size(size)?,
                None => DEFAULT_BURST_SIZE,
            };
            Command::Burst { count, size }
        }
        "to" => {
            arity(1, 1)?;
            Command::To(parse::peer_addr(args[0])?)
        }
        "reply" => arity(0, 0).map(|_| Command::Reply)?,
        "pending" => arity(0, 0).map(|_| Command::Pending)?,
        "verify" => arity(0, 0).map(|_| Command::Verify)?,
        "path" => arity(0, 0).map(|_| Command::Path)?,
        "plain" => arity(0, 0).map(|_| Command::Plain)?,
        "dgram" => arity(0, 0).map(|_| Command::Dgram)?,
        "peers" => arity(0, 0).map(|_| Command::Peers)?,
        "members" => arity(0, 0).map(|_| Command::Members)?,
        "why" => arity(0, 0).map(|_| Command::Why)?,
        "buf" => arity(0, 0).map(|_| Command::Buf)?,
        "rcvbuf" => {
            arity(1, 1)?;
            Command::RcvBuf(parse::buffer_size(args[0])?)
        }
        "sndbuf" => {
            arity(1, 1)?;
            Command::SndBuf(parse::buffer_size(args[0])?)
        }
        "stats" => arity(0, 0).map(|_| Command::Stats)?,
        "help" | "?" => Command::Help,
        // Leaving cannot be taken back: `/quit now` is refused as every
        // other command with a word too many is, not read as `/quit`.
        "quit" | "exit" => {
            if !args.is_empty() {
                return Err(usage("quit"));
            }
            Command::Quit
        }
        other => {
            return Err(format!(
                "unknown command /{other}: /help lists them (start a message with // to send a leading /)"
            ));
        }
    };
    Ok(Input::Command(command))
}

/// The command names that complete `prefix` (which starts with `/`).
pub fn completions(prefix: &str) -> Vec<&'static str> {
    COMMANDS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| name.starts_with(prefix))
        .collect()
}

impl Command {
    /// True for a command that sends outside the chat protocol, in clear
    /// (one of [`IN_CLEAR`]): a keyed chat refuses it.
    pub fn in_clear(&self) -> bool {
        matches!(
            self,
            Command::Empty
                | Command::Size(_)
                | Command::Hex(_)
                | Command::Burst { .. }
                | Command::Plain
        )
    }
}

/// `/help`: one line per command that works here (in a keyed chat, not
/// those that would send in clear; one line says why they are absent).
pub fn help(keyed: bool) -> Vec<String> {
    let shown: Vec<&(&str, &str, &str)> = COMMANDS
        .iter()
        .filter(|(name, _, _)| !(keyed && IN_CLEAR.contains(name)))
        .collect();
    let width = shown
        .iter()
        .map(|(name, params, _)| name.len() + params.len())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<String> = shown
        .iter()
        .map(|(name, params, what)| format!("  {:<width$}  {what}", format!("{name}{params}")))
        .collect();
    if keyed {
        lines.push(format!(
            "  (not in a keyed chat: {} would send in clear, and only sealed messages go out)",
            IN_CLEAR.join(", ")
        ));
    }
    lines.push(
        "  anything else is a message (an empty line sends nothing); //text sends /text"
            .to_string(),
    );
    lines.push("  Ctrl-C clears the line, or stops a /burst".to_string());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_commands() {
        assert_eq!(parse("hello").unwrap(), Input::Message(b"hello".to_vec()));
        assert_eq!(parse("").unwrap(), Input::Message(Vec::new()));
        assert_eq!(
            parse("/burst 3 1k").unwrap(),
            Input::Command(Command::Burst {
                count: 3,
                size: 1024
            })
        );
        assert_eq!(parse("//help").unwrap(), Input::Message(b"/help".to_vec()));
        assert_eq!(parse("/empty").unwrap(), Input::Command(Command::Empty));
        assert_eq!(
            parse("/size 2k").unwrap(),
            Input::Command(Command::Size(2048))
        );
        assert_eq!(
            parse("/hex 00 ff").unwrap(),
            Input::Command(Command::Hex(vec![0, 255]))
        );
        assert_eq!(
            parse("/burst 10").unwrap(),
            Input::Command(Command::Burst {
                count: 10,
                size: DEFAULT_BURST_SIZE
            })
        );
        assert_eq!(
            parse("/to 127.0.0.1:9001").unwrap(),
            Input::Command(Command::To("127.0.0.1:9001".parse().unwrap()))
        );
        assert_eq!(
            parse("/rcvbuf 64k").unwrap(),
            Input::Command(Command::RcvBuf(65536))
        );
    }

    #[test]
    fn mistakes_say_what_to_type() {
        assert_eq!(parse("/size").unwrap_err(), "usage: /size N");
        assert!(parse("/burst 0").unwrap_err().contains("from 1"));
        // The prompt's numbers are the command line's: what is wrong is
        // said, not called a unit.
        for size in ["-1", "abc", "\u{663}"] {
            let err = parse(&format!("/size {size}")).unwrap_err();
            assert!(
                !err.contains("unit") && err.contains("expected a whole number of bytes"),
                "{err}"
            );
        }
        assert_eq!(
            parse("/size 1.5k").unwrap(),
            Input::Command(Command::Size(1536))
        );
        assert!(parse("/burst 1e3").unwrap_err().contains("not a number"));
        assert!(parse("/burst 2000000").unwrap_err().contains("to 1000000"));
        assert!(parse("/to nowhere").unwrap_err().contains("no port"));
        assert!(parse("/rcvbuf 0").unwrap_err().contains("0 bytes"));
        // Sizes are bounded before anything is allocated.
        assert!(parse("/size 1000000000000").unwrap_err().contains("65507"));
        assert!(parse("/burst 10 4G").unwrap_err().contains("65527"));
        // IPv6 without brackets is refused, not guessed at.
        assert!(parse("/to ::1:9120").unwrap_err().contains("[::1]:9120"));
        assert!(parse("/frob").unwrap_err().contains("/help"));
        // /hex is --hex's grammar: separated digits are separate bytes.
        assert!(parse("/hex 1 2").unwrap_err().contains("'1'"));
        assert!(parse("/hex 0:0:0:0").unwrap_err().contains("odd"));
        assert_eq!(parse("/empty now").unwrap_err(), "usage: /empty");
    }

    /// Leaving is refused with a word too many, as every other command
    /// is (`/quit now` used to end the chat), and its alias says the same.
    #[test]
    fn quit_takes_no_words() {
        assert_eq!(parse("/quit").unwrap(), Input::Command(Command::Quit));
        assert_eq!(parse("/exit").unwrap(), Input::Command(Command::Quit));
        assert_eq!(parse("/quit now").unwrap_err(), "usage: /quit");
        assert_eq!(parse("/exit later").unwrap_err(), "usage: /quit");
    }

    #[test]
    fn completion_and_help_cover_every_command() {
        assert_eq!(completions("/s"), vec!["/size", "/sndbuf", "/stats"]);
        assert_eq!(completions("/q"), vec!["/quit"]);
        assert_eq!(
            completions("/p"),
            vec!["/pending", "/plain", "/peers", "/path"]
        );
        assert_eq!(help(false).len(), COMMANDS.len() + 2);
    }

    /// A keyed chat's `/help` lists no command it would refuse, and one
    /// line names them; each of them is refused because it is in clear.
    #[test]
    fn keyed_help_lists_only_what_works() {
        let keyed = help(true);
        assert_eq!(keyed.len(), COMMANDS.len() - IN_CLEAR.len() + 3);
        for name in IN_CLEAR {
            assert!(
                !keyed.iter().any(|l| l.starts_with(&format!("  {name} "))),
                "{name}: {keyed:?}"
            );
            let example = match *name {
                "/size" | "/burst" => format!("{name} 3"),
                "/hex" => format!("{name} 00"),
                _ => name.to_string(),
            };
            match parse(&example) {
                Ok(Input::Command(command)) => assert!(command.in_clear(), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(keyed.iter().any(|l| l.contains("/dgram")), "{keyed:?}");
        assert!(
            keyed
                .iter()
                .any(|l| l.contains("not in a keyed chat: /empty, /size, /hex, /burst, /plain")),
            "{keyed:?}"
        );
        assert!(!Command::Dgram.in_clear());
    }
}
