//! Platform-specific socket calls, behind one portable interface.
//!
//! On Linux (`sys/linux.rs`) receiving uses `recvmsg` with `MSG_TRUNC` (the
//! true length of a truncated datagram) and the `SO_RXQ_OVFL` control message
//! (the socket's drop counter), the drop counter is also read at any time with
//! `SO_MEMINFO`, and ICMP errors are heard through `IP_RECVERR` /
//! `IPV6_RECVERR` and read from the socket's error queue (`MSG_ERRQUEUE`).
//!
//! Everywhere else (and on Linux with the `portable` feature) the fallback
//! uses plain socket2 calls: truncation is still flagged, the rest is absent
//! and [`Capabilities`] says so.

use std::net::SocketAddr;

#[cfg_attr(all(target_os = "linux", not(feature = "portable")), path = "linux.rs")]
#[cfg_attr(
    not(all(target_os = "linux", not(feature = "portable"))),
    path = "portable.rs"
)]
mod imp;

pub use imp::{Scratch, enable_extras, kernel_drops, recv, take_errors};

/// Which of the platform extras this socket has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// The true length of a truncated datagram is known (`MSG_TRUNC`).
    pub true_length: bool,
    /// Kernel drops for this socket are counted (`SO_RXQ_OVFL`, `SO_MEMINFO`).
    pub drop_count: bool,
    /// ICMP errors such as port unreachable are heard (`IP_RECVERR`).
    pub icmp_errors: bool,
}

/// One datagram as the platform delivered it into the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes delivered into the buffer (never more than its length).
    pub len: usize,
    /// The kernel cut the datagram to fit the buffer.
    pub truncated: bool,
    /// The datagram's length on the wire, where the platform tells it.
    pub original_len: Option<usize>,
    /// The sender.
    pub from: SocketAddr,
    /// The socket's cumulative drop counter as it stood when this datagram
    /// was queued (`SO_RXQ_OVFL`); absent until the first drop.
    pub drop_counter: Option<u32>,
}

/// An ICMP error the kernel queued for this socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerError {
    /// The destination of the datagram that provoked the error.
    pub peer: SocketAddr,
    /// The error, as an OS error number (`ECONNREFUSED` for port unreachable).
    pub errno: i32,
}

impl PeerError {
    /// True for ICMP port unreachable: nothing listens at `peer`.
    pub fn is_refusal(&self) -> bool {
        std::io::Error::from_raw_os_error(self.errno).kind()
            == std::io::ErrorKind::ConnectionRefused
    }

    /// The error's text, as the OS words it.
    pub fn message(&self) -> String {
        let text = std::io::Error::from_raw_os_error(self.errno).to_string();
        // Drop the "(os error N)" tail: the number means nothing to a user.
        match text.find(" (os error") {
            Some(at) => text[..at].to_string(),
            None => text,
        }
    }
}

/// Writes `v4` as it should be shown: IPv4-mapped IPv6 addresses (which a
/// dual-stack socket reports for IPv4 peers) become plain IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The terminal's settings, saved before the line editor switches it to raw
/// mode, so that a chat ended by a signal (while the editor is still
/// reading) can put the terminal back as it found it.
#[derive(Debug)]
pub struct TerminalState {
    #[cfg(unix)]
    saved: nix::sys::termios::Termios,
}

impl TerminalState {
    /// Saves the settings of the terminal on standard input.
    #[cfg(unix)]
    pub fn save() -> Option<TerminalState> {
        nix::sys::termios::tcgetattr(std::io::stdin())
            .ok()
            .map(|saved| TerminalState { saved })
    }

    /// Restores the saved settings, and turns off bracketed paste, which
    /// the line editor turns on.
    #[cfg(unix)]
    pub fn restore(&self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        use std::io::Write;
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?2004l\r\n");
        let _ = out.flush();
    }

    /// Nothing to save on this platform.
    #[cfg(not(unix))]
    pub fn save() -> Option<TerminalState> {
        None
    }

    /// Nothing to restore on this platform.
    #[cfg(not(unix))]
    pub fn restore(&self) {}
}
