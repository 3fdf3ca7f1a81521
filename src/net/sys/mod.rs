//! Platform-specific socket calls, behind one portable interface.
//!
//! On Linux (`sys/linux.rs`) receiving uses `recvmsg` with `MSG_TRUNC` (the
//! true length of a truncated datagram), the `SO_RXQ_OVFL` control message
//! (the socket's drop counter) and `SO_TIMESTAMPNS` (when the kernel took the
//! datagram in); the drop counter is also read at any time with
//! `SO_MEMINFO`, and ICMP errors are heard through `IP_RECVERR` /
//! `IPV6_RECVERR` and read from the socket's error queue (`MSG_ERRQUEUE`).
//! The kernel's own table of UDP sockets (`/proc/net/udp`: queue and drops,
//! seen from outside the socket) is read here too, for `dgram lab`.
//!
//! Everywhere else (and on Linux with the `portable` feature) the fallback
//! uses plain socket2 calls: truncation is still flagged, the rest is absent
//! and [`Capabilities`] says so.

use std::net::SocketAddr;
use std::time::SystemTime;

#[cfg_attr(all(target_os = "linux", not(feature = "portable")), path = "linux.rs")]
#[cfg_attr(
    not(all(target_os = "linux", not(feature = "portable"))),
    path = "portable.rs"
)]
mod imp;

pub use imp::{
    LOOKS_WITHOUT_WAITING, Scratch, check_gso, enable_extras, group_memberships, kernel_drops,
    recv, route_to, send_segments, set_gro, take_errors, udp_table_entry,
};

/// A UDP socket's line of the kernel's table (`/proc/net/udp` on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTableEntry {
    /// Bytes queued for reading, each datagram charged with its overhead.
    pub queued: u64,
    /// Datagrams the kernel dropped for this socket.
    pub drops: u64,
}

/// Which of the platform extras this socket has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The true length of a truncated datagram is known (`MSG_TRUNC`).
    pub true_length: bool,
    /// Kernel drops for this socket are counted (`SO_RXQ_OVFL`, `SO_MEMINFO`).
    pub drop_count: bool,
    /// ICMP errors such as port unreachable are heard (`IP_RECVERR`).
    pub icmp_errors: bool,
    /// Each datagram carries the time the kernel received it
    /// (`SO_TIMESTAMPNS`).
    pub kernel_timestamps: bool,
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
    /// The sender, as the socket reported it (possibly IPv4-mapped).
    pub from: SocketAddr,
    /// The socket's cumulative drop counter as it stood when this datagram
    /// was queued (`SO_RXQ_OVFL`); absent until the first drop.
    pub drop_counter: Option<u32>,
    /// When the kernel received the datagram (`SO_TIMESTAMPNS`), where the
    /// platform tells it.
    pub timestamp: Option<SystemTime>,
    /// With `UDP_GRO` on (bench only): the size of each of the datagrams
    /// coalesced into this receive (the last may be shorter).
    pub segment: Option<usize>,
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
