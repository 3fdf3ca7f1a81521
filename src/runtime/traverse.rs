//! Puts [`Traversal`] on sockets, before a chat that goes through a
//! rendezvous (`dgram chat --via`) begins: the main socket, and the
//! search's sockets when this side's NAT is hard. Blocks until a path is
//! found, none can be, or a stop is asked for; every step is reported to
//! the caller as it happens.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Error;
use crate::model::Traffic;
use crate::net::endpoint::wait_any;
use crate::net::sys::Scratch;
use crate::net::{Buffers, Endpoint, PeerError, SocketOptions};
use crate::proto::traverse::{Config, Found, Transmit, Traversal, TraverseEvent};
use crate::proto::turn::{Received, TurnClient, TurnEvent};
use crate::runtime::sorting::{Sorted, sort};
use crate::runtime::{Shutdown, Signal};

/// The longest the loop sleeps without looking at the stop requests.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How long the TURN allocation may take before the search goes on
/// without a relay.
const ALLOCATE_WAIT: Duration = Duration::from_secs(3);

/// `--turn USER:PASS@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnSetup {
    /// The TURN server.
    pub server: SocketAddr,
    /// The long-term credential's user name.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// A path found: the socket it is on (the main one or one of the
/// search's), its buffers, what was found, and this side's TURN client
/// when the path goes through its relay.
pub type FoundPath = (Endpoint, Buffers, Found, Option<TurnClient>);

/// What the search ended with.
pub enum Outcome {
    /// A path.
    Found(Box<FoundPath>),
    /// A stop was asked for (by this signal).
    Stopped(Signal),
    /// No path (the event said why).
    Failed,
}

/// Runs the traversal on `main` until it ends; `socket` is what extra
/// sockets are opened with (port 0); `report` sees every event (an error
/// from it ends the search).
pub fn find(
    main: (Endpoint, Buffers),
    socket: &SocketOptions,
    mut config: Config,
    turn: Option<&TurnSetup>,
    shutdown: &Shutdown,
    traffic: &mut Traffic,
    report: &mut dyn FnMut(&TraverseEvent) -> Result<(), Error>,
) -> Result<Outcome, Error> {
    // Non-blocking while the search runs, so that a receive takes what is
    // queued and never waits: `try_recv` cannot be used, since the portable
    // build's never looks (it always says `WouldBlock`), and nothing would
    // ever be heard there.
    nonblocking(&main.0, true)?;
    let mut sockets = vec![main];
    let mut buf = vec![0u8; 2048];
    let mut scratch = Scratch::default();
    let mut turn = match turn {
        Some(setup) => {
            match allocate(&sockets[0].0, setup, &mut config, shutdown, traffic, report)? {
                Ok(client) => client,
                Err((mut client, signal)) => {
                    close_turn(&sockets[0].0, Some(&mut client), traffic);
                    return Ok(Outcome::Stopped(signal));
                }
            }
        }
        None => None,
    };
    let mut traversal = Traversal::new(config, Instant::now());
    let outcome = loop {
        let now = Instant::now();
        while let Some(transmit) = traversal.poll_transmit() {
            let drained = match (&mut turn, transmit.relayed) {
                (Some(client), true) => {
                    let mut out = Vec::new();
                    match client.wrap(now, transmit.to, &transmit.bytes, &mut out) {
                        Ok(()) => {
                            let server = client.server();
                            send(
                                &sockets,
                                &Transmit {
                                    to: server,
                                    bytes: out,
                                    ..transmit
                                },
                                traffic,
                            )
                        }
                        Err(_) => Vec::new(),
                    }
                }
                _ => send(&sockets, &transmit, traffic),
            };
            // A refusal (ICMP port unreachable) fails the next call on
            // the socket, whatever its destination: the send drained it.
            for error in drained.iter().filter(|e| e.is_refusal()) {
                traversal.handle_refused(crate::net::addr::canonical(error.peer));
            }
        }
        if let Some(client) = &mut turn {
            flush_turn(&sockets[0].0, client, traffic);
        }
        let mut ended = None;
        while let Some(event) = traversal.poll_event() {
            report(&event)?;
            match event {
                TraverseEvent::Paired { candidates, .. } => {
                    // The relay forwards only from addresses permitted:
                    // the other side's, as the rendezvous knows them.
                    if let Some(client) = &mut turn {
                        for candidate in &candidates {
                            let _ = client.permit(now, candidate.ip());
                        }
                        flush_turn(&sockets[0].0, client, traffic);
                    }
                }
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
                                // What they send and receive is on the
                                // wire too: into the main socket's capture.
                                opened.0.capture_to(sockets[0].0.capture());
                                sockets.push(opened);
                            }
                            // Out of descriptors: search with what opened.
                            _ => break,
                        }
                    }
                    traversal.sockets_opened(Instant::now(), first, sockets.len() - first);
                }
                TraverseEvent::Found(found) => {
                    let own = found.own_relay;
                    if !own {
                        close_turn(&sockets[0].0, turn.as_mut(), traffic);
                    }
                    let client = if own { turn.take() } else { None };
                    let (endpoint, buffers) = sockets.swap_remove(found.socket);
                    // The chat's receiver waits in its receives.
                    nonblocking(&endpoint, false)?;
                    ended = Some(Outcome::Found(Box::new((endpoint, buffers, found, client))));
                }
                TraverseEvent::Failed(_) => ended = Some(Outcome::Failed),
                _ => {}
            }
            if ended.is_some() {
                break;
            }
        }
        if let Some(outcome) = ended {
            break outcome;
        }
        if let Ok(signal) = shutdown.requests().try_recv() {
            break Outcome::Stopped(signal);
        }
        let now = Instant::now();
        let next = [
            traversal.poll_timeout(),
            turn.as_ref().and_then(|c| c.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = next
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
                        traffic.inbound(received.original_len.unwrap_or(received.len));
                        let from = crate::net::addr::canonical(received.from);
                        let datagram = &buf[..received.len];
                        let now = Instant::now();
                        match &mut turn {
                            Some(client) if id == 0 && from == client.server() => {
                                match client.handle_datagram(now, datagram) {
                                    Received::Data { from, payload } => {
                                        traversal.handle_datagram(now, 0, from, &payload, true);
                                    }
                                    Received::NotTurn => {
                                        traversal.handle_datagram(now, id, from, datagram, false);
                                    }
                                    Received::Consumed | Received::Refused(_) => {}
                                }
                            }
                            _ => {
                                traversal.handle_datagram(now, id, from, datagram, false);
                            }
                        }
                    }
                    Err(e) => match sort(e, &sockets[id].0) {
                        Sorted::Retry => continue,
                        Sorted::Idle => break,
                        // An ICMP refusal says one probe's destination
                        // is closed: the probes go on, as they would
                        // across a NAT that says nothing.
                        Sorted::Peers(errors) => {
                            for error in errors.iter().filter(|e| e.is_refusal()) {
                                traversal.handle_refused(crate::net::addr::canonical(error.peer));
                            }
                            continue;
                        }
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
        let now = Instant::now();
        traversal.handle_timeout(now);
        if let Some(client) = &mut turn {
            client.handle_timeout(now);
            while client.poll_event().is_some() {}
        }
    };
    if !matches!(outcome, Outcome::Found(_)) {
        close_turn(&sockets[0].0, turn.as_mut(), traffic);
    }
    Ok(outcome)
}

/// What [`allocate`] ended with: the client when it allocated (or `None`
/// when it could not: the search goes on without a relay), or a stop
/// asked for while it waited (with the client, to give back what it may
/// have got).
type Allocated = Result<Option<TurnClient>, (TurnClient, Signal)>;

/// Allocates at the TURN server before anything else, so that the relayed
/// address is among the candidates the rendezvous passes on; reports the
/// address, or why there is none (then the search goes on without it).
fn allocate(
    main: &Endpoint,
    setup: &TurnSetup,
    config: &mut Config,
    shutdown: &Shutdown,
    traffic: &mut Traffic,
    report: &mut dyn FnMut(&TraverseEvent) -> Result<(), Error>,
) -> Result<Allocated, Error> {
    let start = Instant::now();
    let seed = crate::runtime::entropy::secret().map_err(|source| Error::Randomness { source })?;
    let mut client = TurnClient::new(setup.server, &setup.username, &setup.password, seed, start);
    let mut buf = vec![0u8; 2048];
    let mut scratch = Scratch::default();
    let refused = |errors: &[PeerError]| {
        errors
            .iter()
            .any(|e| e.is_refusal() && crate::net::addr::canonical(e.peer) == setup.server)
    };
    let result = loop {
        if refused(&flush_turn(main, &mut client, traffic)) {
            break Err(format!(
                "nothing listens at {} (ICMP port unreachable): is the TURN server running there, on that port?",
                setup.server
            ));
        }
        let mut result = None;
        while let Some(event) = client.poll_event() {
            match event {
                TurnEvent::Allocated { relayed, .. } => result = Some(Ok(relayed)),
                TurnEvent::Failed { reason, .. } => result = Some(Err(reason)),
                _ => {}
            }
        }
        if let Some(result) = result {
            break result;
        }
        let now = Instant::now();
        if now >= start + ALLOCATE_WAIT {
            break Err(format!(
                "no allocation within {} s",
                ALLOCATE_WAIT.as_secs()
            ));
        }
        if let Ok(signal) = shutdown.requests().try_recv() {
            return Ok(Err((client, signal)));
        }
        let wait = client
            .poll_timeout()
            .map_or(LOOK_EVERY, |t| t.saturating_duration_since(now))
            .min(LOOK_EVERY)
            .min(start + ALLOCATE_WAIT - now);
        if wait_any(&[main], wait).map_err(|source| Error::Receive {
            local: main.local_addr(),
            source,
        })?[0]
        {
            while let Ok(received) = main.recv(&mut buf, &mut scratch) {
                traffic.inbound(received.original_len.unwrap_or(received.len));
                if crate::net::addr::canonical(received.from) == setup.server {
                    client.handle_datagram(Instant::now(), &buf[..received.len]);
                }
            }
            if refused(&main.take_errors()) {
                break Err(format!(
                    "nothing listens at {} (ICMP port unreachable): is the TURN server running there, on that port?",
                    setup.server
                ));
            }
        }
        client.handle_timeout(Instant::now());
    };
    let relayed = match result {
        Ok(relayed) => {
            config.relayed = Some(relayed);
            Some(client)
        }
        Err(_) => None,
    };
    report(&TraverseEvent::Relay {
        server: setup.server,
        relayed: result,
    })?;
    Ok(Ok(relayed))
}

/// Sends the TURN client's datagrams to its server; the ICMP reports
/// drained on the way.
fn flush_turn(main: &Endpoint, client: &mut TurnClient, traffic: &mut Traffic) -> Vec<PeerError> {
    let server = client.server();
    let mut drained = Vec::new();
    while let Some(datagram) = client.poll_transmit() {
        if main.send_to(&datagram, server, &mut drained).is_ok() {
            traffic.out(datagram.len());
        }
    }
    drained
}

/// Gives an allocation not used back to its server.
fn close_turn(main: &Endpoint, client: Option<&mut TurnClient>, traffic: &mut Traffic) {
    if let Some(client) = client
        && client.is_allocated()
    {
        client.close(Instant::now());
        flush_turn(main, client, traffic);
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
fn send(
    sockets: &[(Endpoint, Buffers)],
    transmit: &Transmit,
    traffic: &mut Traffic,
) -> Vec<PeerError> {
    let Some((endpoint, _)) = sockets.get(transmit.socket) else {
        return Vec::new();
    };
    let mut drained = Vec::new();
    if endpoint
        .send_to(&transmit.bytes, transmit.to, &mut drained)
        .is_ok()
    {
        traffic.out(transmit.bytes.len());
    }
    drained
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
