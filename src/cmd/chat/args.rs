//! The command line of `dgram chat` ([`ChatArgs`]) and the
//! [`ChatOptions`] it makes: the checks clap cannot do, the defaults that
//! depend on other options (bind address, history file, name), the
//! protocol's configuration and the key file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::repl::default_history;
use super::{ChatOptions, Via};
use crate::Error;
use crate::cmd::options::{BufferArgs, GroupArgs, PcapArgs, load_key};
use crate::cmd::parse;
use crate::net::addr::any_port_for;
use crate::net::group::{self, GroupOptions};
use crate::output::Format;
use crate::proto::SessionId;
use crate::proto::code::Code;
use crate::proto::envelope::valid_name;
use crate::proto::members::HELLO_EVERY;
use crate::proto::rto::{DEFAULT_RETRIES, DEFAULT_RTO_MIN, RtoConfig};
use crate::proto::secure::RekeyLimits;
use crate::proto::sessions::DEFAULT_HANDSHAKE_RATE;
use crate::proto::{ChatConfig, Eol};
use crate::runtime::entropy;
use crate::runtime::traverse::TurnSetup;

/// The command line of `dgram chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Who typed lines go to (IP:PORT, [IPv6]:PORT or HOST:PORT). Without
    /// it, use /to ADDR or /reply.
    #[arg(long, value_name = "ADDR", value_parser = parse::peer_addr)]
    peer: Option<SocketAddr>,
    /// Local address (default: with --peer, any address of its family and
    /// a port the system chooses; without, 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// Print what arrives as the JSON events of `dgram listen`.
    #[arg(long)]
    json: bool,
    /// The history file (default: dgram/history in the user's data
    /// directory, such as ~/.local/share/dgram/history).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Keep no history file.
    #[arg(long, conflicts_with = "history")]
    no_history: bool,
    /// With input from a pipe: after its end (and once every message has
    /// its receipt or has failed), wait this long (milliseconds) for
    /// replies before leaving.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = parse::millis(0, parse::MAX_WAIT_MS))]
    linger: u64,
    /// The name sent with each message (default: the login name).
    #[arg(long, value_name = "NAME", value_parser = parse::chat_name)]
    name: Option<String>,
    /// Send a message again at most N times when its receipt does not come.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES, value_parser = parse::count::<u8>(0, 20))]
    retries: u8,
    /// The shortest retransmission timeout, in milliseconds (the timeout is
    /// SRTT + 4 RTTVAR, 1 s before the first round trip is measured).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_RTO_MIN.as_millis() as u64, value_parser = parse::millis(1, 60_000))]
    rto_min: u64,
    /// Line ending added to messages to plain peers (nc -u -l shows one
    /// line per message with lf).
    #[arg(long, value_name = "EOL", default_value = "none", value_parser = ["none", "lf", "crlf"])]
    eol: String,
    /// No chat protocol: every message is plain bytes, no receipts (what
    /// nc and socat do).
    #[arg(long)]
    raw: bool,
    /// The --peer speaks plain UDP from the start (such as nc -u -l, which
    /// cannot speak first); other peers are found out as they speak.
    #[arg(long, requires = "peer", conflicts_with = "raw")]
    plain: bool,
    /// Append every message in and out, with its final state, to FILE as
    /// JSON lines.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    #[command(flatten)]
    group: GroupArgs,
    /// Seal every message, receipt and hello with the key in FILE (from
    /// dgram keygen), and take only datagrams sealed with it: encrypted,
    /// authenticated, replays refused. Every member needs the same file.
    /// A keyed chat keeps no history unless --history is given.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["raw", "plain"])]
    key_file: Option<PathBuf>,
    /// In a group: say hello every MS milliseconds (jittered by ±25%); a
    /// member silent for 3.5 times this is taken to have left.
    #[arg(long, value_name = "MS", default_value_t = HELLO_EVERY.as_millis() as u64, value_parser = parse::millis(100, 600_000))]
    hello: u64,
    /// A secure session set up with a short code said aloud: --code alone
    /// makes one (such as 7-clockwork-crossover-ragtime) for the other
    /// person to type; --code CODE uses the one they were told.
    #[arg(long, value_name = "CODE", num_args = 0..=1, value_parser = Code::parse, conflicts_with_all = ["key_file", "plain", "raw", "group", "broadcast"])]
    code: Option<Option<Code>>,
    /// In a secure session (--key-file or --code with a peer): when
    /// nothing else was sent for MS milliseconds, send a keepalive (36
    /// bytes), so that a NAT's mapping for the chat stays open (many time
    /// out after 30 s). Off by default (an idle chat sends nothing), except
    /// with --via: every 25000.
    #[arg(long, value_name = "MS", value_parser = parse::millis(1000, 600_000))]
    keepalive: Option<u64>,
    /// Meet the other side of a --code at a rendezvous (dgram rendezvous
    /// at HOST:PORT) by the code's number, then find a path through both
    /// NATs: probes to every address either side has, a port search when
    /// one NAT takes a new port per destination.
    #[arg(long, value_name = "ADDR", value_parser = parse::peer_addr, requires = "code", conflicts_with_all = ["peer", "group", "broadcast"])]
    via: Option<SocketAddr>,
    /// With --via: a second STUN server (any, such as coturn), to see
    /// whether this side's NAT takes a new port per destination.
    #[arg(long, value_name = "ADDR", value_parser = parse::peer_addr)]
    stun: Option<SocketAddr>,
    /// With --via: how long, in milliseconds after the pairing, the search
    /// for a path may take before the chat gives up (default 10000).
    #[arg(long, value_name = "MS", value_parser = parse::millis(1000, 120_000))]
    path_wait: Option<u64>,
    /// With --via: a TURN server (such as coturn) to relay through when no
    /// direct path is found, with its long-term credential. The session
    /// stays sealed end to end: the relay sees only ciphertext.
    #[arg(long, value_name = "USER:PASS@HOST:PORT", value_parser = turn_server)]
    turn: Option<TurnSetup>,
    #[command(flatten)]
    buffers: BufferArgs,
    #[command(flatten)]
    pcap: PcapArgs,
}

/// Parses `--turn USER:PASS@HOST:PORT` (the password may hold `:` and
/// `@`: the address is after the last `@`, the user before the first
/// `:`).
fn turn_server(text: &str) -> Result<TurnSetup, String> {
    let (credential, addr) = text
        .rsplit_once('@')
        .ok_or_else(|| format!("{text:?}: expected USER:PASS@HOST:PORT (a TURN server's long-term credential and address)"))?;
    let (username, password) = credential.split_once(':').ok_or_else(|| {
        "expected USER:PASS before the @ (the TURN server's long-term credential)".to_string()
    })?;
    if username.is_empty() {
        return Err("the TURN user name is empty".to_string());
    }
    Ok(TurnSetup {
        server: parse::peer_addr(addr)?,
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// How long the path search may take after pairing, by default.
pub const DEFAULT_PATH_WAIT: Duration = Duration::from_secs(10);

/// The keepalive of a chat through NATs (`--via`), unless `--keepalive`
/// says otherwise: within the 30 s a Linux NAT (and many home routers)
/// keeps an idle UDP mapping, and no more often.
pub const VIA_KEEPALIVE: Duration = Duration::from_secs(25);

impl ChatOptions {
    /// The options of the command line, checked (the name; a group chat
    /// has no --peer), with the defaults that follow from the others and
    /// the key file read.
    pub fn from_args(args: ChatArgs) -> Result<Self, Error> {
        if let Some(name) = &args.name
            && let Err(message) = parse::check_chat_name(name)
        {
            return Err(Error::Usage { message });
        }
        let group = args.group.options()?;
        // Checked here, not by clap: its `requires` is not enforced next
        // to an option that conflicts with the one required (`--peer`).
        if args.via.is_none() {
            let given: Vec<&str> = [
                (args.stun.is_some(), "--stun"),
                (args.turn.is_some(), "--turn"),
                (args.path_wait.is_some(), "--path-wait"),
            ]
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect();
            if !given.is_empty() {
                return Err(Error::Usage {
                    message: format!(
                        "{} only work{} with --via (a chat that meets its peer at a rendezvous)",
                        given.join(", "),
                        if given.len() == 1 { "s" } else { "" }
                    ),
                });
            }
        }
        if args.keepalive.is_some()
            && (group.is_some() || (args.key_file.is_none() && args.code.is_none()))
        {
            return Err(Error::Usage {
                message: "--keepalive keeps a secure session's path open: it needs --key-file or \
                          --code, with a peer (not a group)"
                    .to_string(),
            });
        }
        if let (Some(group), Some(peer)) = (&group, args.peer) {
            return Err(Error::Usage {
                message: format!(
                    "--peer {peer} and a group ({}): a group chat talks to every member; leave out --peer",
                    group.addr
                ),
            });
        }
        let bind = args
            .bind
            .unwrap_or_else(|| match (&group, args.peer.or(args.via)) {
                (Some(group), _) => group::unicast_bind_for(group),
                (None, Some(peer)) => any_port_for(&peer),
                (None, None) => SocketAddr::from(([127, 0, 0, 1], 9000)),
            });
        let via = args.via.map(|rendezvous| Via {
            rendezvous,
            stun: args.stun,
            path_wait: args
                .path_wait
                .map_or(DEFAULT_PATH_WAIT, Duration::from_millis),
            turn: args.turn.clone(),
        });
        // A code made here is drawn from the operating system's random
        // source, like a key.
        let code = match args.code.clone() {
            None => None,
            Some(Some(given)) => Some((given, false)),
            Some(None) => Some((
                Code::generate(entropy::secret().map_err(|source| Error::Randomness { source })?),
                true,
            )),
        };
        Ok(ChatOptions {
            socket: args.buffers.socket(bind),
            peer: args.peer,
            max_size: args.buffers.max_size,
            format: Format::json(args.json),
            history: args.history_file(),
            linger: Duration::from_millis(args.linger),
            protocol: args.protocol(group.as_ref(), code.as_ref().map(|(c, _)| c))?,
            group,
            plain_peer: args.plain,
            code,
            log: args.log,
            via,
            passive: false,
            pcap: args.pcap.pcap,
        })
    }
}

impl ChatArgs {
    /// The history file: none with --no-history, nor in a keyed chat
    /// (`--key-file` or `--code`: what is typed there is private) unless
    /// --history names one.
    fn history_file(&self) -> Option<PathBuf> {
        let keyed = self.key_file.is_some() || self.code.is_some();
        if self.no_history || (keyed && self.history.is_none()) {
            None
        } else {
            self.history.clone().or_else(default_history)
        }
    }

    /// The protocol's configuration: a new session, the name, timers, line
    /// ending, the group and the key.
    fn protocol(
        &self,
        group: Option<&GroupOptions>,
        code: Option<&Code>,
    ) -> Result<ChatConfig, Error> {
        Ok(ChatConfig {
            session: SessionId::from_random(entropy::seed()),
            name: self.name.clone().unwrap_or_else(login_name),
            rto: RtoConfig {
                retries: self.retries,
                min: Duration::from_millis(self.rto_min),
            },
            eol: match self.eol.as_str() {
                "lf" => Eol::Lf,
                "crlf" => Eol::CrLf,
                _ => Eol::None,
            },
            announce_kinds: true,
            raw: self.raw,
            group: group.map(|g| g.addr),
            hello: Duration::from_millis(self.hello),
            silent: false,
            key: self.key_file.as_deref().map(load_key).transpose()?,
            code: code.map(Code::password),
            rekey: RekeyLimits::default(),
            handshake_rate: DEFAULT_HANDSHAKE_RATE,
            keepalive: self
                .keepalive
                .map(Duration::from_millis)
                .or(self.via.map(|_| VIA_KEEPALIVE)),
        })
    }
}

/// The login name ($USER, $LOGNAME, else the user database), or "dgram"
/// when none is usable as a chat name.
fn login_name() -> String {
    let from_env = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok());
    #[cfg(unix)]
    let from_db = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name);
    #[cfg(not(unix))]
    let from_db: Option<String> = None;
    from_env
        .chain(from_db)
        .find(|name| valid_name(name))
        .unwrap_or_else(|| "dgram".to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The chat's options as a command line of their own.
    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: ChatArgs,
    }

    fn args(words: &[&str]) -> ChatArgs {
        Line::try_parse_from(std::iter::once("chat").chain(words.iter().copied()))
            .expect("a valid command line")
            .args
    }

    /// What is typed in a keyed chat goes to no history file unless
    /// --history names one; --no-history keeps none; otherwise the default
    /// file. (The key file is not read to decide.)
    #[test]
    fn a_keyed_chat_keeps_no_history_unless_asked() {
        let named = Some(PathBuf::from("chat.history"));
        assert_eq!(args(&["--key-file", "team.key"]).history_file(), None);
        assert_eq!(
            args(&["--key-file", "team.key", "--history", "chat.history"]).history_file(),
            named
        );
        assert_eq!(args(&["--history", "chat.history"]).history_file(), named);
        assert_eq!(args(&["--no-history"]).history_file(), None);
        assert_eq!(
            args(&["--code", "7-clockwork-crossover"]).history_file(),
            None,
            "a code chat is keyed"
        );
        assert_eq!(args(&[]).history_file(), default_history());
    }

    /// `--code` alone makes a code (a different one each run, marked as
    /// made here), `--code CODE` gives one (parsed, in its canonical
    /// form), and without it the chat has none; the code's password goes
    /// to the protocol.
    #[test]
    fn code_alone_makes_one_and_a_value_gives_one() {
        let options = |words: &[&str]| ChatOptions::from_args(args(words)).expect("valid options");
        assert_eq!(options(&[]).code, None);
        assert_eq!(options(&[]).protocol.code, None);
        let (made, by_us) = options(&["--code", "--peer", "127.0.0.1:5"]).code.unwrap();
        assert!(by_us);
        let (again, _) = options(&["--code"]).code.unwrap();
        assert_ne!(made.to_string(), again.to_string(), "a new code each run");
        let given = options(&["--code", "007 Clockwork crossover"]);
        let (code, by_us) = given.code.clone().unwrap();
        assert!(!by_us);
        assert_eq!(code.to_string(), "7-clockwork-crossover");
        assert_eq!(
            given.protocol.code.as_deref(),
            Some(&b"7-clockwork-crossover"[..])
        );
    }

    /// `--keepalive` goes with a secure session only: with a key file or a
    /// code and a peer it sets the period; without keys, or in a group
    /// (a room key, no sessions), it is refused.
    #[test]
    fn keepalive_needs_a_secure_session() {
        let options = ChatOptions::from_args(args(&[
            "--peer",
            "127.0.0.1:5",
            "--code",
            "7-clockwork-crossover",
            "--keepalive",
            "25s",
        ]))
        .expect("valid options");
        assert_eq!(options.protocol.keepalive, Some(Duration::from_secs(25)));
        for words in [
            &["--peer", "127.0.0.1:5", "--keepalive", "25s"][..],
            &[
                "--group",
                "239.1.2.3:5000",
                "--key-file",
                "/nonexistent.key",
                "--keepalive",
                "25s",
            ],
        ] {
            match ChatOptions::from_args(args(words)) {
                Err(Error::Usage { message }) => {
                    assert!(message.contains("--keepalive"), "{message}")
                }
                other => panic!("{words:?}: {other:?}"),
            }
        }
    }

    /// `--stun`, `--turn` and `--path-wait` belong to `--via`: without it
    /// (even next to `--peer`, where clap's own check does not fire) they
    /// are usage errors, not silently ignored; `--turn`'s password may
    /// hold a colon and the chat through NATs keeps a 25 s keepalive.
    #[test]
    fn via_options_need_via() {
        for option in [
            &["--turn", "u:p@127.0.0.1:3478"][..],
            &["--stun", "127.0.0.1:3478"],
            &["--path-wait", "5000"],
        ] {
            let words = [&["--peer", "127.0.0.1:5", "--code"][..], option].concat();
            match ChatOptions::from_args(args(&words)) {
                Err(Error::Usage { message }) => {
                    assert!(
                        message.contains("only work") && message.contains("--via"),
                        "{message}"
                    )
                }
                other => panic!("{words:?}: {other:?}"),
            }
        }
        let via = ChatOptions::from_args(args(&[
            "--via",
            "127.0.0.1:3478",
            "--code",
            "--turn",
            "u:p:q@127.0.0.1:3478",
        ]))
        .expect("valid options");
        assert_eq!(via.protocol.keepalive, Some(VIA_KEEPALIVE));
        let turn = via.via.unwrap().turn.unwrap();
        assert_eq!(
            (turn.username.as_str(), turn.password.as_str()),
            ("u", "p:q")
        );
    }

    /// A code is a secure session of two: it cannot go with a key file, a
    /// plain or raw chat, or a group, and a code that does not parse is
    /// refused as the command line is read.
    #[test]
    fn code_refuses_what_it_cannot_go_with() {
        let refusal = |words: &[&str]| match Line::try_parse_from(
            std::iter::once("chat").chain(words.iter().copied()),
        ) {
            Ok(_) => panic!("{words:?} was taken"),
            Err(error) => error.to_string(),
        };
        for other in [
            &["--key-file", "team.key"][..],
            &["--plain", "--peer", "127.0.0.1:5"],
            &["--raw"],
            &["--group", "239.1.2.3:5000"],
            &["--broadcast", "127.255.255.255:5000"],
        ] {
            let words = [&["--code"][..], other].concat();
            let message = refusal(&words);
            assert!(
                message.contains("cannot be used with"),
                "{words:?}: {message}"
            );
        }
        let message = refusal(&["--code", "7-clockwork-bogus"]);
        assert!(
            message.contains("word 2, \"bogus\", is not in the word list"),
            "{message}"
        );
    }

    /// Without --bind, the chat binds where its peer or group can be
    /// reached: any address of the peer's family, the group's family, or
    /// 127.0.0.1:9000 with neither; --bind wins.
    #[test]
    fn the_bind_address_follows_the_peer_or_group() {
        let bind = |words: &[&str]| {
            let options = ChatOptions::from_args(args(words)).expect("valid options");
            options.socket.bind.to_string()
        };
        assert_eq!(bind(&[]), "127.0.0.1:9000");
        assert_eq!(bind(&["--peer", "127.0.0.1:5"]), "0.0.0.0:0");
        assert_eq!(bind(&["--peer", "[::1]:5"]), "[::]:0");
        assert_eq!(bind(&["--group", "239.1.2.3:5000"]), "0.0.0.0:0");
        assert_eq!(
            bind(&["--peer", "[::1]:5", "--bind", "127.0.0.1:7"]),
            "127.0.0.1:7"
        );
    }
}
