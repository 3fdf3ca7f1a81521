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
    })
}

/// No error queue here: ICMP errors are not reported.
pub fn take_errors(_socket: &Socket) -> Vec<PeerError> {
    Vec::new()
}

/// The drop counter is not available here.
pub fn kernel_drops(_socket: &Socket) -> Option<u32> {
    None
}
