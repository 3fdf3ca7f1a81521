//! The sizes UDP and the kernel allow, and the checks that keep every
//! payload inside them before anything is allocated or sent.

use std::net::SocketAddr;

use crate::Error;

/// The largest UDP payload over IPv4: 65535 - 20 (IPv4 header) - 8 (UDP
/// header).
pub const MAX_PAYLOAD_V4: usize = 65507;

/// The largest UDP payload over IPv6 (without jumbograms): 65535 - 8.
pub const MAX_PAYLOAD_V6: usize = 65527;

/// The largest payload over any family: no size above this is ever worth
/// allocating.
pub const MAX_PAYLOAD: usize = MAX_PAYLOAD_V6;

/// The largest application receive buffer worth having: no UDP datagram is
/// longer than this.
pub const MAX_RECV_SIZE: usize = 65535;

/// The largest socket buffer dgram will ask the kernel for (1 GiB). Linux
/// caps requests far below this anyway; anything larger is a typo.
pub const MAX_BUFFER: usize = 1 << 30;

/// The payload limit towards one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The largest payload in bytes.
    pub bytes: usize,
    /// The address family that sets it, for messages ("IPv4", "IPv6").
    pub family: &'static str,
}

/// The largest UDP payload that can be sent to `to`. An IPv4-mapped IPv6
/// address travels as IPv4, so it gets the IPv4 limit.
///
/// ```
/// use dgram::net::limits::payload_limit;
///
/// assert_eq!(payload_limit(&"127.0.0.1:9".parse().unwrap()).bytes, 65507);
/// assert_eq!(payload_limit(&"[::1]:9".parse().unwrap()).bytes, 65527);
/// ```
pub fn payload_limit(to: &SocketAddr) -> Limit {
    match to {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => Limit {
            bytes: MAX_PAYLOAD_V6,
            family: "IPv6",
        },
        _ => Limit {
            bytes: MAX_PAYLOAD_V4,
            family: "IPv4",
        },
    }
}

/// Refuses a payload of `len` bytes that UDP cannot carry to `to`.
pub fn check_payload(len: usize, to: &SocketAddr) -> Result<(), Error> {
    let limit = payload_limit(to);
    if len > limit.bytes {
        return Err(Error::PayloadTooLarge {
            len: len as u64,
            limit: limit.bytes,
            family: limit.family,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits are the protocol's: 65507 over IPv4 (mapped addresses
    /// included), 65527 over IPv6, and one byte more is refused.
    #[test]
    fn limits_follow_the_family() {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
        assert_eq!(payload_limit(&v4).bytes, 65507);
        assert_eq!(payload_limit(&v6).bytes, 65527);
        assert_eq!(payload_limit(&mapped).bytes, 65507);
        assert!(check_payload(65507, &v4).is_ok());
        assert!(check_payload(65508, &v4).is_err());
        assert!(check_payload(65527, &v6).is_ok());
        assert!(check_payload(65528, &v6).is_err());
    }
}
