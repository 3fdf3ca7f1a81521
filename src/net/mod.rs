//! The network layer: the socket and what the kernel allows.
//!
//! - [`endpoint`]: the socket2 UDP socket ([`Endpoint`]): bind, buffer sizes
//!   set and read back, a send that survives ICMP refusals.
//! - [`capture`]: `--pcap`: every datagram in and out, as it was on the
//!   wire, in a pcap file shared by a command's sockets.
//! - [`addr`]: how addresses are shown, which local address reaches which
//!   peer, and whether an address is this machine's.
//! - [`limits`]: payload and buffer limits, checked before allocating.
//! - [`group`]: multicast and broadcast groups (a member's two sockets,
//!   interfaces, the `/why` diagnosis).
//! - [`sys`]: the platform module (Linux extras, portable fallback).
//! - `netns` (Linux build only): network namespaces of dgram's own for
//!   `dgram lab nat`: made, entered with `setns(2)`, removed on drop.

pub mod addr;
pub mod capture;
pub mod endpoint;
pub mod group;
pub mod limits;
#[cfg(all(target_os = "linux", not(feature = "portable")))]
pub mod netns;
pub mod sys;

pub use endpoint::{BufferSize, BufferVerdict, Buffers, Endpoint, SocketOptions};
pub use sys::{Capabilities, PeerError};
