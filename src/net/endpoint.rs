//! The socket2 UDP socket every command uses ([`Endpoint`]): bound without
//! sharing its port, with `SO_RCVBUF`/`SO_SNDBUF` set and read back, the
//! platform extras turned on, and a send that survives ICMP refusals.
//! Every datagram that goes in or out through it is also written to the
//! `--pcap` capture, when there is one ([`Endpoint::capture_to`]).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{check_family, family_name, is_own, sendto_target};
use super::capture::Capture;
use super::group::{self, GroupInfo};
use super::limits::check_payload;
use super::sys::{self, Capabilities, PeerError, Received, Scratch};
use crate::Error;

/// How long a blocking receive waits before it returns `WouldBlock`, so that
/// the receiver thread notices a stop request within this bound.
pub const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// How many times a send is retried when it fails because an earlier ICMP
/// error was pending on the socket. Each retry first drains the error queue,
/// so more than a couple are needed only under a storm of refusals.
const SEND_RETRIES: usize = 16;

/// What the user asked of the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// The local address to bind.
    pub bind: SocketAddr,
    /// `SO_RCVBUF` request in bytes; `None` keeps the system default.
    pub rcvbuf: Option<usize>,
    /// `SO_SNDBUF` request in bytes; `None` keeps the system default.
    pub sndbuf: Option<usize>,
}

/// A socket buffer size as requested and as the kernel set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSize {
    /// What the user asked for; `None` when the default was kept.
    pub requested: Option<usize>,
    /// What the kernel reports now (`getsockopt`).
    pub effective: usize,
}

/// How the kernel treated a buffer size request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferVerdict {
    /// Nothing was requested: this is the system default.
    Default,
    /// The kernel kept the request as it was.
    AsRequested,
    /// Linux doubled the request to leave room for its bookkeeping.
    Doubled,
    /// The kernel set less than requested (Linux: capped at twice
    /// `net.core.rmem_max`/`wmem_max`).
    Clamped,
    /// The request was below the kernel's minimum and was raised to it.
    Raised,
}

impl BufferSize {
    /// Compares the effective size with the request. Linux doubles every
    /// request, so "as requested" there means twice the request.
    pub fn verdict(&self) -> BufferVerdict {
        let Some(requested) = self.requested else {
            return BufferVerdict::Default;
        };
        let expected = if cfg!(target_os = "linux") {
            requested.saturating_mul(2)
        } else {
            requested
        };
        match self.effective.cmp(&expected) {
            std::cmp::Ordering::Less => BufferVerdict::Clamped,
            std::cmp::Ordering::Greater => BufferVerdict::Raised,
            std::cmp::Ordering::Equal if expected != requested => BufferVerdict::Doubled,
            std::cmp::Ordering::Equal => BufferVerdict::AsRequested,
        }
    }

    /// True when the kernel set less than was asked for.
    pub fn clamped(&self) -> bool {
        self.verdict() == BufferVerdict::Clamped
    }
}

/// Both buffer sizes of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffers {
    /// `SO_RCVBUF`.
    pub rcvbuf: BufferSize,
    /// `SO_SNDBUF`.
    pub sndbuf: BufferSize,
}

/// A bound UDP socket shared by the receiver thread and the sending side.
#[derive(Debug)]
pub struct Endpoint {
    /// The socket; `&self` methods are enough for both threads.
    socket: Socket,
    /// The address the socket is bound to, read back after `bind` (so a
    /// request for port 0 shows the port the system chose).
    local: SocketAddr,
    /// Which platform extras are on for this socket.
    capabilities: Capabilities,
    /// A group member's shared group socket, polled with the main one.
    group: Option<GroupSide>,
    /// Where every datagram in and out is recorded (`--pcap`); set once,
    /// before the first datagram, by whoever opened the endpoint.
    capture: OnceLock<Arc<Capture>>,
    /// The peer of [`Endpoint::connect`], for the capture of
    /// [`Endpoint::send_connected`] (the kernel knows it; the record needs
    /// it too).
    connected: Mutex<Option<SocketAddr>>,
}

/// The group side of a member's endpoint ([`crate::net::group`]).
#[derive(Debug)]
struct GroupSide {
    /// Bound to the group's port, shared, non-blocking.
    socket: Socket,
    /// The group as joined.
    info: GroupInfo,
    /// How long a receive waits (both sockets are non-blocking, and
    /// `poll` waits for them), in microseconds.
    wait_us: AtomicU64,
    /// Receives do not wait at all.
    nonblocking: AtomicBool,
}

impl Endpoint {
    /// Creates, configures and binds the socket, and reads back the buffer
    /// sizes the kernel set.
    ///
    /// The socket does not set `SO_REUSEADDR` (nor `SO_REUSEPORT`): on Linux
    /// two UDP sockets that both set it share a port and the newest takes
    /// every unicast datagram, so another program could silently take
    /// dgram's traffic. Without it, whoever binds second gets "address in
    /// use", whichever program starts first.
    pub fn open(options: &SocketOptions) -> Result<(Endpoint, Buffers), Error> {
        let domain = Domain::for_address(options.bind);
        let family = family_name(&options.bind);
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|source| Error::CreateSocket { family, source })?;
        if options.bind.is_ipv6() {
            // `[::]` takes IPv4 peers too, whatever the system default is.
            socket
                .set_only_v6(false)
                .map_err(|source| Error::SetOption {
                    option: "IPV6_V6ONLY",
                    source,
                })?;
        }
        socket
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|source| Error::SetOption {
                option: "SO_RCVTIMEO",
                source,
            })?;
        let capabilities = sys::enable_extras(&socket);
        let endpoint = Endpoint {
            socket,
            local: options.bind,
            capabilities,
            group: None,
            capture: OnceLock::new(),
            connected: Mutex::new(None),
        };
        // Buffers are set before bind so that no datagram arrives into a
        // default-sized buffer.
        let rcvbuf = match options.rcvbuf {
            Some(size) => endpoint.set_recv_buffer(size)?,
            None => endpoint.recv_buffer(None)?,
        };
        let sndbuf = match options.sndbuf {
            Some(size) => endpoint.set_send_buffer(size)?,
            None => endpoint.send_buffer(None)?,
        };
        endpoint
            .socket
            .bind(&options.bind.into())
            .map_err(|source| Error::Bind {
                addr: options.bind,
                source,
            })?;
        let local = endpoint
            .socket
            .local_addr()
            .map_err(|source| Error::LocalAddr { source })?
            .as_socket()
            .unwrap_or(options.bind);
        Ok((Endpoint { local, ..endpoint }, Buffers { rcvbuf, sndbuf }))
    }

    /// Opens a group member's endpoint: the unicast socket as
    /// [`Endpoint::open`] does (bound to `options.bind`, see
    /// [`group::member_bind`]) and set to send to the group, and the
    /// shared group socket beside it.
    pub fn open_group(
        options: &SocketOptions,
        info: &GroupInfo,
    ) -> Result<(Endpoint, Buffers), Error> {
        let (mut endpoint, buffers) = Endpoint::open(options)?;
        group::configure_sender(&endpoint.socket, info)?;
        let socket = group::open_group_socket(info)?;
        sys::enable_extras(&socket);
        if let Some(size) = options.rcvbuf {
            set_recv_buffer(&socket, size)?;
        }
        endpoint
            .socket
            .set_nonblocking(true)
            .map_err(|source| Error::SetOption {
                option: "O_NONBLOCK",
                source,
            })?;
        endpoint.group = Some(GroupSide {
            socket,
            info: info.clone(),
            wait_us: AtomicU64::new(READ_TIMEOUT.as_micros() as u64),
            nonblocking: AtomicBool::new(false),
        });
        Ok((endpoint, buffers))
    }

    /// Records every datagram sent or received from now on in `capture`
    /// (`--pcap`); `None` records nothing. A second capture is ignored: an
    /// endpoint writes to one file.
    pub fn capture_to(&self, capture: Option<Arc<Capture>>) {
        if let Some(capture) = capture {
            let _ = self.capture.set(capture);
        }
    }

    /// The capture this endpoint records into, for the sockets opened
    /// beside it (`chat --via`'s search).
    pub fn capture(&self) -> Option<Arc<Capture>> {
        self.capture.get().cloned()
    }

    /// Records a datagram received on `socket` (this endpoint's own, or
    /// its group's, whose datagrams were sent to the group's address).
    fn captured(
        &self,
        received: io::Result<Received>,
        buf: &[u8],
        group_socket: bool,
    ) -> io::Result<Received> {
        if let (Ok(r), Some(capture)) = (&received, self.capture.get()) {
            let local = match (&self.group, group_socket) {
                // This member's own datagram, looped back by the kernel
                // (multicast loopback, a broadcast): recorded once, as
                // sent, as it was once on the wire.
                (Some(_), true) if is_own(r.from, self.local) => return received,
                (Some(group), true) => group.info.addr,
                _ => self.local,
            };
            let data = &buf[..r.len];
            match r.segment {
                // A coalesced receive (GRO, bench only) was several
                // datagrams on the wire, each of `size` bytes but the last.
                Some(size) if size < data.len() => {
                    for chunk in data.chunks(size) {
                        capture.received(local, r.from, chunk, chunk.len(), r.timestamp);
                    }
                }
                _ => {
                    let len = r.original_len.unwrap_or(r.len);
                    capture.received(local, r.from, data, len, r.timestamp);
                }
            }
        }
        received
    }

    /// Records a datagram sent to `to`.
    fn record_sent(&self, to: SocketAddr, payload: &[u8]) {
        if let Some(capture) = self.capture.get() {
            capture.sent(self.local, to, payload);
        }
    }

    /// The peer of [`Endpoint::connect`], if the capture needs it.
    fn connected_peer(&self) -> Option<SocketAddr> {
        self.capture.get()?;
        *self.connected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The group this endpoint is a member of.
    pub fn group(&self) -> Option<&GroupInfo> {
        self.group.as_ref().map(|g| &g.info)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Which platform extras are on.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Sets `SO_RCVBUF` and reads back what the kernel set.
    pub fn set_recv_buffer(&self, size: usize) -> Result<BufferSize, Error> {
        set_recv_buffer(&self.socket, size)?;
        if let Some(group) = &self.group {
            // The group's socket queues what the group sends.
            set_recv_buffer(&group.socket, size)?;
        }
        self.recv_buffer(Some(size))
    }

    /// Sets `SO_SNDBUF` and reads back what the kernel set.
    pub fn set_send_buffer(&self, size: usize) -> Result<BufferSize, Error> {
        self.socket
            .set_send_buffer_size(size)
            .map_err(|source| Error::SetBuffer {
                option: "SO_SNDBUF",
                requested: size,
                source,
            })?;
        self.send_buffer(Some(size))
    }

    /// Reads `SO_RCVBUF`; `requested` is carried into the answer.
    pub fn recv_buffer(&self, requested: Option<usize>) -> Result<BufferSize, Error> {
        let effective = self
            .socket
            .recv_buffer_size()
            .map_err(|source| Error::ReadBuffer {
                option: "SO_RCVBUF",
                source,
            })?;
        Ok(BufferSize {
            requested,
            effective,
        })
    }

    /// Reads `SO_SNDBUF`; `requested` is carried into the answer.
    pub fn send_buffer(&self, requested: Option<usize>) -> Result<BufferSize, Error> {
        let effective = self
            .socket
            .send_buffer_size()
            .map_err(|source| Error::ReadBuffer {
                option: "SO_SNDBUF",
                source,
            })?;
        Ok(BufferSize {
            requested,
            effective,
        })
    }

    /// Sets how long a receive waits before it gives up (as `WouldBlock`).
    pub fn set_read_timeout(&self, wait: Duration) -> io::Result<()> {
        if let Some(group) = &self.group {
            group
                .wait_us
                .store(wait.as_micros() as u64, Ordering::Relaxed);
            return Ok(());
        }
        self.socket.set_read_timeout(Some(wait))
    }

    /// Receives one datagram already queued, without waiting (`WouldBlock`
    /// when none is; on the portable build, always `WouldBlock`: it cannot
    /// look without waiting).
    pub fn try_recv(&self, buf: &mut [u8], scratch: &mut Scratch) -> io::Result<Received> {
        let received = self.try_recv_any(buf, scratch);
        self.idle_if_nothing(received)
    }

    /// [`Endpoint::try_recv`], but for the capture's writing out.
    fn try_recv_any(&self, buf: &mut [u8], scratch: &mut Scratch) -> io::Result<Received> {
        self.first_queued(buf, |socket, buf| sys::recv(socket, buf, scratch, false))
    }

    /// A busy poller's look: [`Endpoint::try_recv`] the lightest way
    /// ([`sys::look`]: no kernel timestamp, no drop count with the
    /// datagram; the drops are still read from the socket's counter).
    pub fn look(&self, buf: &mut [u8]) -> io::Result<Received> {
        let received = self.first_queued(buf, sys::look);
        self.idle_if_nothing(received)
    }

    /// The first datagram `take` finds queued, on this socket and then a
    /// group member's group socket, recorded in the capture.
    fn first_queued(
        &self,
        buf: &mut [u8],
        mut take: impl FnMut(&Socket, &mut [u8]) -> io::Result<Received>,
    ) -> io::Result<Received> {
        let Some(group) = &self.group else {
            let received = take(&self.socket, buf);
            return self.captured(received, buf, false);
        };
        for (socket, group_socket) in [(&self.socket, false), (&group.socket, true)] {
            match take(socket, buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return self.captured(other, buf, group_socket),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Receives one datagram into `buf` (blocking at most [`READ_TIMEOUT`]).
    /// A group member takes it from whichever of its sockets has one, its
    /// own first (receipts).
    pub fn recv(&self, buf: &mut [u8], scratch: &mut Scratch) -> io::Result<Received> {
        let received = self.recv_any(buf, scratch);
        self.idle_if_nothing(received)
    }

    /// A receive that found nothing (`WouldBlock`) is the moment to bring
    /// the capture file up to date ([`Capture::idle`]): every command's
    /// receive loop comes here at least every [`READ_TIMEOUT`] while it
    /// waits, so the last datagrams of a burst do not stay in the buffer
    /// until the next one or the end.
    fn idle_if_nothing(&self, received: io::Result<Received>) -> io::Result<Received> {
        if let (Err(e), Some(capture)) = (&received, self.capture.get())
            && e.kind() == io::ErrorKind::WouldBlock
        {
            capture.idle();
        }
        received
    }

    /// [`Endpoint::recv`], but for the capture's writing out.
    fn recv_any(&self, buf: &mut [u8], scratch: &mut Scratch) -> io::Result<Received> {
        let Some(group) = &self.group else {
            let received = sys::recv(&self.socket, buf, scratch, true);
            return self.captured(received, buf, false);
        };
        for look in 0..2 {
            for (socket, group_socket) in [(&self.socket, false), (&group.socket, true)] {
                match sys::recv(socket, buf, scratch, true) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return self.captured(other, buf, group_socket),
                }
            }
            if look == 1 || group.nonblocking.load(Ordering::Relaxed) {
                break;
            }
            let wait = Duration::from_micros(group.wait_us.load(Ordering::Relaxed));
            if !group::wait_readable(&self.socket, &group.socket, wait)? {
                break;
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Makes receives return `WouldBlock` at once instead of waiting up to
    /// [`READ_TIMEOUT`] (for the last look at what is queued).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        if let Some(group) = &self.group {
            group.nonblocking.store(nonblocking, Ordering::Relaxed);
            return Ok(());
        }
        self.socket.set_nonblocking(nonblocking)
    }

    /// Sends only to `to` from now on, and hears only from it
    /// ([`Endpoint::send_connected`]): the kernel looks the route up once,
    /// not per datagram.
    pub fn connect(&self, to: SocketAddr) -> io::Result<()> {
        check_family(self.local, to).map_err(io::Error::other)?;
        self.socket.connect(&sendto_target(self.local, to))?;
        *self.connected.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
        Ok(())
    }

    /// Sends one datagram to the connected peer; the error is the kernel's
    /// as it is (`EAGAIN`, `ENOBUFS`, a pending ICMP error).
    pub fn send_connected(&self, payload: &[u8]) -> io::Result<usize> {
        let sent = self.socket.send(payload)?;
        if let Some(peer) = self.connected_peer() {
            self.record_sent(peer, &payload[..sent]);
        }
        Ok(sent)
    }

    /// Sends `buf` to the connected peer as datagrams of `segment` bytes,
    /// in one call (GSO; Linux only).
    pub fn send_segments(&self, buf: &[u8], segment: u16) -> io::Result<usize> {
        let sent = sys::send_segments(&self.socket, buf, segment)?;
        if let (Some(peer), Some(capture)) = (self.connected_peer(), self.capture.get()) {
            capture.sent_segments(
                self.local,
                peer,
                &buf[..sent.min(buf.len())],
                segment.into(),
            );
        }
        Ok(sent)
    }

    /// Whether sends of `segment`-byte datagrams may be coalesced into one
    /// call here (GSO; Linux only).
    pub fn check_gso(&self, segment: u16) -> io::Result<()> {
        sys::check_gso(&self.socket, segment)
    }

    /// Turns receive coalescing (GRO; Linux only) on or off.
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        sys::set_gro(&self.socket, on)
    }

    /// Sets the socket's path MTU discovery mode (`IP_MTU_DISCOVER`) and
    /// returns the mode it had: a listener sends its answer to a reverse
    /// MTU probe in `PmtuMode::Probe` (don't fragment).
    pub fn set_pmtu_mode(&self, mode: sys::PmtuMode) -> io::Result<sys::PmtuMode> {
        sys::set_pmtu_mode(&self.socket, mode)
    }

    /// Drains the ICMP errors queued on the socket.
    pub fn take_errors(&self) -> Vec<PeerError> {
        sys::take_errors(&self.socket)
    }

    /// The socket's kernel drop counter now, where the platform has one.
    pub fn kernel_drops(&self) -> Option<u32> {
        let own = sys::kernel_drops(&self.socket)?;
        match &self.group {
            Some(group) => Some(own.wrapping_add(sys::kernel_drops(&group.socket)?)),
            None => Some(own),
        }
    }

    /// Sends `payload` to `to` as one datagram. A peer of the wrong address
    /// family or a payload over the protocol limit is refused before
    /// anything is sent.
    ///
    /// With `IP_RECVERR` on, an ICMP error about an earlier datagram (to any
    /// destination) fails the next call on the socket, and a send that fails
    /// that way did not send. So on such a failure the error queue is drained
    /// into `drained` (to be shown, whatever becomes of this send) and the
    /// send is tried again.
    pub fn send_to(
        &self,
        payload: &[u8],
        to: SocketAddr,
        drained: &mut Vec<PeerError>,
    ) -> Result<(), Error> {
        check_family(self.local, to)?;
        check_payload(payload.len(), &to)?;
        let target = sendto_target(self.local, to);
        let mut last_error = None;
        for _ in 0..SEND_RETRIES {
            match self.socket.send_to(payload, &target) {
                Ok(_) => {
                    self.record_sent(to, payload);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let errors = self.take_errors();
                    let pending_icmp = !errors.is_empty() || is_icmp_error(&e);
                    drained.extend(errors);
                    if !pending_icmp {
                        return Err(Error::Send {
                            to,
                            len: payload.len(),
                            source: e,
                        });
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(Error::Send {
            to,
            len: payload.len(),
            source: last_error.unwrap_or_else(|| io::Error::other("send retries exhausted")),
        })
    }
}

/// Waits at most `wait` until any of `endpoints` has a datagram queued:
/// which ones do (all false when none did in time). A group member's
/// endpoint is looked at by its own socket only.
#[cfg(unix)]
pub fn wait_any(endpoints: &[&Endpoint], wait: Duration) -> io::Result<Vec<bool>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds: Vec<PollFd<'_>> = endpoints
        .iter()
        .map(|e| PollFd::new(e.socket.as_fd(), PollFlags::POLLIN))
        .collect();
    let ms = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) => Ok(fds
            .iter()
            .map(|fd| {
                fd.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
            })
            .collect()),
        Err(nix::errno::Errno::EINTR) => Ok(vec![false; endpoints.len()]),
        Err(e) => Err(e.into()),
    }
}

/// Without `poll`, every endpoint is looked at after a millisecond.
#[cfg(not(unix))]
pub fn wait_any(endpoints: &[&Endpoint], wait: Duration) -> io::Result<Vec<bool>> {
    std::thread::sleep(wait.min(Duration::from_millis(1)));
    Ok(vec![true; endpoints.len()])
}

/// Sets `SO_RCVBUF` on `socket`.
fn set_recv_buffer(socket: &Socket, size: usize) -> Result<(), Error> {
    socket
        .set_recv_buffer_size(size)
        .map_err(|source| Error::SetBuffer {
            option: "SO_RCVBUF",
            requested: size,
            source,
        })
}

/// True for the errors an ICMP report leaves pending on a socket (port,
/// host or network unreachable). They fail whatever call comes next, on
/// either thread, and say something about a peer, not about this socket.
pub fn is_icmp_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(bind: &str) -> Result<Endpoint, Error> {
        Endpoint::open(&SocketOptions {
            bind: bind.parse().unwrap(),
            rcvbuf: None,
            sndbuf: None,
        })
        .map(|(endpoint, _)| endpoint)
    }

    /// A port dgram holds cannot be bound by a second socket, even one that
    /// sets `SO_REUSEADDR` (as `nc -u -l` does), and dgram cannot take a
    /// port another socket holds.
    #[test]
    fn the_port_is_not_shared() {
        let first = open("127.0.0.1:0").unwrap();
        let other = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        other.set_reuse_address(true).unwrap();
        let err = other.bind(&first.local_addr().into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = open(&taken.local_addr().unwrap().to_string()).unwrap_err();
        assert!(matches!(err, Error::Bind { .. }), "{err}");
    }

    /// The capabilities say what this build has: everything on Linux,
    /// nothing with the portable fallback.
    #[test]
    fn capabilities_follow_the_build() {
        let caps = open("127.0.0.1:0").unwrap().capabilities();
        let linux = cfg!(all(target_os = "linux", not(feature = "portable")));
        assert_eq!(caps.true_length, linux);
        assert_eq!(caps.drop_count, linux);
        assert_eq!(caps.icmp_errors, linux);
        assert_eq!(caps.kernel_timestamps, linux);
    }

    /// Sending to a peer of the other family is refused before sending.
    #[test]
    fn send_refuses_the_other_family() {
        let endpoint = open("127.0.0.1:0").unwrap();
        let err = endpoint.send_to(b"x", "[::1]:9".parse().unwrap(), &mut Vec::new());
        assert!(matches!(err, Err(Error::FamilyMismatch { .. })));
    }
}
