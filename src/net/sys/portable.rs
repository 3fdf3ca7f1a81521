//! The portable fallback: plain socket2 calls, no extras.

use std::io;
use std::mem::MaybeUninit;

use socket2::{MaybeUninitSlice, Socket};

use super::{Capabilities, PeerError, Received};
use crate::net::addr::canonical;

/// Per-receiver scratch space (nothing is needed here).
#[derive(Debug, Default)]
pub struct Scratch {
    _nothing: (),
}

/// Nothing to enable: no extras on this platform.
pub fn enable_extras(_socket: &Socket) -> Capabilities {
    Capabilities::default()
}

/// The busy poller's look at the queue: as [`recv`] without `wait`, it
/// says `WouldBlock` without looking (busy polling falls back to blocking
/// receives here: [`LOOKS_WITHOUT_WAITING`] is false).
pub fn look(_socket: &Socket, _buf: &mut [u8]) -> io::Result<Received> {
    Err(io::ErrorKind::WouldBlock.into())
}

/// Receives one datagram; `truncated` comes from the `MSG_TRUNC` flag that
/// `recvmsg` sets, but the true length is unknown.
///
/// Without `wait` there is no portable way to look without waiting (short
/// of switching the socket to non-blocking and back, two more calls per
/// datagram): it says `WouldBlock` without looking, so that a caller
/// writes its output after every datagram instead of after a burst.
pub fn recv(
    socket: &Socket,
    buf: &mut [u8],
    _scratch: &mut Scratch,
    wait: bool,
) -> io::Result<Received> {
    if !wait {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and the socket
    // only writes initialised bytes into the buffer.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let mut bufs = [MaybeUninitSlice::new(uninit)];
    let (len, flags, from) = socket.recv_from_vectored(&mut bufs)?;
    let from = from
        .as_socket()
        .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    Ok(Received {
        len: len.min(buf.len()),
        truncated: flags.is_truncated(),
        original_len: None,
        from: canonical(from),
        drop_counter: None,
        timestamp: None,
        segment: None,
    })
}

/// No receive coalescing here.
pub fn set_gro(_socket: &Socket, _on: bool) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "UDP_GRO is Linux only",
    ))
}

/// No segmentation offload here.
pub fn check_gso(_socket: &Socket, _segment: u16) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "UDP_SEGMENT is Linux only",
    ))
}

/// `recv` without waiting does not look (see [`recv`]): its `WouldBlock`
/// says nothing about the queue.
pub const LOOKS_WITHOUT_WAITING: bool = false;

/// No segmentation offload here.
pub fn send_segments(_socket: &Socket, _buf: &[u8], _segment: u16) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "UDP_SEGMENT is Linux only",
    ))
}

/// No error queue here: ICMP errors are not reported.
pub fn take_errors(_socket: &Socket) -> Vec<PeerError> {
    Vec::new()
}

/// The drop counter is not available here.
pub fn kernel_drops(_socket: &Socket) -> Option<u32> {
    None
}

/// Group memberships cannot be read here.
pub fn group_memberships(_group: std::net::IpAddr) -> Option<Vec<String>> {
    None
}

/// The route table cannot be read here.
pub fn route_to(_dest: std::net::Ipv4Addr) -> Option<Option<(String, Option<std::net::Ipv4Addr>)>> {
    None
}

/// The kernel's UDP table cannot be read here.
pub fn udp_table_entry(_local: std::net::SocketAddrV4) -> Option<super::UdpTableEntry> {
    None
}

/// The don't-fragment flag cannot be set here: `dgram mtu` needs Linux.
pub fn set_pmtu_mode(_socket: &Socket, _mode: super::PmtuMode) -> io::Result<super::PmtuMode> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "IP_MTU_DISCOVER (the don't-fragment flag) is set only on Linux",
    ))
}

/// No error queue here: neither ICMP "too big" nor local `EMSGSIZE`
/// reports are read.
pub fn take_path_errors(_socket: &Socket) -> Vec<super::PathError> {
    Vec::new()
}

/// `EMSGSIZE`: "too big" (only compared with, never produced, here).
#[cfg(unix)]
pub const EMSGSIZE: i32 = nix::errno::Errno::EMSGSIZE as i32;
/// `WSAEMSGSIZE`: "too big" (only compared with, never produced, here).
#[cfg(not(unix))]
pub const EMSGSIZE: i32 = 10040;
