//! A received datagram, validated: what the rest of dgram sees of it.

use std::net::SocketAddr;
use std::time::SystemTime;

/// One datagram as the rest of dgram sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// When it was received: the kernel's timestamp where the platform
    /// gives one, else the moment dgram read it.
    pub at: SystemTime,
    /// Who sent it (IPv4-mapped addresses already written as IPv4).
    pub from: SocketAddr,
    /// The bytes delivered: the whole datagram, or its first `--max-size`
    /// bytes when `truncated`.
    pub payload: Vec<u8>,
    /// The kernel cut the datagram to fit the application's buffer.
    pub truncated: bool,
    /// The datagram's true length when truncated, where the platform tells.
    pub original_len: Option<usize>,
}

impl Datagram {
    /// The number of bytes delivered.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// True for a datagram with no payload: a message in its own right.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as text, when it is valid UTF-8 (an empty payload is the
    /// empty text).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// Bytes the truncation cost, where the true length is known.
    pub fn lost_bytes(&self) -> Option<usize> {
        self.original_len
            .map(|n| n.saturating_sub(self.payload.len()))
    }
}
