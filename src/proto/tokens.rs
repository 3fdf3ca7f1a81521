//! Tokens bound to an address: the first bytes of HMAC-SHA256 under a
//! secret of this run over a label, the address (IP and port) and a
//! session. Only what was sent to that address can bring one back, and
//! nothing needs to be kept until it does: a group's hello challenges
//! (section 9) and the handshake's cookies (section 10.5).

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::envelope::SessionId;

/// The first `N` bytes (at most 32) of HMAC-SHA256(`secret`, `label` ‖ IP
/// (4 or 16 bytes) ‖ port (2, big-endian) ‖ `session`).
pub fn for_address<const N: usize>(
    secret: &[u8; 32],
    label: &[u8],
    addr: SocketAddr,
    session: SessionId,
) -> [u8; N] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    match addr {
        SocketAddr::V4(v4) => mac.update(&v4.ip().octets()),
        SocketAddr::V6(v6) => mac.update(&v6.ip().octets()),
    }
    mac.update(&addr.port().to_be_bytes());
    mac.update(&session.0);
    let tag = mac.finalize().into_bytes();
    let mut token = [0; N];
    token.copy_from_slice(&tag[..N]);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token depends on every input: secret, label, IP, port, session.
    #[test]
    fn every_input_counts() {
        let addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let base: [u8; 16] = for_address(&[1; 32], b"l", addr, SessionId([2; 8]));
        let others: [[u8; 16]; 5] = [
            for_address(&[9; 32], b"l", addr, SessionId([2; 8])),
            for_address(&[1; 32], b"m", addr, SessionId([2; 8])),
            for_address(
                &[1; 32],
                b"l",
                "10.0.0.2:4000".parse().unwrap(),
                SessionId([2; 8]),
            ),
            for_address(
                &[1; 32],
                b"l",
                "10.0.0.1:4001".parse().unwrap(),
                SessionId([2; 8]),
            ),
            for_address(&[1; 32], b"l", addr, SessionId([3; 8])),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }
}
