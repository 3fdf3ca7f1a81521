//! `dgram mtu ADDR`: the largest UDP payload that crosses the path to ADDR
//! whole (without IP fragmentation), found by probing with the
//! don't-fragment flag (`docs/PROTOCOL.md` section 15, RFC 8899).
//!
//! The search is [`crate::proto::mtu::Search`]'s; this module puts it on
//! one socket: probes out in `IP_PMTUDISC_PROBE` mode (reverse requests in
//! `IP_PMTUDISC_DONT`, so that they arrive even when larger than the
//! forward path allows), answers in, and from the error queue the ICMP
//! "fragmentation needed"/"packet too big" reports and the local
//! interface's `EMSGSIZE`, each with the MTU it names.
//!
//! Against a dgram listener both directions are measured. Against any
//! other echo server (the probe comes back as it went) only the round
//! trip is: what that does and does not tell is said in the output.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::TryRecvError;
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};

use super::parse;
use crate::Error;
use crate::net::addr::{
    any_port_for, canonical, check_family, check_not_self, family_name, port_state, sendto_target,
};
use crate::net::sys::{self, ErrorOrigin, PathError, PmtuMode, Scratch};
use crate::output::{Format, Sink, sink};
use crate::proto::mtu::{
    self, Direction, Failure, MAX_PAYLOAD, OVERHEAD_V4, OVERHEAD_V6, Outcome, Search, SearchConfig,
    Step,
};
use crate::runtime::Shutdown;
use crate::runtime::entropy::seed;

/// The longest a receive waits before the loop looks at Ctrl-C again.
const TICK: Duration = Duration::from_millis(100);

/// The command line of `dgram mtu`.
#[derive(Debug, Args)]
pub struct MtuArgs {
    /// A dgram listener (dgram listen: both directions are measured) or
    /// any echo server (socat, Python: the round trip only, up to what
    /// the echo sends back): IP:PORT, [IPv6]:PORT or HOST:PORT.
    #[arg(value_name = "ADDR", value_parser = parse::peer_addr)]
    addr: SocketAddr,
    /// Local address to send from (default: any address of ADDR's family).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// One JSON object per line: each probe, each answer, loss, probe not
    /// sent (ENOBUFS: a lost try) and ICMP report, an echo that cut a
    /// probe short, each direction's result, and the failure that ends a
    /// run.
    #[arg(long)]
    json: bool,
}

/// `dgram mtu` as the command line asks for it, on stdout.
pub fn main(args: MtuArgs) -> Result<(), Error> {
    let options = MtuOptions {
        bind: args.bind.unwrap_or_else(|| any_port_for(&args.addr)),
        to: args.addr,
        format: Format::json(args.json),
    };
    let shutdown = Shutdown::from_signals()?;
    match run(&options, &shutdown, &mut sink::stdout()) {
        Err(error) if error.is_reader_gone() => Ok(()),
        other => other.map(|_| ()),
    }
}

/// What `dgram mtu` was asked to do.
#[derive(Debug, Clone)]
pub struct MtuOptions {
    /// The local address.
    pub bind: SocketAddr,
    /// The listener or echo server.
    pub to: SocketAddr,
    /// Human lines or JSON lines.
    pub format: Format,
}

/// What answered the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A dgram listener: answers of kind 15, both directions.
    Listener,
    /// An echo server: the probes came back as they went.
    Echo,
}

/// One direction's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectionResult {
    /// Forward, reverse, or (from an echo server) the round trip, which is
    /// reported as forward.
    pub direction: Direction,
    /// The largest payload confirmed.
    pub payload: usize,
    /// Nothing larger was worth probing (the interface's limit or the
    /// largest UDP payload).
    pub at_max: bool,
    /// An ICMP too-big came from the path.
    pub icmp_seen: bool,
    /// How one byte more failed (`None` when the answer is the maximum).
    pub failed_how: Option<Failure>,
    /// How long the search took.
    pub took: Duration,
    /// The most an echo server sends back, when it cut a probe short
    /// (then `payload` is the probe it cut: it crossed whole, and the
    /// search ended there).
    pub echo_limit: Option<usize>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct MtuReport {
    /// Who answered.
    pub peer: Peer,
    /// Forward (or the round trip, from an echo server), then reverse.
    pub results: Vec<DirectionResult>,
}

/// A duration in milliseconds, to the microsecond (as the other
/// commands' JSON gives them).
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The family's header bytes in front of a payload.
fn overhead(to: SocketAddr) -> usize {
    if canonical(to).is_ipv4() {
        OVERHEAD_V4
    } else {
        OVERHEAD_V6
    }
}

/// Runs both searches (one against an echo server) and reports them on
/// `out`.
pub fn run(
    options: &MtuOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<MtuReport, Error> {
    check_family(options.bind, options.to)?;
    check_not_self(options.bind, options.to)?;
    let socket = open(options.bind)?;
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| Error::LocalAddr {
            source: std::io::Error::other("not an IP socket"),
        })?;
    let mut prober = Prober {
        socket,
        local,
        to: options.to,
        overhead: overhead(options.to),
        format: options.format,
        out,
        shutdown,
        peer: None,
        sent: 0,
        scratch: Scratch::default(),
        // Room for any UDP payload (IPv6 allows 65,527 bytes).
        buf: vec![0u8; 65_536],
        reporter: None,
        local_limit: None,
        send_error: None,
    };
    prober.start()?;
    let forward = prober.search(Direction::Forward, MAX_PAYLOAD, None)?;
    let mut results = vec![forward];
    if prober.peer == Some(Peer::Listener) {
        // Nothing larger than this side's interface carries can arrive
        // whole through it either: the reverse search's top.
        let max = prober.local_limit.unwrap_or(MAX_PAYLOAD);
        // Paths are often symmetric: the forward answer is the reverse
        // search's first hint (probed like any other).
        results.push(prober.search(Direction::Reverse, max, Some(forward.payload))?);
    }
    let peer = prober.peer.unwrap_or(Peer::Listener);
    prober.summary(peer, &results)?;
    Ok(MtuReport { peer, results })
}

/// Creates and binds the socket, with `IP_RECVERR` on (the error queue
/// carries the MTUs).
fn open(bind: SocketAddr) -> Result<Socket, Error> {
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP)).map_err(
        |source| Error::CreateSocket {
            family: family_name(&bind),
            source,
        },
    )?;
    socket
        .bind(&bind.into())
        .map_err(|source| Error::Bind { addr: bind, source })?;
    socket
        .set_read_timeout(Some(TICK))
        .map_err(|source| Error::SetOption {
            option: "SO_RCVTIMEO",
            source,
        })?;
    sys::enable_extras(&socket);
    sys::set_pmtu_mode(&socket, PmtuMode::Probe).map_err(|source| Error::SetOption {
        option: "IP_MTU_DISCOVER (IP_PMTUDISC_PROBE)",
        source,
    })?;
    Ok(socket)
}

/// The socket, the output, and what the run learned so far.
struct Prober<'a> {
    socket: Socket,
    local: SocketAddr,
    to: SocketAddr,
    overhead: usize,
    format: Format,
    out: &'a mut dyn Sink,
    shutdown: &'a Shutdown,
    /// Who answers, once the first answer came.
    peer: Option<Peer>,
    /// Probes sent in all.
    sent: u64,
    scratch: Scratch,
    buf: Vec<u8>,
    /// Who sent the last ICMP too-big.
    reporter: Option<IpAddr>,
    /// This side's interface limit, once a send told it.
    local_limit: Option<usize>,
    /// Why the last probe not sent was not (shown with its step).
    send_error: Option<String>,
}

/// "No buffer space available": the interface's queue (or the socket's
/// buffer) is full for now.
#[cfg(unix)]
const ENOBUFS: i32 = nix::errno::Errno::ENOBUFS as i32;
/// `WSAENOBUFS`.
#[cfg(not(unix))]
const ENOBUFS: i32 = 10055;

/// True for a send error that says only that the local stack is busy
/// now (`ENOBUFS`: the interface's queue is full; `EAGAIN`): the probe is
/// lost, the run goes on.
pub fn transient(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock || error.raw_os_error() == Some(ENOBUFS)
}

/// What the error queue said.
enum Heard {
    Nothing,
    /// An ICMP too-big naming an MTU, about the probe with this token
    /// when the ICMP quoted enough to tell.
    TooBig(Option<usize>, Option<[u8; 8]>),
    LocalTooBig(Option<usize>),
    Refused,
    /// An ICMP error about the path other than too big and port
    /// unreachable (network or host unreachable, prohibited): its errno
    /// and who sent it.
    Unreachable(i32, Option<IpAddr>),
}

/// What an ICMP error's errno means for a path, in words: Linux maps
/// network unreachable (and network unknown, prohibited) to
/// `ENETUNREACH`, host unreachable and administratively prohibited
/// (filtered) to `EHOSTUNREACH`; the rest are said as the system says
/// them.
pub fn unreachable_words(errno: i32) -> String {
    let error = std::io::Error::from_raw_os_error(errno);
    match error.kind() {
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
        std::io::ErrorKind::HostUnreachable => {
            "host unreachable (or administratively prohibited)".to_string()
        }
        _ => error.to_string(),
    }
}

impl Prober<'_> {
    fn line(&mut self, human: String, json: serde_json::Value) -> Result<(), Error> {
        let line = match self.format {
            Format::Human => human,
            Format::Json => json.to_string(),
        };
        self.out
            .write_lines(&[line])
            .map_err(|source| Error::WriteOutput { source })
    }

    fn start(&mut self) -> Result<(), Error> {
        let (to, local, overhead) = (self.to, self.local, self.overhead);
        let family = family_name(&to);
        self.line(
            format!(
                "dgram mtu {}: from {local}, don't-fragment probes (IP_PMTUDISC_PROBE) over {family}: {} B of IP and UDP headers per datagram",
                to,
                overhead
            ),
            json!({"event": "start", "to": to.to_string(), "local": local.to_string(), "family": family, "overhead": overhead}),
        )
    }

    /// Reads the error queue: an ICMP too-big (with the MTU named), a local
    /// `EMSGSIZE`, a refusal (port unreachable) from the target.
    fn hear_errors(&mut self) -> Heard {
        let mut heard = Heard::Nothing;
        for error in sys::take_path_errors(&self.socket) {
            heard = self.sort_error(error).unwrap_or(heard);
        }
        heard
    }

    fn sort_error(&mut self, error: PathError) -> Option<Heard> {
        // A local error names the destination without its port on an
        // unconnected socket; an ICMP one names it whole.
        let about_target = match error.origin {
            ErrorOrigin::Local => canonical(error.peer).ip() == canonical(self.to).ip(),
            _ => canonical(error.peer) == canonical(self.to),
        };
        if !about_target {
            return None;
        }
        if error.errno == sys::EMSGSIZE {
            return Some(match error.origin {
                ErrorOrigin::Local => Heard::LocalTooBig(error.mtu),
                _ => {
                    self.reporter = error.reporter;
                    Heard::TooBig(
                        error.mtu,
                        error.quoted.map(|q| q[4..12].try_into().expect("8 bytes")),
                    )
                }
            });
        }
        let refused = std::io::Error::from_raw_os_error(error.errno).kind()
            == std::io::ErrorKind::ConnectionRefused;
        if refused {
            return Some(Heard::Refused);
        }
        // Any other report from the path says the probes do not get
        // there at all: the run's answer, not a fault of this socket.
        (error.origin == ErrorOrigin::Icmp)
            .then_some(Heard::Unreachable(error.errno, error.reporter))
    }

    /// One direction's search, every step shown.
    fn search(
        &mut self,
        direction: Direction,
        max: usize,
        hint: Option<usize>,
    ) -> Result<DirectionResult, Error> {
        let started = Instant::now();
        let mut search = Search::new(SearchConfig::new(direction, self.overhead, max));
        if let Some(hint) = hint {
            search.hint(hint);
        }
        let arrow = match direction {
            Direction::Forward => format!("here -> {}", self.to),
            Direction::Reverse => format!("{} -> here", self.to),
        };
        self.line(
            format!("{} ({arrow}):", direction.name()),
            json!({"event": "search", "direction": direction.name(), "max": max}),
        )?;
        let mut refused = false;
        while search.outcome().is_none() {
            match self.shutdown.requests().try_recv() {
                Ok(signal) => {
                    // Said here: the caller prints nothing for an
                    // interruption.
                    self.line(
                        format!(
                            "{}: interrupted after {} probe{}",
                            direction.name(),
                            self.sent,
                            if self.sent == 1 { "" } else { "s" }
                        ),
                        json!({"event": "interrupted", "direction": direction.name(), "probes": self.sent}),
                    )?;
                    return Err(Error::Interrupted { signal });
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
            }
            let now = Instant::now();
            if let Some((size, token)) = search.poll_transmit(now, seed().to_be_bytes()) {
                self.show_steps(&mut search, direction)?;
                self.send_probe(&mut search, direction, size, token)?;
            }
            self.show_steps(&mut search, direction)?;
            if search.outcome().is_some() {
                break;
            }
            if self.receive(&mut search, direction)? {
                refused = true;
                break;
            }
            search.handle_timeout(Instant::now());
            self.show_steps(&mut search, direction)?;
        }
        self.show_steps(&mut search, direction)?;
        let took = started.elapsed();
        match search.outcome() {
            Some(Outcome::Found { size, at_max }) => {
                let result = DirectionResult {
                    direction,
                    payload: size,
                    at_max,
                    icmp_seen: search.icmp_seen(),
                    failed_how: (!at_max).then(|| search.failed_how()).flatten(),
                    took,
                    echo_limit: None,
                };
                self.local_limit = self.local_limit.or(search.local_limit());
                self.show_result(&result)?;
                Ok(result)
            }
            Some(Outcome::EchoLimit { size, echoed, .. }) => {
                let result = DirectionResult {
                    direction,
                    payload: size,
                    at_max: false,
                    icmp_seen: search.icmp_seen(),
                    failed_how: None,
                    took,
                    echo_limit: Some(echoed),
                };
                self.show_result(&result)?;
                Ok(result)
            }
            _ => {
                let error = Error::NoProbeAnswers {
                    to: self.to,
                    sent: self.sent,
                    refused: refused.then(|| port_state(self.to)),
                };
                self.failed(direction, &error)?;
                Err(error)
            }
        }
    }

    /// Sends the probe of `size`; a send the interface refuses, or that
    /// fails on an earlier ICMP report, is sorted; one the stack cannot
    /// take now ([`transient`]) is a lost try.
    fn send_probe(
        &mut self,
        search: &mut Search,
        direction: Direction,
        size: usize,
        token: [u8; 8],
    ) -> Result<(), Error> {
        let (datagram, mode) = match direction {
            Direction::Forward => (mtu::forward_probe(token, size), PmtuMode::Probe),
            // The request pays for the answer (section 15.3) and may be
            // fragmented on its way: only the answer measures.
            Direction::Reverse => (mtu::reverse_probe(token, size), PmtuMode::Dont),
        };
        sys::set_pmtu_mode(&self.socket, mode).map_err(|source| Error::SetOption {
            option: "IP_MTU_DISCOVER",
            source,
        })?;
        let target = sendto_target(self.local, self.to);
        for _ in 0..3 {
            match self.socket.send_to(&datagram, &target) {
                Ok(_) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // With IP_RECVERR an error queued about an earlier
                    // datagram fails this send: read it, then try again.
                    match self.hear_errors() {
                        Heard::LocalTooBig(mtu) => {
                            search.on_local_too_big(mtu);
                            return Ok(());
                        }
                        Heard::TooBig(..) => continue,
                        Heard::Refused => continue,
                        Heard::Unreachable(errno, reporter) => {
                            return Err(self.unreachable(direction, errno, reporter)?);
                        }
                        Heard::Nothing if e.raw_os_error() == Some(sys::EMSGSIZE) => {
                            search.on_local_too_big(None);
                            return Ok(());
                        }
                        Heard::Nothing if transient(&e) => {
                            // A full queue now says nothing about the
                            // path: a lost try, tried again after its wait.
                            self.sent += 1;
                            self.send_error = Some(e.to_string());
                            search.on_not_sent();
                            return Ok(());
                        }
                        Heard::Nothing => {
                            return Err(Error::Send {
                                to: self.to,
                                len: datagram.len(),
                                source: e,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits for an answer until the probe's time is up (at most a tick).
    /// True when the target refused (ICMP port unreachable).
    fn receive(&mut self, search: &mut Search, direction: Direction) -> Result<bool, Error> {
        let Some(deadline) = search.poll_timeout() else {
            return Ok(false);
        };
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), TICK);
        let _ = self.socket.set_read_timeout(Some(wait));
        match sys::recv(&self.socket, &mut self.buf, &mut self.scratch, true) {
            Ok(received) => {
                if canonical(received.from) != canonical(self.to) || received.truncated {
                    return Ok(false);
                }
                let datagram = &self.buf[..received.len];
                if direction == Direction::Forward
                    && let Some((token, size)) = mtu::cut_echo(datagram)
                {
                    // An echo server that sends back less than it got:
                    // its limit, not a loss.
                    if search.on_short_echo(token, size, datagram.len()) {
                        self.peer.get_or_insert(Peer::Echo);
                    }
                    return Ok(false);
                }
                if !mtu::is_mtu(datagram) {
                    return Ok(false);
                }
                let Ok(wire) = mtu::parse(datagram) else {
                    return Ok(false);
                };
                let now = Instant::now();
                match (wire.answer, wire.direction) {
                    // An echo: the probe itself, back as it went.
                    (false, Direction::Forward)
                        if direction == Direction::Forward
                            && search.on_answer(now, wire.token, wire.len) =>
                    {
                        self.peer.get_or_insert(Peer::Echo);
                    }
                    (true, d) if d == direction => {
                        let size = match d {
                            Direction::Forward => wire.size,
                            Direction::Reverse => wire.len,
                        };
                        if search.on_answer(now, wire.token, size) {
                            self.peer.get_or_insert(Peer::Listener);
                        }
                    }
                    _ => {}
                }
                Ok(false)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => match self.hear_errors() {
                Heard::TooBig(mtu, token) => {
                    // A late report about an earlier probe (already
                    // counted) must not fail the one in flight.
                    let about_current = token.is_none_or(|token| search.is_current(token));
                    if about_current {
                        search.on_too_big(mtu);
                    }
                    Ok(false)
                }
                Heard::LocalTooBig(mtu) => {
                    search.on_local_too_big(mtu);
                    Ok(false)
                }
                Heard::Refused => Ok(true),
                Heard::Unreachable(errno, reporter) => {
                    Err(self.unreachable(direction, errno, reporter)?)
                }
                Heard::Nothing if e.raw_os_error() == Some(sys::EMSGSIZE) => {
                    search.on_too_big(None);
                    Ok(false)
                }
                Heard::Nothing if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(true),
                Heard::Nothing => Err(Error::Receive {
                    local: self.local,
                    source: e,
                }),
            },
        }
    }

    /// Shows an ICMP error about the path and returns the error that
    /// ends the run with it.
    fn unreachable(
        &mut self,
        direction: Direction,
        errno: i32,
        reporter: Option<IpAddr>,
    ) -> Result<Error, Error> {
        let what = unreachable_words(errno);
        let from = reporter.map_or("a router".to_string(), |ip| ip.to_string());
        self.line(
            format!("  ICMP from {from}: {what} for {}", self.to.ip()),
            json!({"event": "unreachable", "direction": direction.name(), "from": reporter.map(|ip| ip.to_string()), "errno": errno, "reason": what}),
        )?;
        let error = Error::PathUnreachable {
            to: self.to,
            reporter,
            what,
        };
        self.failed(direction, &error)?;
        Ok(error)
    }

    /// The `failed` event for `--json` (the human line is the error
    /// itself, on stderr).
    fn failed(&mut self, direction: Direction, error: &Error) -> Result<(), Error> {
        if self.format == Format::Json {
            self.line(
                String::new(),
                json!({"event": "failed", "direction": direction.name(), "reason": error.to_string()}),
            )?;
        }
        Ok(())
    }

    fn show_steps(&mut self, search: &mut Search, direction: Direction) -> Result<(), Error> {
        let name = direction.name();
        let overhead = self.overhead;
        while let Some(step) = search.poll_step() {
            let (human, json) = match step {
                Step::Sent { size, attempt } => (
                    None,
                    json!({"event": "probe", "direction": name, "size": size, "packet": size + overhead, "attempt": attempt}),
                ),
                Step::Answered { size, rtt } => (
                    Some(format!(
                        "  {size:>5} B  answered in {:.2} ms",
                        rtt.as_secs_f64() * 1e3
                    )),
                    json!({"event": "answered", "direction": name, "size": size, "rtt_ms": millis(rtt)}),
                ),
                Step::Lost {
                    size,
                    attempt,
                    failed,
                } => (
                    Some(format!(
                        "  {size:>5} B  lost (try {attempt} of {}){}",
                        mtu::MAX_PROBES,
                        match (failed, search.confirmed()) {
                            (false, _) => "",
                            // Nothing ever answered: nothing says it was
                            // too big rather than not heard at all.
                            (true, None) => ": no answer",
                            (true, Some(_)) => ": too big, no ICMP",
                        }
                    )),
                    json!({"event": "lost", "direction": name, "size": size, "attempt": attempt, "failed": failed}),
                ),
                Step::TooBig { size, mtu } => {
                    let from = self
                        .reporter
                        .map(|ip| format!(" from {}", ip))
                        .unwrap_or_default();
                    let said = mtu.map_or_else(
                        || "no MTU named".to_string(),
                        |m| format!("MTU {m} (= {} B payload)", m.saturating_sub(overhead)),
                    );
                    (
                        Some(format!("  {size:>5} B  ICMP too big{from}, {said}")),
                        json!({"event": "too_big", "direction": name, "size": size, "mtu": mtu, "from": self.reporter.map(|ip| ip.to_string())}),
                    )
                }
                Step::LocalTooBig { size, mtu } => (
                    Some(format!(
                        "  {size:>5} B  not sent: larger than this side's interface{} (EMSGSIZE)",
                        mtu.map(|m| format!(" MTU {m}")).unwrap_or_default()
                    )),
                    json!({"event": "local_too_big", "direction": name, "size": size, "mtu": mtu}),
                ),
                Step::NotSent { size, attempt } => {
                    let why = self.send_error.take().unwrap_or_default();
                    (
                        Some(format!(
                            "  {size:>5} B  not sent (try {attempt} of {}): {why}: counted lost",
                            mtu::MAX_PROBES
                        )),
                        json!({"event": "not_sent", "direction": name, "size": size, "attempt": attempt, "error": why}),
                    )
                }
                Step::ShortEcho { size, echoed } => (
                    Some(format!(
                        "  {size:>5} B  came back cut to {echoed} B: the echo server's limit, not a loss"
                    )),
                    json!({"event": "short_echo", "direction": name, "size": size, "echoed": echoed}),
                ),
            };
            match (self.format, human) {
                (Format::Human, Some(human)) => self.line(human, json)?,
                (Format::Human, None) => {}
                (Format::Json, human) => self.line(human.unwrap_or_default(), json)?,
            }
        }
        Ok(())
    }

    fn show_result(&mut self, result: &DirectionResult) -> Result<(), Error> {
        let overhead = self.overhead;
        let ip = overhead - 8;
        let packet = result.payload + overhead;
        let name = if self.peer == Some(Peer::Echo) {
            "round trip"
        } else {
            result.direction.name()
        };
        if let Some(echoed) = result.echo_limit {
            return self.line(
                format!(
                    "{name}: the echo server sends back at most {echoed} B (a probe of {} B came back cut to {echoed} B): the path there carries at least {packet} B packets ({} + 8 UDP + {ip} IP); the round trip cannot be measured beyond the echo's limit, in {:.0} ms",
                    result.payload,
                    result.payload,
                    result.took.as_secs_f64() * 1e3
                ),
                json!({"event": "result", "direction": name, "payload": result.payload, "packet": packet, "at_max": false, "icmp_seen": result.icmp_seen, "one_more": null, "echo_limit": echoed, "ms": millis(result.took)}),
            );
        }
        let how = match (result.at_max, result.failed_how) {
            (true, _) if result.direction == Direction::Reverse => {
                "no more can arrive whole through this side's interface"
            }
            (true, _) => "the largest UDP payload there is",
            (false, Some(Failure::Icmp)) => "1 B more got ICMP too big",
            (false, Some(Failure::Local)) => "1 B more is over this side's interface MTU",
            (false, _) if result.icmp_seen => "1 B more was lost (3 tries)",
            (false, _) => "1 B more was lost (3 tries), no ICMP seen",
        };
        self.line(
            format!(
                "{name}: {} B payload = {packet} B IP packet ({} + 8 UDP + {ip} IP), {how}, in {:.0} ms",
                result.payload,
                result.payload,
                result.took.as_secs_f64() * 1e3
            ),
            json!({"event": "result", "direction": name, "payload": result.payload, "packet": packet, "at_max": result.at_max, "icmp_seen": result.icmp_seen, "one_more": result.failed_how.map(|f| match f { Failure::Lost => "lost", Failure::Icmp => "icmp", Failure::Local => "local" }), "ms": millis(result.took)}),
        )
    }

    fn summary(&mut self, peer: Peer, results: &[DirectionResult]) -> Result<(), Error> {
        let total: Duration = results.iter().map(|r| r.took).sum();
        match peer {
            Peer::Listener => {
                let (fwd, rev) = (results[0].payload, results.get(1).map(|r| r.payload));
                self.line(
                    format!(
                        "a dgram listener: forward {fwd} B, reverse {} B, {} probes in {:.0} ms",
                        rev.map_or("?".to_string(), |r| r.to_string()),
                        self.sent,
                        total.as_secs_f64() * 1e3
                    ),
                    json!({"event": "summary", "peer": "listener", "forward": fwd, "reverse": rev, "probes": self.sent, "ms": millis(total)}),
                )
            }
            Peer::Echo if results[0].echo_limit.is_some() => {
                let r = results[0];
                let echoed = r.echo_limit.unwrap_or(r.payload);
                self.line(
                    format!(
                        "an echo server that sends back at most {echoed} B: forward at least {} B (a probe that large reached it whole); the round trip is not measured beyond {echoed} B; reverse not known, {} probes in {:.0} ms",
                        r.payload,
                        self.sent,
                        total.as_secs_f64() * 1e3
                    ),
                    json!({"event": "summary", "peer": "echo", "round_trip": null, "echo_limit": echoed, "forward_exact": false, "forward_at_least": r.payload, "reverse": null, "probes": self.sent, "ms": millis(total)}),
                )
            }
            Peer::Echo => {
                let r = results[0];
                let exact = matches!(r.failed_how, Some(Failure::Icmp | Failure::Local));
                let forward = if exact {
                    format!(
                        "forward exactly {} B (1 B more got ICMP too big or was over this side's interface)",
                        r.payload
                    )
                } else {
                    format!("forward at least {} B", r.payload)
                };
                self.line(
                    format!(
                        "an echo server: only the round trip is measured: {} B went out whole and came back; {forward}; reverse not known (the echo server's replies may be fragmented on their way back), {} probes in {:.0} ms",
                        r.payload,
                        self.sent,
                        total.as_secs_f64() * 1e3
                    ),
                    json!({"event": "summary", "peer": "echo", "round_trip": r.payload, "forward_exact": exact, "forward_at_least": r.payload, "reverse": null, "probes": self.sent, "ms": millis(total)}),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue (ENOBUFS, EAGAIN) is a lost try; a send the
    /// interface refuses for its size, or a refusal, is not.
    #[test]
    fn only_a_busy_stack_is_transient() {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e);
        assert!(transient(&errno(ENOBUFS)));
        assert!(transient(&std::io::Error::from(
            std::io::ErrorKind::WouldBlock
        )));
        assert!(!transient(&errno(sys::EMSGSIZE)));
        assert!(!transient(&std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        )));
    }
}
