//! `dgram rendezvous [ADDR]`: the service two peers meet at by the number
//! of their code, and a STUN Binding server on the same port
//! (`docs/PROTOCOL.md`, section 12).
//!
//! Thin: a socket, a loop that feeds the [`Service`] what arrives and
//! sends what it answers, and the lines an operator reads. Every rule (pairs,
//! limits, expiry, sizes) is the service's. One thread is enough: each
//! datagram costs a lookup and at most two small answers.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::parse;
use crate::Error;
use crate::output::render::{duration, plural};
use crate::output::{Format, Sink, sink};
use crate::proto::rendezvous::{Event, Limits, Refusal, Service, Stats};
use crate::runtime::Shutdown;

/// The port the service binds by default: STUN's (RFC 8489), so that
/// STUN clients find it where they look first.
pub const DEFAULT_ADDR: &str = "0.0.0.0:3478";

/// The longest wait for a datagram between two looks at the stop
/// requests.
const TICK: Duration = Duration::from_millis(200);

/// Larger than any datagram the service reads whole: a longer one is
/// taken at this length, and then fails the length checks of both
/// protocols (refused, unanswered).
const RECV_BUFFER: usize = 2048;

/// The command line of `dgram rendezvous`.
#[derive(Debug, Args)]
pub struct RendezvousArgs {
    /// The address to serve on: IP:PORT or [IPv6]:PORT (a port below 1024
    /// needs CAP_NET_BIND_SERVICE).
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR, value_parser = parse::socket_addr)]
    addr: SocketAddr,
    /// One JSON object per line: the start, each number opened, paired and
    /// expired, each STUN answer, refusal and rate-limited source, the
    /// summary.
    #[arg(long)]
    json: bool,
    /// Seconds a number stays open without its pair after its last
    /// registration (1 to 3600; a waiting peer registers every second, so
    /// a short time frees the number of one that left).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = parse::count::<u64>(1, 3600))]
    open_for: u64,
    /// A second port, on ADDR's address, that answers only STUN; the
    /// first port's Binding responses announce it (OTHER-ADDRESS, RFC
    /// 5780), so that a peer asks both and sees whether its NAT takes a
    /// new port per destination (default: ADDR's port + 1; 0: any).
    #[arg(long, value_name = "PORT", conflicts_with = "no_other_port")]
    other_port: Option<u16>,
    /// No second port (peers then need --stun or --turn to tell a hard
    /// NAT).
    #[arg(long)]
    no_other_port: bool,
}

/// `dgram rendezvous` as the command line asks for it: on stdout, until
/// SIGTERM, SIGINT or SIGHUP, which end it with a summary (and exit status
/// 0: stopping is how a service ends).
pub fn main(args: RendezvousArgs) -> Result<(), Error> {
    let shutdown = Shutdown::from_signals()?;
    let format = if args.json {
        Format::Json
    } else {
        Format::Human
    };
    let limits = Limits {
        open_for: Duration::from_secs(args.open_for),
        ..Limits::default()
    };
    let other = (!args.no_other_port).then(|| {
        let port = args.other_port.unwrap_or(match args.addr.port() {
            0 | u16::MAX => 0,
            port => port + 1,
        });
        SecondPort {
            addr: SocketAddr::new(args.addr.ip(), port),
            asked: args.other_port.is_some(),
        }
    });
    run(
        args.addr,
        other,
        format,
        limits,
        &shutdown,
        &mut sink::stdout(),
    )
    .map(|_| ())
}

/// The second, STUN-only port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondPort {
    /// Where.
    pub addr: SocketAddr,
    /// `--other-port` named it: failing to bind it fails the service. The
    /// default (the next port) may be taken by another service, such as
    /// a coturn next to it: then the rendezvous runs without it and says
    /// so.
    pub asked: bool,
}

/// Serves on `addr` until `shutdown` asks, writing its lines to `out`;
/// returns what the service counted.
pub fn run(
    addr: SocketAddr,
    other: Option<SecondPort>,
    format: Format,
    limits: Limits,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<Stats, Error> {
    let socket = UdpSocket::bind(addr).map_err(|source| Error::Bind { addr, source })?;
    let local = socket
        .local_addr()
        .map_err(|source| Error::LocalAddr { source })?;
    let mut service = Service::new(limits);
    let mut display = Display { format, out };
    let mut skipped = None;
    let second = match other.map(|o| (o, UdpSocket::bind(o.addr))) {
        None => None,
        Some((other, Err(source))) if !other.asked => {
            skipped = Some((other.addr, source));
            None
        }
        Some((other, bound)) => {
            let second = bound.map_err(|source| Error::Bind {
                addr: other.addr,
                source,
            })?;
            let second_local = second
                .local_addr()
                .map_err(|source| Error::LocalAddr { source })?;
            second
                .set_nonblocking(true)
                .map_err(|source| Error::SetOption {
                    option: "O_NONBLOCK",
                    source,
                })?;
            service = service.with_other(second_local);
            Some((second, second_local))
        }
    };
    display.start(local, second.as_ref().map(|(_, a)| *a), &limits)?;
    if let Some((other, source)) = skipped {
        let line = match display.format {
            Format::Json => object(
                "rendezvous_no_other_port",
                json!({ "other": other.to_string(), "error": source.to_string() }),
            ),
            Format::Human => format!(
                "no second STUN port: {other} is not free ({source}); peers need --stun or --turn \
                 to tell a NAT that takes a new port per destination (--other-port PORT picks another)"
            ),
        };
        display.write(line)?;
    }
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut send_failed = 0u64;
    loop {
        if shutdown.requests().try_recv().is_ok() {
            break;
        }
        let now = Instant::now();
        let wait = service
            .poll_timeout()
            .map_or(TICK, |at| at.saturating_duration_since(now).min(TICK))
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|source| Error::SetOption {
                option: "SO_RCVTIMEO",
                source,
            })?;
        if let Some((second, _)) = &second {
            // Both ports: wait on either, then take what each has.
            let ready = crate::net::group::wait_readable(
                &socket2::SockRef::from(&socket),
                &socket2::SockRef::from(second),
                wait,
            )
            .map_err(|source| Error::Receive { local, source })?;
            socket
                .set_nonblocking(true)
                .map_err(|source| Error::SetOption {
                    option: "O_NONBLOCK",
                    source,
                })?;
            if ready {
                // Bounded: a flood at the second port cannot starve the
                // first.
                for _ in 0..64 {
                    match second.recv_from(&mut buf) {
                        Ok((len, from)) => {
                            service.handle_other(Instant::now(), from, &buf[..len]);
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => service.handle(Instant::now(), from, &buf[..len]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                service.handle_timeout(Instant::now());
            }
            // An ICMP error about an earlier answer (its sender has gone):
            // nothing to do for a service that only answers. A signal
            // interrupts the wait; the loop's top looks at it.
            Err(e) if is_about_a_peer(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::Receive { local, source }),
        }
        while let Some(transmit) = service.poll_transmit() {
            let from = match (&second, transmit.from_other) {
                (Some((second, _)), true) => second,
                _ => &socket,
            };
            // An answer that cannot be sent (its sender has gone, a route
            // is missing) is that peer's loss, never the service's end.
            if from.send_to(&transmit.bytes, transmit.to).is_err() {
                send_failed += 1;
            }
        }
        while let Some(event) = service.poll_event() {
            display.event(&event)?;
        }
    }
    let stats = service.stats();
    display.summary(&stats, service.held(), send_failed)?;
    Ok(stats)
}

/// Whether a receive error is an ICMP report about a peer rather than a
/// failure of the socket.
fn is_about_a_peer(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// What the operator reads: a line per pairing, expiry, taken or busy
/// number and rate-limited source (the rest is counted in the summary), or
/// one JSON object per event. Nothing a peer sent is shown but numbers and
/// addresses, so nothing needs escaping.
struct Display<'a> {
    format: Format,
    out: &'a mut dyn Sink,
}

impl Display<'_> {
    fn write(&mut self, line: String) -> Result<(), Error> {
        self.out
            .write_lines(&[line])
            .map_err(|source| Error::WriteOutput { source })
    }

    fn start(
        &mut self,
        local: SocketAddr,
        other: Option<SocketAddr>,
        limits: &Limits,
    ) -> Result<(), Error> {
        let line = match self.format {
            Format::Json => object(
                "rendezvous_start",
                json!({
                    "local": local.to_string(),
                    "other": other.map(|o| o.to_string()),
                    "max_numbers": limits.max_numbers,
                    "max_sources": limits.max_sources,
                    "burst": limits.burst,
                    "per_second": limits.per_second,
                    "open_s": limits.open_for.as_secs(),
                    "paired_s": limits.paired_for.as_secs(),
                }),
            ),
            Format::Human => format!(
                "rendezvous on {local}: dgram registrations and STUN Binding requests \
                 (at most {} numbers; {} datagrams at once and {} a second per source){}",
                limits.max_numbers,
                limits.burst,
                limits.per_second,
                match other {
                    Some(other) => format!(
                        "; STUN also on {other}, announced in the answers (OTHER-ADDRESS) so \
                         that peers can tell a NAT that takes a new port per destination"
                    ),
                    None => String::new(),
                }
            ),
        };
        self.write(line)
    }

    fn event(&mut self, event: &Event) -> Result<(), Error> {
        let line = match self.format {
            Format::Json => Some(event_json(event)),
            Format::Human => event_line(event),
        };
        match line {
            Some(line) => self.write(line),
            None => Ok(()),
        }
    }

    fn summary(&mut self, stats: &Stats, held: usize, send_failed: u64) -> Result<(), Error> {
        let line = match self.format {
            Format::Json => object(
                "rendezvous_summary",
                json!({
                    "received": stats.received,
                    "bytes_in": stats.bytes_in,
                    "sent": stats.sent,
                    "bytes_out": stats.bytes_out,
                    "send_failed": send_failed,
                    "registrations": stats.registrations,
                    "pairings": stats.pairings,
                    "expired": stats.expired,
                    "stun_answered": stats.stun_answered,
                    "refused": stats.refused,
                    "rate_limited": stats.rate_limited,
                    "held": held,
                }),
            ),
            Format::Human => format!(
                "summary: {} datagram{} in ({} B), {} out ({} B{}); {} pairing{}, {} expired, \
                 {} STUN answered, {} refused, {} rate-limited; {} number{} held",
                stats.received,
                plural(stats.received),
                stats.bytes_in,
                stats.sent,
                stats.bytes_out,
                if send_failed > 0 {
                    format!(", {send_failed} could not be sent")
                } else {
                    String::new()
                },
                stats.pairings,
                plural(stats.pairings),
                stats.expired,
                stats.stun_answered,
                stats.refused,
                stats.rate_limited,
                held,
                plural(held as u64),
            ),
        };
        self.write(line)
    }
}

/// A JSON object with `event` first, then `fields` (sorted by name, as
/// serde_json keeps them), like every other `--json` line of dgram.
fn object(event: &str, fields: Value) -> String {
    let mut line = format!("{{\"event\":{}", Value::from(event));
    if let Value::Object(fields) = fields {
        for (name, value) in fields {
            line.push_str(&format!(",{}:{value}", Value::from(name)));
        }
    }
    line.push('}');
    line
}

/// An event's `--json` line.
fn event_json(event: &Event) -> String {
    let millis = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    match event {
        Event::Opened { number, source } => object(
            "number_opened",
            json!({ "number": number, "from": source.to_string(),
            }),
        ),
        Event::Paired {
            number,
            first,
            second,
            waited,
        } => object(
            "paired",
            json!({ "number": number, "first": first.to_string(),
                "second": second.to_string(), "waited_ms": millis(*waited),
            }),
        ),
        Event::Expired {
            number,
            source,
            waited,
        } => object(
            "number_expired",
            json!({ "number": number, "from": source.to_string(),
                "waited_ms": millis(*waited),
            }),
        ),
        Event::StunAnswered {
            source,
            len,
            answer_len,
            error,
        } => object(
            "stun_answered",
            json!({ "from": source.to_string(), "len": len,
                "answer_len": answer_len, "error": if *error == 0 { None } else { Some(error) },
            }),
        ),
        Event::Refused {
            source,
            len,
            reason,
        } => {
            let number = match reason {
                Refusal::Taken(number) | Refusal::Busy(number) => Some(number),
                _ => None,
            };
            object(
                "refused",
                json!({ "from": source.to_string(), "len": len, "reason": reason.as_str(),
                    "number": number,
                }),
            )
        }
        Event::RateLimited { source } => object(
            "rate_limited",
            json!({ "source": source.to_string(),
            }),
        ),
    }
}

/// An event's line for an operator, or none for what the summary counts.
fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::Paired {
            number,
            first,
            second,
            waited,
        } => Some(format!(
            "paired {number}: {first} and {second} (the first waited {})",
            duration(*waited)
        )),
        Event::Expired {
            number,
            source,
            waited,
        } => Some(format!(
            "expired {number}: {source} waited {} without a pair",
            duration(*waited)
        )),
        Event::Refused {
            source,
            reason: Refusal::Taken(number),
            ..
        } => Some(format!(
            "taken {number}: {source} is a third registrant of a paired number, refused"
        )),
        Event::Refused {
            source,
            reason: Refusal::Busy(number),
            ..
        } => Some(format!(
            "busy {number}: {source} asked for a new number, and every one is held"
        )),
        Event::RateLimited { source } => Some(format!(
            "rate-limited: {source} sends faster than allowed; its datagrams are dropped until it slows down"
        )),
        _ => None,
    }
}
