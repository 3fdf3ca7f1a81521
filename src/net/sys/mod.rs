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
//! `dgram mtu` sets `IP_MTU_DISCOVER`/`IPV6_MTU_DISCOVER` ([`set_pmtu_mode`])
//! and reads the MTU an ICMP "too big" or a local `EMSGSIZE` names from the
//! error queue ([`take_path_errors`]).
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
    EMSGSIZE, LOOKS_WITHOUT_WAITING, Scratch, check_gso, enable_extras, group_memberships,
    kernel_drops, look, recv, route_to, send_segments, set_gro, set_pmtu_mode, take_errors,
    take_path_errors, udp_table_entry,
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

/// A socket's path MTU discovery mode (`IP_MTU_DISCOVER` values, the same
/// numbers as `IPV6_MTU_DISCOVER`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmtuMode {
    /// `IP_PMTUDISC_DONT`: no don't-fragment flag; the kernel fragments.
    Dont,
    /// `IP_PMTUDISC_WANT`: Linux's default for UDP.
    Want,
    /// `IP_PMTUDISC_DO`: the flag set, sends limited to the learned MTU.
    Do,
    /// `IP_PMTUDISC_PROBE`: the flag set, the learned MTU ignored.
    Probe,
    /// A value this code does not name (`IP_PMTUDISC_INTERFACE`, …).
    Other(i32),
}

impl PmtuMode {
    /// The option's value.
    pub fn value(self) -> i32 {
        match self {
            PmtuMode::Dont => 0,
            PmtuMode::Want => 1,
            PmtuMode::Do => 2,
            PmtuMode::Probe => 3,
            PmtuMode::Other(value) => value,
        }
    }

    /// The mode of an option value.
    pub fn from_value(value: i32) -> Self {
        match value {
            0 => PmtuMode::Dont,
            1 => PmtuMode::Want,
            2 => PmtuMode::Do,
            3 => PmtuMode::Probe,
            other => PmtuMode::Other(other),
        }
    }
}

/// Who queued an error on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// This machine's stack (`SO_EE_ORIGIN_LOCAL`): a send larger than the
    /// interface's MTU.
    Local,
    /// An ICMP or ICMPv6 message from the path.
    Icmp,
    /// Anything else.
    Other,
}

/// An error from the socket's error queue, with what a path MTU search
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathError {
    /// The destination of the datagram that provoked it.
    pub peer: SocketAddr,
    /// The error number (`EMSGSIZE` for "too big", `ECONNREFUSED` for port
    /// unreachable).
    pub errno: i32,
    /// Who reported it.
    pub origin: ErrorOrigin,
    /// The MTU named with an `EMSGSIZE` (the router's next hop, or the
    /// local interface's).
    pub mtu: Option<usize>,
    /// The router (or host) that sent the ICMP, where known.
    pub reporter: Option<std::net::IpAddr>,
    /// The first [`QUOTED`] bytes of the offending datagram's payload, when
    /// the ICMP quoted that much (RFC 792 asks only for the UDP header;
    /// Linux routers quote more): they tell which probe it was about.
    pub quoted: Option<[u8; QUOTED]>,
}

/// How many bytes of an offending datagram [`PathError`] keeps.
pub const QUOTED: usize = 14;
