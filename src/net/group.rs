//! Group sockets: a room on a LAN over IPv4 or IPv6 multicast, or IPv4
//! broadcast.
//!
//! A group member has two sockets:
//!
//! - the **group socket**, bound to the group's port and shared with the
//!   other members on the same host (`SO_REUSEADDR` and `SO_REUSEPORT`, on
//!   purpose and only here), which hears what is sent to the group;
//! - its own **unicast socket** (the [`Endpoint`](super::Endpoint)'s main
//!   socket, a port of its own), which sends everything, to the group and
//!   to members, and hears what members send to it alone: receipts.
//!
//! With one shared socket, a receipt sent to `host:port` would reach only
//! one of the members on that host (the kernel picks one socket for a
//! unicast datagram to a shared port), and the others would never hear
//! theirs.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};

use crate::Error;

/// Multicast or broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// `--group`: an IPv4 or IPv6 multicast group.
    Multicast,
    /// `--broadcast`: an IPv4 broadcast address.
    Broadcast,
}

/// The interface a group uses (`--iface NAME|ADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iface {
    /// By name (`eth0`).
    Name(String),
    /// By one of its addresses.
    Addr(IpAddr),
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iface::Name(name) => f.write_str(name),
            Iface::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

impl Iface {
    /// Reads `--iface`: an address if it parses as one, else a name.
    pub fn parse(text: &str) -> Iface {
        text.parse()
            .map_or_else(|_| Iface::Name(text.to_string()), Iface::Addr)
    }
}

/// What the user asked for (`--group`/`--broadcast`, `--iface`, `--ttl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOptions {
    /// The group's address and port.
    pub addr: SocketAddr,
    /// Multicast or broadcast.
    pub kind: GroupKind,
    /// The interface, if chosen.
    pub iface: Option<Iface>,
    /// Multicast TTL (hop limit): 1 keeps the group on the LAN.
    pub ttl: u32,
}

/// The TTL of a group unless `--ttl` says otherwise: the LAN only.
pub const DEFAULT_TTL: u32 = 1;

/// Checks `--group` or `--broadcast` before anything is opened: a
/// multicast group must be a multicast address, an IPv6 group needs an
/// interface, broadcast is IPv4. The error is a usage error.
pub fn check(options: &GroupOptions) -> Result<(), Error> {
    let usage = |message: String| Err(Error::Usage { message });
    let addr = options.addr;
    if addr.port() == 0 {
        return usage(format!(
            "{addr} has port 0: a group needs a port every member uses, such as {}",
            SocketAddr::new(addr.ip(), 5000)
        ));
    }
    match (options.kind, addr.ip()) {
        (GroupKind::Multicast, ip) if !ip.is_multicast() => usage(format!(
            "{ip} is not a multicast address: --group takes 224.0.0.0/4 (such as 239.1.2.3:5000) or ff00::/8 (such as [ff02::1:2]:5000); for one peer use --peer"
        )),
        (GroupKind::Multicast, IpAddr::V6(_)) if options.iface.is_none() => usage(format!(
            "an IPv6 group needs --iface NAME: {ip} exists on every interface",
            ip = addr.ip()
        )),
        (GroupKind::Broadcast, IpAddr::V6(_)) => usage(
            "IPv6 has no broadcast: use --group with a multicast address such as [ff02::1]:5000"
                .to_string(),
        ),
        (GroupKind::Broadcast, IpAddr::V4(ip)) if ip.is_multicast() => {
            usage(format!("{ip} is a multicast address: use --group {addr}"))
        }
        _ if options.ttl == 0 || options.ttl > 255 => usage(format!(
            "--ttl {} is out of range: 1 to 255 (1 keeps the group on the LAN)",
            options.ttl
        )),
        _ => Ok(()),
    }
}

/// An interface of this host: its name, index and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its index (for IPv6 memberships and routes).
    pub index: u32,
    /// Its IPv4 address, if any.
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 addresses.
    pub v6: Vec<Ipv6Addr>,
    /// Its IPv4 broadcast address, if any.
    pub broadcast: Option<Ipv4Addr>,
}

/// The interfaces of this host.
#[cfg(unix)]
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut found: Vec<Interface> = Vec::new();
    for ifaddr in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let name = ifaddr.interface_name.clone();
        let index = match found.iter().position(|i| i.name == name) {
            Some(at) => at,
            None => {
                let index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(0);
                found.push(Interface {
                    name,
                    index,
                    v4: None,
                    v6: Vec::new(),
                    broadcast: None,
                });
                found.len() - 1
            }
        };
        let Some(address) = ifaddr.address else {
            continue;
        };
        if let Some(v4) = address.as_sockaddr_in() {
            found[index].v4.get_or_insert(v4.ip());
            // A broadcast-capable interface's broadcast address: as set, or
            // (`ip addr add` without `brd`) the subnet's highest address,
            // which the kernel takes as broadcast all the same.
            let mask = ifaddr.netmask.as_ref().and_then(|m| m.as_sockaddr_in());
            // (glibc gives the address itself when none is set.)
            let set = ifaddr
                .broadcast
                .as_ref()
                .and_then(|b| b.as_sockaddr_in())
                .filter(|b| b.ip() != v4.ip());
            if ifaddr
                .flags
                .contains(nix::net::if_::InterfaceFlags::IFF_BROADCAST)
            {
                let derived = mask.map(|m| Ipv4Addr::from(v4.ip().to_bits() | !m.ip().to_bits()));
                if let Some(broadcast) = set.map(|b| b.ip()).or(derived) {
                    found[index].broadcast.get_or_insert(broadcast);
                }
            }
        } else if let Some(v6) = address.as_sockaddr_in6() {
            found[index].v6.push(v6.ip());
        }
    }
    Ok(found)
}

/// No interface list on this platform: `--iface` takes only addresses.
#[cfg(not(unix))]
pub fn interfaces() -> io::Result<Vec<Interface>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "interfaces cannot be listed on this platform",
    ))
}

/// Finds the interface `--iface` names, or says which exist.
pub fn find_interface(iface: &Iface) -> Result<Interface, Error> {
    let all = interfaces().map_err(|source| Error::ListInterfaces { source })?;
    let found = all.iter().find(|i| match iface {
        Iface::Name(name) => &i.name == name,
        Iface::Addr(IpAddr::V4(addr)) => i.v4 == Some(*addr),
        Iface::Addr(IpAddr::V6(addr)) => i.v6.contains(addr),
    });
    found.cloned().ok_or_else(|| Error::Usage {
        message: format!(
            "there is no interface {iface} here; interfaces: {}",
            all.iter()
                .map(|i| match i.v4 {
                    Some(v4) => format!("{} ({v4})", i.name),
                    None => i.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// A group's settings as they were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's address and port.
    pub addr: SocketAddr,
    /// Multicast or broadcast.
    pub kind: GroupKind,
    /// The interface chosen (`None`: the kernel's route decides).
    pub iface: Option<Interface>,
    /// Multicast TTL.
    pub ttl: u32,
    /// Multicast loopback (always on: members on one host hear each other).
    pub loopback: bool,
}

/// Sets the group options on the unicast socket (the one that sends):
/// the multicast interface, TTL and loopback, or `SO_BROADCAST`.
pub fn configure_sender(socket: &Socket, info: &GroupInfo) -> Result<(), Error> {
    let set = |option: &'static str, result: io::Result<()>| {
        result.map_err(|source| Error::SetOption { option, source })
    };
    match (info.kind, info.addr) {
        (GroupKind::Broadcast, _) => set("SO_BROADCAST", socket.set_broadcast(true)),
        (GroupKind::Multicast, SocketAddr::V4(_)) => {
            if let Some(v4) = info.iface.as_ref().and_then(|i| i.v4) {
                set("IP_MULTICAST_IF", socket.set_multicast_if_v4(&v4))?;
            }
            set("IP_MULTICAST_TTL", socket.set_multicast_ttl_v4(info.ttl))?;
            set("IP_MULTICAST_LOOP", socket.set_multicast_loop_v4(true))
        }
        (GroupKind::Multicast, SocketAddr::V6(_)) => {
            if let Some(iface) = &info.iface {
                set("IPV6_MULTICAST_IF", socket.set_multicast_if_v6(iface.index))?;
            }
            set(
                "IPV6_MULTICAST_HOPS",
                socket.set_multicast_hops_v6(info.ttl),
            )?;
            set("IPV6_MULTICAST_LOOP", socket.set_multicast_loop_v6(true))
        }
    }
}

/// Opens the group socket: bound to the group's port, shared with the
/// other members on this host, a member of the group (multicast). It is
/// non-blocking: the endpoint polls it with its unicast socket.
pub fn open_group_socket(info: &GroupInfo) -> Result<Socket, Error> {
    let addr = info.addr;
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|source| Error::CreateSocket { family, source })?;
    let set = |option: &'static str, result: io::Result<()>| {
        result.map_err(|source| Error::SetOption { option, source })
    };
    set("SO_REUSEADDR", socket.set_reuse_address(true))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    set("SO_REUSEPORT", socket.set_reuse_port(true))?;
    if addr.is_ipv6() {
        set("IPV6_V6ONLY", socket.set_only_v6(true))?;
    }
    // Multicast: bound to the group address, the socket hears that group
    // alone (on Linux and the BSDs). Broadcast: the wildcard address, as
    // broadcasts to the subnet and to 255.255.255.255 both arrive there.
    let bind = match (info.kind, addr) {
        // An IPv6 group is bound on its interface (a link-local group
        // exists on every interface).
        (GroupKind::Multicast, SocketAddr::V6(mut v6)) => {
            if let Some(iface) = &info.iface {
                v6.set_scope_id(iface.index);
            }
            SocketAddr::V6(v6)
        }
        (GroupKind::Multicast, _) => addr,
        (GroupKind::Broadcast, _) => {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, addr.port()))
        }
    };
    socket
        .bind(&bind.into())
        .map_err(|source| Error::Bind { addr: bind, source })?;
    if info.kind == GroupKind::Multicast {
        join(&socket, info)?;
    }
    set("O_NONBLOCK", socket.set_nonblocking(true))?;
    Ok(socket)
}

/// Joins the group on its interface (or where the route to it leads).
fn join(socket: &Socket, info: &GroupInfo) -> Result<(), Error> {
    let joined = match info.addr {
        SocketAddr::V4(group) => {
            let iface = info
                .iface
                .as_ref()
                .and_then(|i| i.v4)
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            socket.join_multicast_v4(group.ip(), &iface)
        }
        SocketAddr::V6(group) => {
            let index = info.iface.as_ref().map_or(0, |i| i.index);
            socket.join_multicast_v6(group.ip(), index)
        }
    };
    joined.map_err(|source| Error::JoinGroup {
        group: info.addr.ip(),
        iface: info.iface.as_ref().map(|i| i.name.clone()),
        source,
    })
}

/// The address a member's own socket binds to: `requested` (from
/// `--bind` or [`unicast_bind_for`]), its wildcard address replaced by the
/// interface's, so that members see where it is.
pub fn member_bind(info: &GroupInfo, requested: SocketAddr) -> SocketAddr {
    match (requested, info.iface.as_ref().and_then(|i| i.v4)) {
        (SocketAddr::V4(v4), Some(ip)) if v4.ip().is_unspecified() => {
            SocketAddr::V4(SocketAddrV4::new(ip, v4.port()))
        }
        _ => requested,
    }
}

/// Waits at most `wait` until either socket has a datagram; false when
/// neither does.
#[cfg(unix)]
pub fn wait_readable(a: &Socket, b: &Socket, wait: std::time::Duration) -> io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [
        PollFd::new(a.as_fd(), PollFlags::POLLIN),
        PollFd::new(b.as_fd(), PollFlags::POLLIN),
    ];
    let ms = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without `poll`, the two sockets are looked at in turn, a millisecond
/// apart.
#[cfg(not(unix))]
pub fn wait_readable(_a: &Socket, _b: &Socket, wait: std::time::Duration) -> io::Result<bool> {
    std::thread::sleep(wait.min(std::time::Duration::from_millis(1)));
    Ok(true)
}

/// The interface whose broadcast address `ip` is (the one `--iface`
/// chose, or the one found), or why there is none: a host's address given
/// as a broadcast address would reach one host, not the LAN.
fn broadcast_interface(ip: Ipv4Addr, chosen: Option<Interface>) -> Result<Interface, Error> {
    let usage = |message: String| Err(Error::Usage { message });
    if let Some(iface) = chosen {
        return match iface.broadcast {
            Some(broadcast) if broadcast == ip => Ok(iface),
            Some(broadcast) => usage(format!(
                "{ip} is not the broadcast address of {} ({broadcast}): use --broadcast {broadcast}:PORT",
                iface.name
            )),
            None => usage(format!(
                "{} has no IPv4 broadcast address: use 255.255.255.255:PORT, or another interface",
                iface.name
            )),
        };
    }
    let all = interfaces().map_err(|source| Error::ListInterfaces { source })?;
    if let Some(iface) = all.iter().find(|i| i.broadcast == Some(ip)) {
        return Ok(iface.clone());
    }
    let known: Vec<String> = all
        .iter()
        .filter_map(|i| i.broadcast.map(|b| format!("{} {b}", i.name)))
        .collect();
    usage(format!(
        "{ip} is not the broadcast address of any interface here ({}): use one of those, or 255.255.255.255",
        if known.is_empty() {
            "none has one".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// The address a member's own socket binds to before the interface is
/// looked up: the interface's address when `--iface` gave one, else the
/// wildcard of the group's family (the endpoint resolves a named
/// interface; see [`member_bind`]).
pub fn unicast_bind_for(options: &GroupOptions) -> SocketAddr {
    match (&options.iface, options.addr) {
        (Some(Iface::Addr(ip)), _) => SocketAddr::new(*ip, 0),
        (_, SocketAddr::V4(_)) => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        (_, SocketAddr::V6(_)) => SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)),
    }
}

/// Resolves the user's options into what is applied: the interface looked
/// up.
pub fn resolve(options: &GroupOptions) -> Result<GroupInfo, Error> {
    check(options)?;
    if let (Some(Iface::Addr(ip)), addr) = (&options.iface, options.addr)
        && ip.is_ipv4() != addr.is_ipv4()
    {
        return Err(Error::Usage {
            message: format!(
                "--iface {ip} and the group {addr} are of different families: name the interface (--iface eth0)"
            ),
        });
    }
    let mut iface = options.iface.as_ref().map(find_interface).transpose()?;
    if let (GroupKind::Broadcast, IpAddr::V4(ip)) = (options.kind, options.addr.ip())
        && !ip.is_broadcast()
    {
        iface = Some(broadcast_interface(ip, iface)?);
    }
    if let (Some(iface), SocketAddr::V4(_)) = (&iface, options.addr)
        && iface.v4.is_none()
    {
        return Err(Error::Usage {
            message: format!(
                "interface {} has no IPv4 address, so it cannot join {}",
                iface.name,
                options.addr.ip()
            ),
        });
    }
    Ok(GroupInfo {
        addr: options.addr,
        kind: options.kind,
        iface,
        ttl: options.ttl,
        loopback: true,
    })
}

/// What `/why` says when nobody seems to hear: the interface and its
/// address, TTL and loopback, whether the kernel lists the membership,
/// the route the group takes, and how many members were heard.
pub fn diagnose(info: &GroupInfo, local: SocketAddr, members: usize) -> Vec<String> {
    let group = info.addr.ip();
    let mut lines = vec![format!("the group {} as this member sees it:", info.addr)];
    lines.push(match &info.iface {
        Some(iface) => format!(
            "  interface: {}{} (chosen with --iface)",
            iface.name,
            iface.v4.map(|v4| format!(" ({v4})")).unwrap_or_default()
        ),
        None => {
            "  interface: not chosen; the route below decides (--iface NAME to choose)".to_string()
        }
    });
    lines.push(if local.ip().is_unspecified() {
        format!(
            "  this member's own port: {} on the address of the interface the group's route leaves from (members send their receipts there; --iface to fix it)",
            local.port()
        )
    } else {
        format!("  this member's own address: {local} (members send their receipts here)")
    });
    match info.kind {
        GroupKind::Multicast => {
            lines.push(format!(
                "  TTL {}{}; loopback {}",
                info.ttl,
                if info.ttl == 1 {
                    ": the group stays on this LAN (routers do not forward it)"
                } else {
                    ""
                },
                if info.loopback {
                    "on: members on this host hear it too"
                } else {
                    "off"
                }
            ));
            let table = if group.is_ipv4() {
                "/proc/net/igmp"
            } else {
                "/proc/net/igmp6"
            };
            lines.push(match super::sys::group_memberships(group) {
                Some(devices) if devices.is_empty() => format!(
                    "  membership: {group} is NOT in {table}: the join did not take; other members' messages cannot arrive"
                ),
                Some(devices) => format!(
                    "  membership: joined on {} ({table})",
                    devices.join(", ")
                ),
                None => "  membership: cannot be read on this platform".to_string(),
            });
        }
        GroupKind::Broadcast => lines.push(
            "  broadcast (SO_BROADCAST on): it reaches this subnet only; routers never forward it"
                .to_string(),
        ),
    }
    if let IpAddr::V4(v4) = group {
        lines.push(match super::sys::route_to(v4) {
            Some(Some((dev, None))) => format!("  route to {v4}: out of {dev}, on the link"),
            Some(Some((dev, Some(gateway)))) => format!(
                "  route to {v4}: out of {dev} (the default route, towards {gateway}){}",
                if info.iface.is_some() {
                    "; --iface overrides it for sending"
                } else {
                    ": is that the LAN the others are on? --iface to choose"
                }
            ),
            Some(None) if info.iface.is_some() => {
                format!("  route to {v4}: none in the table; --iface sends out of it anyway")
            }
            Some(None) => format!(
                "  route to {v4}: none: sending fails; give --iface NAME or add a route (ip route add 224.0.0.0/4 dev NAME)"
            ),
            None => "  route: cannot be read on this platform".to_string(),
        });
    }
    lines.push(match members {
        0 => format!(
            "  members heard: none. Others may be on another interface or LAN, a firewall may drop UDP port {}, or the network may not pass {}",
            info.addr.port(),
            match info.kind {
                GroupKind::Multicast => "multicast (try --broadcast)",
                GroupKind::Broadcast => "broadcast",
            }
        ),
        n => format!(
            "  members heard: {n} (/members lists them); a member missing from a receipt may have left or lost the message"
        ),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(addr: &str, kind: GroupKind, ttl: u32) -> GroupOptions {
        GroupOptions {
            addr: addr.parse().unwrap(),
            kind,
            iface: None,
            ttl,
        }
    }

    /// Unicast addresses, port 0, TTL out of range, IPv6 without an
    /// interface and IPv6 broadcast are usage errors, each with its own
    /// words.
    #[test]
    fn bad_groups_are_usage_errors() {
        let cases = [
            (
                options("10.0.0.1:5000", GroupKind::Multicast, 1),
                "not a multicast address",
            ),
            (options("239.1.2.3:0", GroupKind::Multicast, 1), "port 0"),
            (
                options("239.1.2.3:5000", GroupKind::Multicast, 0),
                "--ttl 0",
            ),
            (
                options("239.1.2.3:5000", GroupKind::Multicast, 256),
                "--ttl 256",
            ),
            (
                options("[ff02::1:2]:5000", GroupKind::Multicast, 1),
                "needs --iface",
            ),
            (
                options("[ff02::1]:5000", GroupKind::Broadcast, 1),
                "IPv6 has no broadcast",
            ),
            (
                options("239.1.2.3:5000", GroupKind::Broadcast, 1),
                "use --group",
            ),
        ];
        for (options, words) in cases {
            let err = check(&options).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(err.to_string().contains(words), "{err}: {words}");
        }
        assert!(check(&options("239.1.2.3:5000", GroupKind::Multicast, 1)).is_ok());
        assert!(check(&options("10.77.0.255:5000", GroupKind::Broadcast, 1)).is_ok());
    }

    /// An interface that does not exist is a usage error naming the ones
    /// that do.
    #[cfg(unix)]
    #[test]
    fn unknown_interface_names_the_real_ones() {
        let err = find_interface(&Iface::Name("nosuch0".into())).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no interface nosuch0"), "{err}");
        assert!(err.to_string().contains("lo"), "{err}");
    }
}
