//! Puts [`Traversal`] on sockets, before a chat that goes through a
//! rendezvous (`dgram chat --via`) begins: the main socket, and the
//! search's sockets when this side's NAT is hard. Blocks until a path is
//! found, none can be, or a stop is asked for; every step is reported to
//! the caller as it happens.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Error;
use crate::net::endpoint::wait_any;
use crate::net::sys::Scratch;
use crate::net::{Buffers, Endpoint, SocketOptions};
use crate::proto::traverse::{Config, Found, Transmit, Traversal, TraverseEvent};
use crate::runtime::Shutdown;
use crate::runtime::sorting::{Sorted, sort};

/// The longest the loop sleeps without looking at the stop requests.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// What the search ended with.
pub enum Outcome {
    /// A path: the socket it is on (the main one or one of the search's),
    /// its buffers, and what was found.
    Found(Endpoint, Buffers, Found),
    /// A stop was asked for.
    Stopped,
    /// No path (the event said why).
    Failed,
}

/// Runs the traversal on `main` until it ends; `socket` is what extra
/// sockets are opened with (port 0); `report` sees every event (an error
/// from it ends the search).
pub fn find(
    main: (Endpoint, Buffers),
    socket: &SocketOptions,
    config: Config,
    shutdown: &Shutdown,
    report: &mut dyn FnMut(&TraverseEvent) -> Result<(), Error>,
) -> Result<Outcome, Error> {
    // Non-blocking while the search runs, so that a receive takes what is
    // queued and never waits: `try_recv` cannot be used, since the portable
    // build's never looks (it always says `WouldBlock`), and nothing would
    // ever be heard there.
    nonblocking(&main.0, true)?;
    let mut sockets = vec![main];
    let mut traversal = Traversal::new(config, Instant::now());
    let mut buf = vec![0u8; 2048];
    let mut scratch = Scratch::default();
    loop {
        while let Some(transmit) = traversal.poll_transmit() {
            send(&sockets, &transmit);
        }
        while let Some(event) = traversal.poll_event() {
            report(&event)?;
            match event {
                TraverseEvent::OpenSockets(count) => {
                    let first = sockets.len();
                    let mut extra = SocketOptions {
                        bind: SocketAddr::new(socket.bind.ip(), 0),
                        ..socket.clone()
                    };
                    extra.rcvbuf = None;
                    extra.sndbuf = None;
                    for _ in 0..count {
                        match Endpoint::open(&extra) {
                            Ok(opened) if opened.0.set_nonblocking(true).is_ok() => {
                                sockets.push(opened);
                            }
                            // Out of descriptors: search with what opened.
                            _ => break,
                        }
                    }
                    traversal.sockets_opened(Instant::now(), first, sockets.len() - first);
                }
                TraverseEvent::Found(found) => {
                    let (endpoint, buffers) = sockets.swap_remove(found.socket);
                    // The chat's receiver waits in its receives.
                    nonblocking(&endpoint, false)?;
                    return Ok(Outcome::Found(endpoint, buffers, found));
                }
                TraverseEvent::Failed(_) => return Ok(Outcome::Failed),
                _ => {}
            }
        }
        if shutdown.requests().try_recv().is_ok() {
            return Ok(Outcome::Stopped);
        }
        let now = Instant::now();
        let wait = traversal
            .poll_timeout()
            .map_or(LOOK_EVERY, |t| t.saturating_duration_since(now))
            .min(LOOK_EVERY);
        let endpoints: Vec<&Endpoint> = sockets.iter().map(|(e, _)| e).collect();
        let ready = wait_any(&endpoints, wait).map_err(|source| Error::Receive {
            local: sockets[0].0.local_addr(),
            source,
        })?;
        for (id, readable) in ready.into_iter().enumerate() {
            if !readable {
                continue;
            }
            // Everything queued on a ready socket, then the next.
            for _ in 0..64 {
                match sockets[id].0.recv(&mut buf, &mut scratch) {
                    Ok(received) => {
                        let from = crate::net::addr::canonical(received.from);
                        traversal.handle_datagram(
                            Instant::now(),
                            id,
                            from,
                            &buf[..received.len],
                            false,
                        );
                    }
                    Err(e) => match sort(e, &sockets[id].0) {
                        Sorted::Retry => continue,
                        Sorted::Idle => break,
                        // An ICMP refusal says one probe's destination
                        // is closed: the probes go on, as they would
                        // across a NAT that says nothing.
                        Sorted::Peers(_) => continue,
                        Sorted::Failed(source) => {
                            return Err(Error::Receive {
                                local: sockets[id].0.local_addr(),
                                source,
                            });
                        }
                    },
                }
            }
        }
        traversal.handle_timeout(Instant::now());
    }
}

/// Makes `endpoint`'s receives return at once (or wait again).
fn nonblocking(endpoint: &Endpoint, on: bool) -> Result<(), Error> {
    endpoint
        .set_nonblocking(on)
        .map_err(|source| Error::SetOption {
            option: "O_NONBLOCK",
            source,
        })
}

/// Sends a transmit from its socket. A failure is one probe lost (a
/// route not there yet, a full buffer): the probes are repeated, and the
/// traversal reports what never got through.
fn send(sockets: &[(Endpoint, Buffers)], transmit: &Transmit) {
    let Some((endpoint, _)) = sockets.get(transmit.socket) else {
        return;
    };
    let mut drained = Vec::new();
    let _ = endpoint.send_to(&transmit.bytes, transmit.to, &mut drained);
}

/// This host's interface addresses that a peer might reach `local` at
/// (its port), the most useful first: IPv4 private LAN addresses, then
/// other IPv4, then global IPv6; never loopback (unless `local` is bound
/// to it) or link-local.
pub fn host_candidates(local: SocketAddr) -> io::Result<Vec<SocketAddr>> {
    if !local.ip().is_unspecified() {
        return Ok(vec![local]);
    }
    let mut found = Vec::new();
    for iface in crate::net::group::interfaces()? {
        if let Some(v4) = iface.v4
            && !v4.is_loopback()
            && !v4.is_link_local()
            && local.is_ipv4()
        {
            found.push(SocketAddr::new(v4.into(), local.port()));
        }
        for v6 in iface.v6 {
            if local.is_ipv6() && !v6.is_loopback() && !v6.is_unicast_link_local() {
                found.push(SocketAddr::new(v6.into(), local.port()));
            }
        }
    }
    found.sort_by_key(|a| match a.ip() {
        std::net::IpAddr::V4(v4) if v4.is_private() => 0,
        std::net::IpAddr::V4(_) => 1,
        std::net::IpAddr::V6(_) => 2,
    });
    found.dedup();
    Ok(found)
}
