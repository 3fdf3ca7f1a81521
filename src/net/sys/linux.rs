//! Linux: `MSG_TRUNC`, `SO_RXQ_OVFL`, `SO_MEMINFO`, `SO_TIMESTAMPNS`,
//! `IP_RECVERR` and the socket error queue, `IP_MTU_DISCOVER`.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Socket};

use super::{
    Capabilities, ErrorOrigin, PathError, PeerError, PmtuMode, QUOTED, Received, UdpTableEntry,
};
use crate::net::addr::canonical;

/// The most error-queue entries read in one call, so that a flood of ICMP
/// errors cannot keep one thread in here forever.
const MAX_ERRORS_PER_CALL: usize = 256;

/// Per-receiver scratch space: the control-message buffer, allocated once.
#[derive(Debug)]
pub struct Scratch {
    cmsg: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            cmsg: nix::cmsg_space!(u32, nix::sys::time::TimeSpec, i32),
        }
    }
}

/// Turns on `SO_RXQ_OVFL`, `SO_TIMESTAMPNS` and `IP_RECVERR` (plus
/// `IPV6_RECVERR` on IPv6 sockets, which also carry IPv4 traffic when
/// dual-stack). An option the kernel refuses is reported as absent, not as
/// an error.
pub fn enable_extras(socket: &Socket) -> Capabilities {
    let drop_count =
        setsockopt(socket, sockopt::RxqOvfl, &1).is_ok() && kernel_drops(socket).is_some();
    let kernel_timestamps = setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_ok();
    let is_v6 = socket.domain().map(|d| d == Domain::IPV6).unwrap_or(false);
    let icmp_errors = if is_v6 {
        // IPv4-mapped traffic on a dual-stack socket reports through
        // IP_RECVERR, native IPv6 through IPV6_RECVERR: both are wanted.
        let v4 = setsockopt(socket, sockopt::Ipv4RecvErr, &true).is_ok();
        let v6 = setsockopt(socket, sockopt::Ipv6RecvErr, &true).is_ok();
        v4 || v6
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true).is_ok()
    };
    Capabilities {
        true_length: true,
        drop_count,
        icmp_errors,
        kernel_timestamps,
    }
}

/// Receives one datagram with `recvmsg(MSG_TRUNC)`: the return value is the
/// datagram's true length even when the buffer was too small. With `wait`
/// false (`MSG_DONTWAIT`) it fails with `WouldBlock` at once when nothing
/// is queued; otherwise it waits as long as the socket's read timeout.
pub fn recv(
    socket: &Socket,
    buf: &mut [u8],
    scratch: &mut Scratch,
    wait: bool,
) -> io::Result<Received> {
    let capacity = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let mut flags = MsgFlags::MSG_TRUNC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut scratch.cmsg), flags)
            .map_err(io::Error::from)?;
    let from = msg
        .address
        .as_ref()
        .and_then(to_socket_addr)
        .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    let mut drop_counter = None;
    let mut timestamp = None;
    let mut segment = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            match cmsg {
                ControlMessageOwned::RxqOvfl(count) => drop_counter = Some(count),
                ControlMessageOwned::UdpGroSegments(size) => {
                    segment = usize::try_from(size).ok().filter(|&size| size > 0);
                }
                ControlMessageOwned::ScmTimestampns(ts) => {
                    let since_epoch = Duration::new(
                        u64::try_from(ts.tv_sec()).unwrap_or(0),
                        u32::try_from(ts.tv_nsec()).unwrap_or(0),
                    );
                    timestamp = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
                }
                _ => {}
            }
        }
    }
    // With MSG_TRUNC the kernel returns the true length, which can exceed
    // the buffer: clamp before anyone slices with it.
    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > capacity;
    Ok(Received {
        len: msg.bytes.min(capacity),
        truncated,
        original_len: truncated.then_some(msg.bytes),
        from: canonical(from),
        drop_counter,
        timestamp,
        segment,
    })
}

/// Takes one datagram already queued, the lightest way there is:
/// `recvfrom(MSG_DONTWAIT | MSG_TRUNC)`, the true length but no control
/// messages (no kernel timestamp, no drop count), `WouldBlock` when
/// nothing is queued. For busy polling, which looks again and again: each
/// look costs what a C loop's `recv` does, the datagram is taken the moment
/// it is queued (so the time of the look is its time), and the drops are
/// read from `SO_MEMINFO` ([`kernel_drops`]) as always.
pub fn look(socket: &Socket, buf: &mut [u8]) -> io::Result<Received> {
    let capacity = buf.len();
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and the
    // kernel only writes initialised bytes into the buffer.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    let (len, from) = socket.recv_from_with_flags(uninit, libc::MSG_DONTWAIT | libc::MSG_TRUNC)?;
    let from = from
        .as_socket()
        .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    // With MSG_TRUNC the kernel returns the true length.
    let truncated = len > capacity;
    Ok(Received {
        len: len.min(capacity),
        truncated,
        original_len: truncated.then_some(len),
        from: canonical(from),
        drop_counter: None,
        timestamp: None,
        segment: None,
    })
}

/// Turns UDP receive coalescing (`UDP_GRO`) on or off. With it on, one
/// receive may return several datagrams of one sender back to back, and
/// [`Received::segment`] says their size: only `dgram bench` asks for it;
/// everything else must see one datagram per receive.
pub fn set_gro(socket: &Socket, on: bool) -> io::Result<()> {
    setsockopt(socket, sockopt::UdpGroSegment, &on).map_err(io::Error::from)
}

/// Whether the kernel takes `UDP_SEGMENT` with datagrams of `segment`
/// bytes on this socket (it is set, then cleared: each send says its own).
pub fn check_gso(socket: &Socket, segment: u16) -> io::Result<()> {
    setsockopt(socket, sockopt::UdpGsoSegment, &i32::from(segment)).map_err(io::Error::from)?;
    setsockopt(socket, sockopt::UdpGsoSegment, &0).map_err(io::Error::from)
}

/// `recv` without waiting looks at the queue (`MSG_DONTWAIT`): a
/// `WouldBlock` from it means nothing is queued.
pub const LOOKS_WITHOUT_WAITING: bool = true;

/// Sends `buf` on a connected socket as datagrams of `segment` bytes each
/// (the last may be shorter) in one call (`UDP_SEGMENT`, GSO). Returns the
/// bytes sent.
pub fn send_segments(socket: &Socket, buf: &[u8], segment: u16) -> io::Result<usize> {
    let iov = [std::io::IoSlice::new(buf)];
    let cmsgs = [nix::sys::socket::ControlMessage::UdpGsoSegments(&segment)];
    nix::sys::socket::sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
        .map_err(io::Error::from)
}

/// Drains the socket's error queue (`MSG_ERRQUEUE`): every ICMP error the
/// kernel heard since the last call, with the destination that provoked it.
/// Draining also clears the pending socket error that would otherwise fail
/// the next call on this socket.
pub fn take_errors(socket: &Socket) -> Vec<PeerError> {
    take_path_errors(socket)
        .into_iter()
        .map(|error| PeerError {
            peer: error.peer,
            errno: error.errno,
        })
        .collect()
}

/// The socket's drop counter as it stands now (`SO_MEMINFO`,
/// `SK_MEMINFO_DROPS`): the same figure as the drops column of
/// `/proc/net/udp`.
pub fn kernel_drops(socket: &Socket) -> Option<u32> {
    // SK_MEMINFO_VARS is 9 today; room for more, the kernel says how many
    // it wrote.
    let mut meminfo = [0u32; 16];
    let mut len = std::mem::size_of_val(&meminfo) as libc::socklen_t;
    // SAFETY: the buffer and its length describe valid, writable memory.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            meminfo.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    (rc == 0 && len as usize > drops * 4).then(|| meminfo[drops])
}

/// The receive queue (bytes) and drop count of the IPv4 UDP socket bound
/// to `local`, as `/proc/net/udp` shows them (`rx_queue`, `drops`): the
/// kernel's view from outside the socket. `None` when the table cannot be
/// read or holds no such socket.
pub fn udp_table_entry(local: SocketAddrV4) -> Option<UdpTableEntry> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    // The kernel prints the address as the raw 32-bit word in host order.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(local.ip().octets()),
        local.port()
    );
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&wanted.as_str()) {
            return None;
        }
        let queued = u64::from_str_radix(fields.get(4)?.split(':').nth(1)?, 16).ok()?;
        Some(UdpTableEntry {
            queued,
            drops: fields.last()?.parse().ok()?,
        })
    })
}

fn to_socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// The interfaces on which this host is a member of `group`, from
/// `/proc/net/igmp` (IPv4) or `/proc/net/igmp6`; `None` when the table
/// cannot be read.
pub fn group_memberships(group: std::net::IpAddr) -> Option<Vec<String>> {
    match group {
        std::net::IpAddr::V4(v4) => {
            let table = std::fs::read_to_string("/proc/net/igmp").ok()?;
            // The group as the kernel prints it: the address's bytes in
            // memory order read as a host-order (little-endian) number.
            let wanted = format!("{:08X}", u32::from_le_bytes(v4.octets()));
            let mut device = None;
            let mut found = Vec::new();
            for line in table.lines().skip(1) {
                if !line.starts_with('\t') {
                    device = line.split_whitespace().nth(1).map(str::to_string);
                } else if line.split_whitespace().next() == Some(wanted.as_str())
                    && let Some(device) = &device
                {
                    found.push(device.clone());
                }
            }
            Some(found)
        }
        std::net::IpAddr::V6(v6) => {
            let table = std::fs::read_to_string("/proc/net/igmp6").ok()?;
            let wanted: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            Some(
                table
                    .lines()
                    .filter_map(|line| {
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        (fields.get(2) == Some(&wanted.as_str())).then(|| fields[1].to_string())
                    })
                    .collect(),
            )
        }
    }
}

/// The IPv4 route the kernel's table gives `dest` (longest prefix in
/// `/proc/net/route`): the interface and the gateway if any. `Some(None)`:
/// no route; `None`: the table cannot be read.
pub fn route_to(dest: std::net::Ipv4Addr) -> Option<Option<(String, Option<std::net::Ipv4Addr>)>> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    let dest = u32::from_le_bytes(dest.octets());
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let best = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (net, gateway, mask) = (hex(f.get(1)?)?, hex(f.get(2)?)?, hex(f.get(7)?)?);
            (dest & mask == net).then(|| (mask.count_ones(), f[0].to_string(), gateway))
        })
        .max_by_key(|(bits, _, _)| *bits);
    Some(best.map(|(_, iface, gateway)| {
        let gateway = (gateway != 0).then(|| std::net::Ipv4Addr::from(gateway.to_le_bytes()));
        (iface, gateway)
    }))
}

/// Sets the socket's path MTU discovery mode (`IP_MTU_DISCOVER`, and
/// `IPV6_MTU_DISCOVER` too on an IPv6 socket, which may carry IPv4) and
/// returns the mode it had. `PmtuMode::Probe` is `IP_PMTUDISC_PROBE`: the
/// don't-fragment flag set, the kernel's learned path MTU ignored, so a
/// datagram larger than that still leaves (and one larger than the
/// interface's MTU fails with `EMSGSIZE`).
pub fn set_pmtu_mode(socket: &Socket, mode: PmtuMode) -> io::Result<PmtuMode> {
    let is_v6 = socket.domain().map(|d| d == Domain::IPV6).unwrap_or(false);
    let (level, name) = if is_v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    };
    let before = get_int(socket, level, name)?;
    set_int(socket, level, name, mode.value())?;
    if is_v6 {
        // IPv4-mapped traffic on a dual-stack socket follows the IPv4
        // option; an IPV6_V6ONLY socket may refuse it, which is harmless.
        let _ = set_int(
            socket,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            mode.value(),
        );
    }
    Ok(PmtuMode::from_value(before))
}

fn get_int(socket: &Socket, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the buffer is a c_int and `len` says so.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a c_int and its length says so.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Drains the socket's error queue like [`take_errors`], keeping what a
/// path MTU search needs: who reported the error (the local stack or a
/// router's ICMP) and the MTU it named (`ee_info` of an `EMSGSIZE`).
pub fn take_path_errors(socket: &Socket) -> Vec<PathError> {
    let fd = socket.as_raw_fd();
    let mut errors = Vec::new();
    // An error-queue entry carries the extended error and the offender's
    // address in one control message, and (with SO_TIMESTAMPNS on) a
    // timestamp in another: room for both, or the kernel cuts the error off
    // (MSG_CTRUNC) and it is lost.
    let mut cmsg = nix::cmsg_space!(
        libc::sock_extended_err,
        libc::sockaddr_in6,
        nix::sys::time::TimeSpec,
        [u64; 4]
    );
    let mut payload = [0u8; 64];
    for _ in 0..MAX_ERRORS_PER_CALL {
        // Read whole first (the message borrows the payload buffer), then
        // sorted.
        let mut found = Vec::new();
        let (peer, quoted) = {
            let mut iov = [IoSliceMut::new(&mut payload)];
            let msg = match recvmsg::<SockaddrStorage>(
                fd,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            if let Ok(cmsgs) = msg.cmsgs() {
                for cmsg in cmsgs {
                    match cmsg {
                        ControlMessageOwned::Ipv4RecvErr(err, from) => found.push((
                            err,
                            from.map(|a| {
                                IpAddr::from(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
                            }),
                        )),
                        ControlMessageOwned::Ipv6RecvErr(err, from) => found.push((
                            err,
                            from.map(|a| IpAddr::from(Ipv6Addr::from(a.sin6_addr.s6_addr))),
                        )),
                        _ => {}
                    }
                }
            }
            // The data of an error-queue entry is the offending datagram's
            // payload, as much of it as the ICMP quoted.
            (msg.address.as_ref().and_then(to_socket_addr), msg.bytes)
        };
        let Some(peer) = peer else { continue };
        let head = (quoted >= QUOTED).then(|| {
            let mut head = [0u8; QUOTED];
            head.copy_from_slice(&payload[..QUOTED]);
            head
        });
        for (err, reporter) in found {
            let origin = match err.ee_origin {
                libc::SO_EE_ORIGIN_LOCAL => ErrorOrigin::Local,
                libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6 => ErrorOrigin::Icmp,
                _ => ErrorOrigin::Other,
            };
            let errno = err.ee_errno as i32;
            errors.push(PathError {
                peer: canonical(peer),
                errno,
                origin,
                mtu: (errno == libc::EMSGSIZE && err.ee_info > 0).then_some(err.ee_info as usize),
                reporter: reporter.filter(|ip| !ip.is_unspecified()),
                quoted: head,
            });
        }
    }
    errors
}

/// `EMSGSIZE`: "too big", from the interface and from an ICMP report.
pub const EMSGSIZE: i32 = libc::EMSGSIZE;
