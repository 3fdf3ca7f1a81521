//! What dgram needs to know about socket addresses: how they are shown,
//! which local address can reach which peer, and whether an address belongs
//! to this machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::SockAddr;

use crate::Error;

/// Writes `addr` as it should be shown: IPv4-mapped IPv6 addresses (which a
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

/// The name of the network interface numbered `index` (an IPv6 scope),
/// if there is one. Names are looked up once per thread and kept: a
/// flood of datagrams from a link-local sender must not cost a lookup
/// each, and interfaces are few (at most 64 names are kept).
pub fn interface_name(index: u32) -> Option<String> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static NAMES: RefCell<HashMap<u32, Option<String>>> = RefCell::new(HashMap::new());
    }
    if let Some(name) = NAMES.with(|names| names.borrow().get(&index).cloned()) {
        return name;
    }
    let name = look_up_interface(index);
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if names.len() < 64 {
            names.insert(index, name.clone());
        }
    });
    name
}

#[cfg(unix)]
fn look_up_interface(index: u32) -> Option<String> {
    nix::net::if_::if_indextoname(index)
        .ok()
        .map(|name| name.to_string_lossy().into_owned())
        // nix hands back an empty name for an index no interface has.
        .filter(|name| !name.is_empty())
}

#[cfg(not(unix))]
fn look_up_interface(_index: u32) -> Option<String> {
    None
}

/// "IPv4" or "IPv6", for messages; an IPv4-mapped address counts as IPv4.
pub fn family_name(addr: &SocketAddr) -> &'static str {
    if canonical(*addr).is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Any local address of `peer`'s family with a port the system chooses:
/// where a socket that only talks to `peer` binds by default.
pub fn any_port_for(peer: &SocketAddr) -> SocketAddr {
    let ip = match canonical(*peer).ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// Refuses a peer that a socket bound to `local` cannot reach: an IPv4
/// socket reaches IPv4 peers only, an IPv6 socket bound to a particular
/// address reaches IPv6 peers only, and `[::]` (dual-stack) reaches both.
///
/// Checked before anything is sent, in every direction, so that the user
/// gets one clear message instead of a late "Network is unreachable".
pub fn check_family(local: SocketAddr, peer: SocketAddr) -> Result<(), Error> {
    let local_v4 = canonical(local).is_ipv4();
    let peer_v4 = canonical(peer).is_ipv4();
    let dual_stack = matches!(local, SocketAddr::V6(v6) if v6.ip().is_unspecified());
    if local_v4 == peer_v4 || dual_stack {
        return Ok(());
    }
    Err(Error::FamilyMismatch {
        local,
        peer,
        local_family: family_name(&local),
        peer_family: family_name(&peer),
    })
}

/// Refuses a peer that is the socket's own address (`--bind` and the
/// destination alike, or a wildcard `--bind` and a loopback destination on
/// its port): what is sent comes straight back to the sender, where `send`
/// and `ping` would count it as a reply and a chat would retry a message
/// nobody else can acknowledge.
pub fn check_not_self(local: SocketAddr, peer: SocketAddr) -> Result<(), Error> {
    let (local, peer) = (canonical(local), canonical(peer));
    let same_ip = local.ip() == peer.ip()
        || (local.ip().is_unspecified() && peer.ip().is_loopback() && reaches(local, peer));
    if local.port() == 0 || local.port() != peer.port() || !same_ip {
        return Ok(());
    }
    Err(Error::Usage {
        message: format!(
            "{peer} is this socket's own address (bound to {local}): what is sent there comes back to the sender; give the peer's address, or bind another port (--bind)"
        ),
    })
}

/// True when a wildcard `local` listens on `peer`'s family (`[::]` on both).
fn reaches(local: SocketAddr, peer: SocketAddr) -> bool {
    local.is_ipv6() || peer.is_ipv4()
}

/// The address to hand to `sendto`: an IPv4 peer of a dual-stack IPv6
/// socket is written IPv4-mapped (every platform accepts that); an
/// IPv4-mapped peer of an IPv4 socket is written as plain IPv4.
pub fn sendto_target(local: SocketAddr, peer: SocketAddr) -> SockAddr {
    match (local, canonical(peer)) {
        (SocketAddr::V6(_), SocketAddr::V4(v4)) => {
            let mapped: Ipv6Addr = v4.ip().to_ipv6_mapped();
            SocketAddr::new(IpAddr::V6(mapped), v4.port()).into()
        }
        (_, peer) => peer.into(),
    }
}

/// What this machine can tell about a port that refused a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// An address of this machine, and no socket holds the port: nothing
    /// is listening there.
    Free,
    /// An address of this machine, and a socket holds the port, yet it
    /// refused: it takes datagrams from one peer only (a connected socket,
    /// as `nc -u -l` makes after its first peer).
    InUse,
    /// Not an address of this machine (or it cannot tell).
    Unknown,
}

/// Looks at `addr`'s port on this machine with a bind that is closed at
/// once (it sends nothing).
pub fn port_state(addr: SocketAddr) -> PortState {
    match UdpSocket::bind(addr) {
        Ok(_) => PortState::Free,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => PortState::InUse,
        Err(_) => PortState::Unknown,
    }
}

/// True when a datagram from `from` was sent by the socket bound to
/// `local` (a group member hears its own datagrams, looped back by
/// multicast): the same port, and the same address, or one of this host's
/// when `local` is a wildcard.
pub fn is_own(from: SocketAddr, local: SocketAddr) -> bool {
    from.port() == local.port()
        && (from.ip() == local.ip() || (local.ip().is_unspecified() && is_local(from.ip())))
}

/// True when `ip` is an address of this machine: a loopback address, or
/// one a socket can be bound to. (A bind to port 0 that is closed at once
/// sends nothing.)
pub fn is_local(ip: IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A socket reaches peers of its own family; `[::]` reaches both; every
    /// other pairing is refused with the same kind of error both ways.
    #[test]
    fn families_must_match_unless_dual_stack() {
        assert!(check_family(addr("0.0.0.0:0"), addr("127.0.0.1:9")).is_ok());
        assert!(check_family(addr("[::]:0"), addr("127.0.0.1:9")).is_ok());
        assert!(check_family(addr("[::]:0"), addr("[::1]:9")).is_ok());
        assert!(check_family(addr("[::1]:0"), addr("[::1]:9")).is_ok());
        assert!(check_family(addr("0.0.0.0:0"), addr("[::ffff:127.0.0.1]:9")).is_ok());
        for (local, peer) in [("[::1]:0", "127.0.0.1:9"), ("127.0.0.1:0", "[::1]:9")] {
            let err = check_family(addr(local), addr(peer)).unwrap_err();
            assert!(matches!(err, Error::FamilyMismatch { .. }), "{err}");
        }
    }

    /// Loopback and bindable addresses are local; a documentation address
    /// (192.0.2.0/24, never assigned) is not.
    #[test]
    fn local_addresses() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(is_local("127.0.0.53".parse().unwrap()));
        assert!(is_local("::1".parse().unwrap()));
        assert!(!is_local("192.0.2.1".parse().unwrap()));
        assert!(!is_local("0.0.0.0".parse().unwrap()));
    }

    /// A held port is in use, a closed one free, another machine's
    /// unknown.
    #[test]
    fn port_states() {
        let held = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        assert_eq!(port_state(addr), PortState::InUse);
        drop(held);
        assert_eq!(port_state(addr), PortState::Free);
        assert_eq!(
            port_state("192.0.2.1:9200".parse().unwrap()),
            PortState::Unknown
        );
    }

    /// Mapped addresses are shown as the IPv4 addresses they are.
    /// A destination that is the socket itself is refused; another port,
    /// another address, or a system-chosen port is not.
    #[test]
    fn own_address_is_not_a_peer() {
        let refused = |local: &str, peer: &str| check_not_self(addr(local), addr(peer)).is_err();
        assert!(refused("127.0.0.1:9000", "127.0.0.1:9000"));
        assert!(refused("0.0.0.0:9000", "127.0.0.1:9000"));
        assert!(refused("0.0.0.0:9000", "127.0.0.2:9000"));
        assert!(refused("[::]:9000", "[::1]:9000"));
        assert!(refused("[::]:9000", "127.0.0.1:9000"));
        assert!(refused("[::1]:9000", "[::1]:9000"));
        assert!(!refused("127.0.0.1:9000", "127.0.0.1:9001"));
        assert!(!refused("127.0.0.1:9000", "127.0.0.2:9000"));
        assert!(!refused("0.0.0.0:0", "127.0.0.1:9000"));
        assert!(!refused("0.0.0.0:9000", "192.0.2.1:9000"));
        assert!(!refused("[::1]:9000", "127.0.0.1:9000"));
        let message = check_not_self(addr("127.0.0.1:9000"), addr("127.0.0.1:9000"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("own address"), "{message}");
    }

    #[test]
    fn canonical_unmaps() {
        assert_eq!(canonical(addr("[::ffff:10.0.0.1]:5")), addr("10.0.0.1:5"));
        assert_eq!(canonical(addr("[::1]:5")), addr("[::1]:5"));
    }
}
