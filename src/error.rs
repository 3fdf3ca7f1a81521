//! dgram's error type: one variant per operation that can fail, each keeping
//! the `io::Error` it met as its `source()`, and how an error is printed.

use std::io;
use std::net::SocketAddr;

use crate::net::addr::PortState;
use crate::output::escape::escape_line;
use crate::runtime::Signal;

/// Everything that can stop a dgram command.
///
/// The message names the operation and its context; [`Error::hint`] says what
/// the user can do about it; [`Error::exit_code`] sorts usage errors (2) from
/// runtime errors (1) and interruptions (128 + the signal).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `socket(2)` failed.
    #[error("could not create a UDP socket for {family}")]
    CreateSocket {
        family: &'static str,
        source: io::Error,
    },

    /// A socket option could not be set.
    #[error("could not set {option} on the socket")]
    SetOption {
        option: &'static str,
        source: io::Error,
    },

    /// `SO_RCVBUF` or `SO_SNDBUF` could not be set to the requested size.
    #[error("could not set {option} to {requested} bytes")]
    SetBuffer {
        option: &'static str,
        requested: usize,
        source: io::Error,
    },

    /// `SO_RCVBUF` or `SO_SNDBUF` could not be read back.
    #[error("could not read {option} back from the socket")]
    ReadBuffer {
        option: &'static str,
        source: io::Error,
    },

    /// `bind(2)` failed.
    #[error("could not bind to {addr}")]
    Bind { addr: SocketAddr, source: io::Error },

    /// `getsockname(2)` failed after a successful bind.
    #[error("could not read the local address of the socket")]
    LocalAddr { source: io::Error },

    /// `sendto(2)` failed for a reason other than an ICMP report.
    #[error("could not send {len} bytes to {to}")]
    Send {
        to: SocketAddr,
        len: usize,
        source: io::Error,
    },

    /// `recvmsg(2)` failed for a reason that is not about a peer.
    #[error("could not receive on {local}")]
    Receive {
        local: SocketAddr,
        source: io::Error,
    },

    /// The peer's host answered ICMP port unreachable.
    #[error("{}", match port {
        PortState::InUse => format!("{peer} refuses datagrams from this socket (its host answered ICMP port unreachable), though a program holds that port"),
        _ => format!("nothing is listening at {peer} (its host answered ICMP port unreachable)"),
    })]
    PeerUnreachable { peer: SocketAddr, port: PortState },

    /// The network answered a datagram to `peer` with an ICMP error other
    /// than port unreachable (no route, host or network unreachable,
    /// administratively prohibited), and `peer` never answered.
    #[error(
        "the network reports \"{error}\" for {peer} (an ICMP error from a router or its host): no datagram got there"
    )]
    PeerNotReached { peer: SocketAddr, error: String },

    /// A payload is larger than UDP can carry over the address family.
    #[error("a {len}-byte payload is over the {limit}-byte limit of a UDP datagram over {family}")]
    PayloadTooLarge {
        len: u64,
        limit: usize,
        family: &'static str,
    },

    /// A value on the command line that clap's parsers let through but
    /// that dgram cannot use.
    #[error("{message}")]
    Usage { message: String },

    /// A chat message does not fit in one datagram once in its envelope.
    #[error(
        "a {len}-byte message is over the {limit}-byte limit of one chat message to {peer} (the datagram's limit less {overhead} bytes of envelope)"
    )]
    MessageTooLarge {
        peer: SocketAddr,
        len: usize,
        limit: usize,
        overhead: usize,
    },

    /// `dgram ping` got not one reply.
    #[error("no reply from {to} to any of {sent} probe{}{}", if *sent == 1 { "" } else { "s" }, match refused {
        None => "",
        Some(PortState::InUse) => ": its host refused them (ICMP port unreachable), though a program holds that port",
        Some(_) => ": nothing is listening there (its host answered ICMP port unreachable)",
    })]
    NoReplies {
        to: SocketAddr,
        sent: u64,
        /// The host refused the probes (ICMP port unreachable), and the
        /// port's state then.
        refused: Option<PortState>,
    },

    /// `dgram mtu` got no answer to any probe.
    #[error("no reply from {to} to any of {sent} probe{}{}", if *sent == 1 { "" } else { "s" }, match refused {
        None => "",
        Some(PortState::InUse) => ": its host refused them (ICMP port unreachable), though a program holds that port",
        Some(_) => ": nothing is listening there (its host answered ICMP port unreachable)",
    })]
    NoProbeAnswers {
        to: SocketAddr,
        sent: u64,
        /// The host refused the probes (ICMP port unreachable), and the
        /// port's state then.
        refused: Option<PortState>,
    },

    /// `dgram mtu`: a router (or the target's host) answered a probe with
    /// an ICMP error about the path (network or host unreachable,
    /// administratively prohibited): no size crosses.
    #[error("{} says {what} for {} (ICMP, in answer to a probe)", reporter.map_or("a router".to_string(), |ip| ip.to_string()), to.ip())]
    PathUnreachable {
        to: SocketAddr,
        /// Who sent the ICMP error, where known.
        reporter: Option<std::net::IpAddr>,
        /// What it said ("network unreachable").
        what: String,
    },

    /// `dgram bench` could not open its control connection (TCP, same
    /// address as the data) to the bench server.
    #[error("could not reach a dgram bench server at {to} (its TCP control connection)")]
    ConnectBench { to: SocketAddr, source: io::Error },

    /// What answered the bench control connection's hello is not a dgram
    /// bench server (another program holds that TCP port).
    #[error("{to} is not a dgram bench server: {reason}")]
    NotBenchServer { to: SocketAddr, reason: String },

    /// The bench control connection failed or said something unexpected.
    #[error("the control connection to the bench server at {to} failed")]
    BenchControl { to: SocketAddr, source: io::Error },

    /// The bench server could not take the TCP control port of its address.
    #[error("could not bind the bench control port {addr} (TCP)")]
    BindControl { addr: SocketAddr, source: io::Error },

    /// Too many messages wait for receipts to send another.
    #[error("{limit} messages are waiting for receipts already")]
    TooManyPending { limit: usize },

    /// No secure session can open with the peer (the code is spent).
    #[error(
        "no secure session with {peer}: the code was used up (a code is good for one handshake per run)"
    )]
    NoSecureSession { peer: SocketAddr },

    /// `chat --via` found no path to the other side of the code.
    #[error("no path to the other side: {reason}")]
    NoPath { reason: String },

    /// Messages sent were not delivered (a chat from a pipe ends so).
    #[error("{failed} of {messages} message{} not delivered", if *messages == 1 { "" } else { "s" })]
    NotDelivered {
        failed: u64,
        messages: u64,
        /// The chat was keyed (`--key-file`).
        keyed: bool,
        /// The peer whose host refused the messages (ICMP port
        /// unreachable) as the chat ended: nothing listens there.
        refused: Option<SocketAddr>,
    },

    /// The `--log` file could not be opened or written.
    #[error("could not write the log file {}", path.display())]
    WriteLog {
        path: std::path::PathBuf,
        source: io::Error,
    },

    /// The `--log` path cannot be a log: not a regular file, in a
    /// directory that does not exist, or a link to nothing.
    #[error("cannot use the log file {}: {reason}", path.display())]
    LogFile {
        path: std::path::PathBuf,
        reason: String,
    },

    /// Lines of input were too long to send, and were skipped.
    #[error(
        "{count} line{} not sent: longer than the {limit}-byte limit of one datagram",
        if *count == 1 { " of input was" } else { "s of input were" }
    )]
    LinesNotSent { count: u64, limit: usize },

    /// Lines piped into a chat that could not go out (no peer to send to,
    /// or the send failed): each was said by its number as it happened.
    #[error(
        "{count} line{} not sent",
        if *count == 1 { " of input was" } else { "s of input were" }
    )]
    InputNotSent { count: u64 },

    /// A peer of one address family and a socket of the other.
    #[error("cannot reach {peer_family} address {peer} from the {local_family} address {local}")]
    FamilyMismatch {
        local: SocketAddr,
        peer: SocketAddr,
        local_family: &'static str,
        peer_family: &'static str,
    },

    /// Standard input could not be read.
    #[error("could not read standard input")]
    ReadStdin { source: io::Error },

    /// Standard output or standard error could not be written.
    #[error("could not write the output")]
    WriteOutput { source: io::Error },

    /// The terminal line editor failed.
    #[error("the terminal line editor failed")]
    Terminal {
        source: rustyline::error::ReadlineError,
    },

    /// The history file could not be read, or cannot be one (not a
    /// regular file, its directory missing): a warning, and the chat goes
    /// on without history.
    #[error("could not load the history file {}", path.display())]
    LoadHistory {
        path: std::path::PathBuf,
        source: rustyline::error::ReadlineError,
    },

    /// A thread could not be started.
    #[error("could not start the {name} thread")]
    SpawnThread {
        name: &'static str,
        source: io::Error,
    },

    /// A worker thread panicked (a bug in dgram).
    #[error("the {name} thread panicked")]
    ThreadPanicked { name: &'static str },

    /// The Ctrl-C / SIGTERM handler could not be installed.
    #[error("could not install the Ctrl-C/SIGTERM handler")]
    SignalHandler { source: io::Error },

    /// A `dgram lab` experiment could not do what it needed.
    #[error("the experiment could not {what}")]
    Lab {
        what: &'static str,
        source: std::io::Error,
    },

    /// A command that builds `dgram lab nat`'s namespaces failed.
    #[error("could not build the lab's network namespaces: `{command}` failed: {detail}")]
    LabSetup { command: String, detail: String },

    /// A setting of a `dgram lab nat` namespace could not be written.
    #[error("could not set {key} in the network namespace {namespace}")]
    LabSysctl {
        namespace: String,
        key: String,
        source: io::Error,
    },

    /// A file could not be written (`--report`, `--chart`).
    #[error("could not write {}", path.display())]
    WriteFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    /// The `--pcap` path cannot take a capture: not a regular file, in a
    /// directory that does not exist, or a link to nothing.
    #[error("cannot write the capture {}: {reason}", path.display())]
    PcapFile {
        path: std::path::PathBuf,
        reason: String,
    },

    /// The `--pcap` capture file could not be created or written.
    #[error("could not write the capture {}", path.display())]
    WritePcap {
        path: std::path::PathBuf,
        source: io::Error,
    },

    /// The operating system gave no randomness (for a key or a nonce).
    #[error("the operating system gave no randomness")]
    Randomness { source: std::io::Error },

    /// The `--key-file` cannot be used.
    #[error("cannot use the key file {}: {reason}", path.display())]
    KeyFile {
        path: std::path::PathBuf,
        reason: String,
    },

    /// `dgram keygen` could not write the key file.
    #[error("could not write the key file {}", path.display())]
    WriteKey {
        path: std::path::PathBuf,
        source: io::Error,
    },

    /// The interfaces of this host could not be listed (for `--iface`).
    #[error("could not list this host's network interfaces")]
    ListInterfaces { source: io::Error },

    /// The group could not be joined (`IP_ADD_MEMBERSHIP`).
    #[error("could not join the multicast group {group}{}", iface.as_ref().map(|i| format!(" on {i}")).unwrap_or_default())]
    JoinGroup {
        group: std::net::IpAddr,
        iface: Option<String>,
        source: io::Error,
    },

    /// A signal cut the command short (after it said what it had done).
    #[error("interrupted")]
    Interrupted { signal: Signal },
}

impl Error {
    /// The process exit status for this error: 2 for usage errors (the
    /// command line asked for something impossible), 128 + the signal for
    /// an interruption, 1 for everything that went wrong while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::PayloadTooLarge { .. }
            | Error::FamilyMismatch { .. }
            | Error::Usage { .. }
            | Error::KeyFile { .. }
            | Error::LogFile { .. }
            | Error::PcapFile { .. } => 2,
            Error::Interrupted { signal } => signal.exit_code(),
            _ => 1,
        }
    }

    /// True when the error is only that the reader of the output has gone
    /// away (`dgram ping … | head -1`): every command then ends quietly
    /// with status 0, as other Unix tools do, however deep the write was.
    pub fn is_reader_gone(&self) -> bool {
        matches!(self, Error::WriteOutput { source } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// What the user can do about it, when dgram knows.
    pub fn hint(&self) -> Option<String> {
        // Out of descriptors or memory is the cause whatever the operation
        // (a busy port, a missing server would be the wrong advice).
        if let Some(hint) = self.resource_hint() {
            return Some(hint);
        }
        match self {
            Error::WritePcap { source, .. } if source.kind() == io::ErrorKind::StorageFull => {
                Some("the disk is full, and the records after the failure are missing: write the capture where there is room (a tmpfs such as /dev/shm is also faster)".to_string())
            }
            Error::WriteKey { source, .. } if source.kind() == io::ErrorKind::NotFound => Some(
                "its directory does not exist: create it first (mkdir -p)".to_string(),
            ),
            Error::WriteKey { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
                Some("keygen never writes over a file (it may be a key in use): choose another name, or remove that file first".to_string())
            }
            Error::JoinGroup { iface: None, .. } => Some(
                "no route leads to the group: name the interface with --iface NAME (see `ip addr`)"
                    .to_string(),
            ),
            Error::Bind { addr, source } => match source.kind() {
                io::ErrorKind::AddrInUse => {
                    Some("pick another port, or port 0 to let the system choose".to_string())
                }
                io::ErrorKind::InvalidInput
                    if matches!(addr, SocketAddr::V6(v6)
                        if v6.scope_id() == 0 && v6.ip().is_unicast_link_local()) =>
                {
                    Some(format!(
                        "a link-local address needs its interface: [{}%eth0]:{} (see `ip link`)",
                        addr.ip(),
                        addr.port()
                    ))
                }
                io::ErrorKind::AddrNotAvailable => Some(format!(
                    "{} is not an address of this machine: use 127.0.0.1, [::1], 0.0.0.0 or [::]",
                    addr.ip()
                )),
                io::ErrorKind::PermissionDenied => {
                    Some("ports below 1024 need privileges: pick a port such as 9000".to_string())
                }
                _ => None,
            },
            // EACCES from sendto(2) on a UDP socket: the address is a
            // broadcast one, which needs SO_BROADCAST (EPERM, a firewall,
            // shares the error kind but not the number).
            Error::Send { to, source, .. } if source.raw_os_error() == Some(EACCES) => Some(format!(
                "{} is a broadcast address, and the kernel sends to one only from a socket that asks (SO_BROADCAST); dgram does so only in a broadcast chat: dgram chat --broadcast {to} --iface NAME",
                to.ip()
            )),
            Error::SetBuffer { .. } => Some(
                "pick a smaller size; the kernel caps requests at net.core.rmem_max/wmem_max"
                    .to_string(),
            ),
            // Starting a listener is advice only where one can be started.
            Error::PeerNotReached { peer, .. } => Some(format!(
                "check the address and the route to it (ip route get {})",
                peer.ip()
            )),
            Error::PeerUnreachable { peer, port } => Some(match port {
                PortState::Free => {
                    format!("start a listener there (dgram listen {peer}) or check the address")
                }
                PortState::InUse => "the program there takes datagrams from one peer only (as nc -u -l does after its first): restart it, or send from the address it heard first (--bind)".to_string(),
                PortState::Unknown => {
                    "check the address, or start a listener on that host".to_string()
                }
            }),
            Error::PayloadTooLarge { .. } => {
                Some("send less: split the data over several datagrams".to_string())
            }
            Error::MessageTooLarge { .. } => Some(
                "send less, or send it as a plain datagram (/plain at the prompt; --plain or --raw on the command line)".to_string(),
            ),
            Error::NoReplies { to, refused: None, .. } => Some(format!(
                "is an echo server running there (dgram listen {to} --echo --echo-rate 0)?"
            )),
            Error::NoReplies { refused: Some(PortState::InUse), .. } => Some(
                "the program there takes datagrams from one peer only (as socat without fork and nc -u -l do after their first): restart it, or give socat fork (UDP-LISTEN:PORT,fork)"
                    .to_string(),
            ),
            Error::NoReplies { to, refused: Some(_), .. } => Some(format!(
                "start an echo server there (dgram listen {to} --echo --echo-rate 0) or check the address"
            )),
            Error::NoProbeAnswers { to, refused: None, .. } => Some(format!(
                "is a dgram listener running there (dgram listen {to}: both directions are measured), or an echo server?"
            )),
            Error::NoProbeAnswers { refused: Some(PortState::InUse), .. } => Some(
                "the program there takes datagrams from one peer only (as socat without fork and nc -u -l do after their first): restart it, or give socat fork (UDP-RECVFROM:PORT,fork)"
                    .to_string(),
            ),
            Error::NoProbeAnswers { to, refused: Some(_), .. } => Some(format!(
                "start a listener there (dgram listen {to}: both directions are measured) or check the address"
            )),
            Error::PathUnreachable { to, reporter, .. } => Some(format!(
                "the path to {} is broken at {}: check the routes (and firewalls) there, or the address",
                to.ip(),
                reporter.map_or("a router on the way".to_string(), |ip| ip.to_string())
            )),
            Error::ConnectBench { to, .. } => Some(format!(
                "start one there first: dgram bench --serve {to} (or try dgram bench --loopback)"
            )),
            Error::NotBenchServer { to, .. } => Some(format!(
                "another program holds TCP port {}: start dgram bench --serve on a free port and give its address (or try dgram bench --loopback)",
                to.port()
            )),
            Error::BenchControl { .. } => Some(
                "the server may have stopped or be stopped (SIGSTOP): start it again and rerun"
                    .to_string(),
            ),
            Error::BindControl { .. } => {
                Some("pick another port, or port 0 to let the system choose".to_string())
            }
            Error::NoSecureSession { .. } => Some(
                "a code gives one guess per run: both sides start again, one with --code alone to make a new code"
                    .to_string(),
            ),
            Error::TooManyPending { .. } => Some(
                "wait for their receipts or failures (/pending lists them)".to_string(),
            ),
            // No receipt because nothing listens: neither --plain nor the
            // key would help.
            Error::NotDelivered {
                refused: Some(peer),
                ..
            } => Some(format!(
                "the receipt lines above say which and why; nothing is listening at {peer} (its host answered ICMP port unreachable): start the other side first, or check the address"
            )),
            Error::NotDelivered { keyed: true, .. } => Some(
                "the receipt lines above say which and why; a keyed chat gets receipts only in a secure session: check that the other side runs dgram with the same --key-file or --code (the lines above say whether a session opened)"
                    .to_string(),
            ),
            Error::NotDelivered { .. } => Some(
                "the receipt lines above say which and why; a peer that is not dgram (nc, socat) sends no receipts: give it --plain"
                    .to_string(),
            ),
            Error::LinesNotSent { count, .. } => Some(format!(
                "{} reported above by its line number; split long lines",
                if *count == 1 { "it is" } else { "each is" },
            )),
            Error::InputNotSent { count } => Some(format!(
                "{} reported above by its line number, with the reason",
                if *count == 1 { "it is" } else { "each is" },
            )),
            Error::FamilyMismatch { peer_family, .. } => Some(format!(
                "a socket bound to an {peer_family} address reaches it (--bind {}), and one bound to [::] reaches both families (--bind [::]:0)",
                if *peer_family == "IPv4" {
                    "0.0.0.0:0"
                } else {
                    "[::1]:0"
                }
            )),
            Error::LoadHistory {
                source: rustyline::error::ReadlineError::Io(io),
                ..
            } if matches!(
                io.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
            {
                Some("the chat goes on without history".to_string())
            }
            Error::LoadHistory { .. } => Some(
                "the chat goes on without history; move it away, or pick another file with --history FILE"
                    .to_string(),
            ),
            Error::ThreadPanicked { .. } => {
                Some("this is a bug in dgram: please report it with the command line".to_string())
            }
            _ => None,
        }
    }
}

impl Error {
    /// The hint when the system refused a resource: file descriptors,
    /// memory, threads.
    fn resource_hint(&self) -> Option<String> {
        let source = std::error::Error::source(self)?.downcast_ref::<io::Error>()?;
        if source.kind() == io::ErrorKind::OutOfMemory {
            return Some(OUT_OF_MEMORY.to_string());
        }
        #[cfg(unix)]
        {
            use nix::libc;
            match source.raw_os_error() {
                Some(libc::EMFILE) => return Some(
                    "out of file descriptors: this process may open no more files or sockets; raise its limit (ulimit -n)"
                        .to_string(),
                ),
                Some(libc::ENFILE) => return Some(
                    "out of file descriptors: the system's table is full; close some programs or raise fs.file-max"
                        .to_string(),
                ),
                // pthread_create says EAGAIN when it cannot map a stack.
                Some(libc::EAGAIN) if matches!(self, Error::SpawnThread { .. }) => {
                    return Some(format!(
                        "{OUT_OF_MEMORY}, or out of threads (ulimit -u)"
                    ));
                }
                _ => {}
            }
        }
        None
    }
}

/// The error number a send to a broadcast address gets from a socket
/// without `SO_BROADCAST` (`EACCES`, 13 on every Unix; `WSAEACCES` on
/// Windows).
#[cfg(unix)]
const EACCES: i32 = 13;
#[cfg(not(unix))]
const EACCES: i32 = 10013;

/// The advice for memory the system would not give.
const OUT_OF_MEMORY: &str =
    "out of memory: the system or this process's limit (ulimit -v) allows no more";

/// Renders an error on one line: what failed, each cause in turn (a cause
/// that only repeats what is already said is left out), then what to do
/// about it. Messages carry what the user gave (paths, interface names,
/// addresses): the whole line is escaped here, once for every way an
/// error is printed, so that none of it drives the terminal.
pub fn report(err: &Error) -> String {
    let mut line = format!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        line.push_str("; ");
        line.push_str(&hint);
    }
    escape_line(&line)
}

/// Renders an error as a line of a conversation (a chat's answer to a
/// command that could not be done): the report without its `error:`.
pub fn say(err: &Error) -> String {
    let line = report(err);
    match line.strip_prefix("error: ") {
        Some(rest) => rest.to_string(),
        None => line,
    }
}

/// Renders an error that does not stop the command, as one line.
pub fn warning(err: &Error) -> String {
    let line = report(err);
    match line.strip_prefix("error: ") {
        Some(rest) => format!("warning: {rest}"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause is printed once, even when an error type repeats its source
    /// in its own message (as rustyline's does).
    #[test]
    fn causes_are_not_repeated() {
        let io = io::Error::from_raw_os_error(21); // EISDIR
        let err = Error::LoadHistory {
            path: "/tmp".into(),
            source: rustyline::error::ReadlineError::Io(io),
        };
        let line = report(&err);
        assert_eq!(line.matches("Is a directory").count(), 1, "{line}");
        assert!(line.starts_with("error: could not load the history file /tmp: "));
    }

    /// What a user gave reaches the line escaped: control, C1, bidi and
    /// backspace characters in a path are written as escapes, on one line.
    #[test]
    fn reports_escape_what_the_user_gave() {
        let err = Error::KeyFile {
            path: "/tmp/\x1b]0;owned\x07\u{9b}31m\u{202e}\x08\nkey".into(),
            reason: "it does not exist".to_string(),
        };
        for line in [report(&err), say(&err), warning(&err)] {
            assert!(
                line.ends_with(
                    r"/tmp/\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}\u{8}\nkey: it does not exist"
                ),
                "{line}"
            );
            assert!(
                !line.chars().any(crate::output::escape::is_hidden),
                "{line}"
            );
        }
    }

    /// "Start a listener there" is given only where one can be started: an
    /// address of this machine whose port is free. A held port that refused
    /// is a program that takes one peer only.
    #[test]
    fn listener_hint_only_where_one_can_start() {
        let free = Error::PeerUnreachable {
            peer: "127.0.0.1:9".parse().unwrap(),
            port: PortState::Free,
        };
        let line = report(&free);
        assert!(
            line.contains("nothing is listening at 127.0.0.1:9"),
            "{line}"
        );
        assert!(line.contains("dgram listen 127.0.0.1:9"), "{line}");
        let remote = Error::PeerUnreachable {
            peer: "192.0.2.1:9200".parse().unwrap(),
            port: PortState::Unknown,
        };
        let line = report(&remote);
        assert!(!line.contains("dgram listen"), "{line}");
        assert!(line.contains("check the address"), "{line}");
        let held = Error::PeerUnreachable {
            peer: "127.0.0.1:9".parse().unwrap(),
            port: PortState::InUse,
        };
        let line = report(&held);
        assert!(line.contains("though a program holds that port"), "{line}");
        assert!(line.contains("one peer only"), "{line}");
        assert!(!line.contains("dgram listen"), "{line}");
    }

    /// The same family message both ways, each with a fitting hint.
    #[test]
    fn family_mismatch_reads_the_same_both_ways() {
        let err = crate::net::addr::check_family(
            "[::1]:0".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            report(&err),
            "error: cannot reach IPv4 address 127.0.0.1:9001 from the IPv6 address [::1]:0; a socket bound to an IPv4 address reaches it (--bind 0.0.0.0:0), and one bound to [::] reaches both families (--bind [::]:0)"
        );
        let err = crate::net::addr::check_family(
            "127.0.0.1:5".parse().unwrap(),
            "[::1]:9120".parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            report(&err),
            "error: cannot reach IPv6 address [::1]:9120 from the IPv4 address 127.0.0.1:5; a socket bound to an IPv6 address reaches it (--bind [::1]:0), and one bound to [::] reaches both families (--bind [::]:0)"
        );
        assert_eq!(err.exit_code(), 2);
    }
}
