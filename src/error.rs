//! dgram's error type: one variant per operation that can fail, each keeping
//! the `io::Error` it met as its `source()`.

use std::io;
use std::net::SocketAddr;

/// Everything that can stop a dgram command.
///
/// The message names the operation and its context; [`Error::hint`] says what
/// the user can do about it; [`Error::exit_code`] sorts usage errors (2) from
/// runtime errors (1).
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
    #[error("nothing is listening at {peer} (its host answered ICMP port unreachable)")]
    PeerUnreachable { peer: SocketAddr },

    /// A payload is larger than UDP can carry over the address family.
    #[error("a {len}-byte payload is over the {limit}-byte limit of a UDP datagram over {family}")]
    PayloadTooLarge {
        len: usize,
        limit: usize,
        family: &'static str,
    },

    /// An IPv6 destination from an IPv4 socket, or the other way round.
    #[error("cannot send to {to} from the {family} socket bound to {local}")]
    FamilyMismatch {
        to: SocketAddr,
        local: SocketAddr,
        family: &'static str,
    },

    /// A line on standard input could not be read.
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

    /// The history file exists but could not be read.
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
    SignalHandler { source: ctrlc::Error },
}

impl Error {
    /// The process exit status for this error: 2 for usage errors (the
    /// command line asked for something impossible), 1 for everything that
    /// went wrong while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::PayloadTooLarge { .. } | Error::FamilyMismatch { .. } => 2,
            _ => 1,
        }
    }

    /// What the user can do about it, when dgram knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Bind { addr, source } => match source.kind() {
                io::ErrorKind::AddrInUse => Some(format!(
                    "port {} is in use on {}: pick another port, or 0 to let the system choose",
                    addr.port(),
                    addr.ip()
                )),
                io::ErrorKind::AddrNotAvailable => Some(format!(
                    "{} is not an address of this machine: use 127.0.0.1, [::1], 0.0.0.0 or [::]",
                    addr.ip()
                )),
                io::ErrorKind::PermissionDenied => Some(format!(
                    "ports below 1024 need privileges: pick a port such as {}",
                    9000
                )),
                _ => None,
            },
            Error::SetBuffer { .. } => Some(
                "pick a smaller size; the kernel caps requests at net.core.rmem_max/wmem_max"
                    .to_string(),
            ),
            Error::PeerUnreachable { peer } => Some(format!(
                "start a listener there (dgram listen {peer}) or check the address"
            )),
            Error::PayloadTooLarge { .. } => {
                Some("send less: split the data over several datagrams".to_string())
            }
            Error::FamilyMismatch { family, .. } => Some(format!(
                "bind an address of the peer's family, or [::] for both (this socket is {family})"
            )),
            Error::LoadHistory { .. } => {
                Some("move the file away, or pick another with --history FILE".to_string())
            }
            Error::ThreadPanicked { .. } => {
                Some("this is a bug in dgram: please report it with the command line".to_string())
            }
            _ => None,
        }
    }
}

/// Renders an error on one line: what failed, each cause in turn, then what
/// to do about it.
pub fn report(err: &Error) -> String {
    let mut line = format!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        line.push_str(&format!("; {hint}"));
    }
    line
}
