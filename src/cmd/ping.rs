//! `dgram ping ADDR`: round trips to any echo server (`dgram listen
//! --echo`, socat's `PIPE`, the classic Python echo).
//!
//! Each probe carries its number and the time it was sent, so that a reply
//! is matched to its probe however replies come back: on time, late (after
//! its probe was given up on), duplicated, reordered, or not a reply at
//! all. The round trip is on the critical path, so ping runs on one thread:
//! `sendto`, `recvmsg`, and a line of output, with no hand-off to another
//! thread in between.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::TryRecvError;
use serde::Serialize;

use super::options::{self, BufferArgs, PcapArgs};
use super::parse;
use crate::Error;
use crate::model::latency::{MIN_PROBE, Probe, Replies, Reply, RttStats};
use crate::net::addr::{any_port_for, check_family, check_not_self, port_state};
use crate::net::capture::Capture;
use crate::net::endpoint::READ_TIMEOUT;
use crate::net::sys::{LOOKS_WITHOUT_WAITING, PeerError, Scratch};
use crate::net::{Endpoint, SocketOptions};
use crate::output::render::{duration, plural};
use crate::output::{Format, Sink, sink};
use crate::runtime::Shutdown;
use crate::runtime::entropy::seed;
use crate::runtime::pacing::busy_recv;
use crate::runtime::sorting::{Sorted, sort};

/// Probes sent at a longer interval than this are each shown on a line of
/// their own (as ping does); faster, a progress line stands in for them.
const LINE_PER_REPLY: Duration = Duration::from_millis(100);

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// After the last probe is settled, ping listens this long (or the
/// timeout, if shorter) for duplicate and late replies to it.
const AFTER_LAST: Duration = Duration::from_millis(100);

/// The widest histogram bar.
const BAR: u64 = 40;

/// The command line of `dgram ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// The echo server: IP:PORT, [IPv6]:PORT or HOST:PORT.
    #[arg(value_name = "ADDR", value_parser = parse::peer_addr)]
    addr: SocketAddr,
    /// Probes to send (default: until Ctrl-C).
    #[arg(long, short = 'c', value_name = "N", value_parser = parse::count::<u64>(1, parse::MAX_COUNT))]
    count: Option<u64>,
    /// Milliseconds between probes; 0: ping-pong, the next probe as soon as
    /// the reply (or the timeout) comes.
    #[arg(long, short = 'i', value_name = "MS", default_value_t = 1000, value_parser = parse::millis(0, parse::MAX_WAIT_MS))]
    interval: u64,
    /// Probe size in bytes (24 to 65507; the first 24 carry the probe's
    /// number and send time).
    #[arg(long, short = 's', value_name = "N", default_value = "64", value_parser = parse::payload_size)]
    size: usize,
    /// Milliseconds to wait for a reply before the probe counts as lost (a
    /// later reply is counted late, apart).
    #[arg(long, short = 'W', value_name = "MS", default_value_t = 1000, value_parser = parse::millis(1, parse::MAX_WAIT_MS))]
    timeout: u64,
    /// Local address to send from (default: any address of ADDR's family).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// One JSON object per line: each reply, each timeout, the summary.
    #[arg(long)]
    json: bool,
    /// Wait for replies by spinning on a non-blocking receive instead of
    /// sleeping in the kernel (as sockperf's busy polling does): no wake-up
    /// on the round trip, so shorter and steadier round trips, for a whole
    /// CPU kept busy for the run. Pair it with `listen --echo --busy-poll`.
    /// Linux; elsewhere a receive cannot look without waiting, and ping
    /// waits as usual.
    #[arg(long)]
    busy_poll: bool,
    #[command(flatten)]
    buffers: BufferArgs,
    #[command(flatten)]
    pcap: PcapArgs,
}

/// `dgram ping` as the command line asks for it: on stdout, until
/// `--count` probes or Ctrl-C.
pub fn main(args: PingArgs) -> Result<(), Error> {
    let options = PingOptions::from_args(&args)?;
    let shutdown = Shutdown::from_signals()?;
    run(&options, &shutdown, &mut sink::stdout()).map(|_| ())
}

/// What `dgram ping` was asked to do.
#[derive(Debug, Clone)]
pub struct PingOptions {
    /// Bind address and buffer sizes.
    pub socket: SocketOptions,
    /// The echo server.
    pub to: SocketAddr,
    /// Probes to send (`None`: until Ctrl-C).
    pub count: Option<u64>,
    /// Time between probes; zero: ping-pong, the next probe as soon as the
    /// reply (or the timeout) comes.
    pub interval: Duration,
    /// Probe size in bytes (at least the 24-byte header).
    pub size: usize,
    /// The receive buffer (`--max-size`): a longer reply is cut.
    pub max_size: usize,
    /// How long to wait for a reply before the probe counts as lost (a
    /// later reply is counted late).
    pub timeout: Duration,
    /// Human lines or JSON lines.
    pub format: Format,
    /// Spin on a non-blocking receive instead of a blocking one.
    pub busy_poll: bool,
    /// `--pcap`: where every probe and reply is recorded.
    pub pcap: Option<PathBuf>,
}

impl PingOptions {
    /// The options of the command line, checked: a probe holds at least
    /// its number and send time.
    pub fn from_args(args: &PingArgs) -> Result<Self, Error> {
        if args.size < MIN_PROBE {
            return Err(Error::Usage {
                message: format!(
                    "invalid value '{}' for --size: a probe is at least {MIN_PROBE} bytes (its number and send time)",
                    args.size
                ),
            });
        }
        let bind = args.bind.unwrap_or_else(|| any_port_for(&args.addr));
        Ok(PingOptions {
            socket: args.buffers.socket(bind),
            to: args.addr,
            count: args.count,
            interval: Duration::from_millis(args.interval),
            size: args.size,
            max_size: args.buffers.max_size,
            timeout: Duration::from_millis(args.timeout),
            format: Format::json(args.json),
            busy_poll: args.busy_poll,
            pcap: args.pcap.pcap.clone(),
        })
    }
}

/// What a ping run found.
#[derive(Debug, Clone)]
pub struct PingReport {
    /// The replies, sorted.
    pub replies: Replies,
    /// ICMP port-unreachable reports.
    pub unreachable: u64,
    /// Round-trip statistics of the replies on time.
    pub stats: Option<RttStats>,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum PingWire {
    PingStart {
        local: SocketAddr,
        to: SocketAddr,
        size: usize,
        interval_ms: f64,
        timeout_ms: f64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        busy_poll: bool,
    },
    Reply {
        seq: u64,
        from: SocketAddr,
        len: usize,
        rtt_ns: u64,
        status: &'static str,
        reordered: bool,
    },
    Timeout {
        seq: u64,
    },
    Foreign {
        from: SocketAddr,
        len: usize,
    },
    Unreachable {
        peer: SocketAddr,
    },
    PeerError {
        peer: SocketAddr,
        error: String,
    },
    PingSummary {
        to: SocketAddr,
        sent: u64,
        replies: u64,
        lost: u64,
        loss_percent: f64,
        late: u64,
        truncated: u64,
        duplicates: u64,
        reordered: u64,
        foreign: u64,
        unreachable: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        throttled: Option<WireThrottled>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rtt: Option<WireStats>,
    },
}

/// Loss that looks like the echo server's rate limit.
#[derive(Serialize)]
struct WireThrottled {
    stalls: u64,
    replies_between: u64,
}

/// Round trips in whole nanoseconds: at 10 µs a millisecond figure with
/// three decimals moves in 10% steps, too coarse to compare two programs.
#[derive(Serialize)]
struct WireStats {
    min_ns: u64,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    mean_ns: u64,
    histogram: Vec<WireBucket>,
}

#[derive(Serialize)]
struct WireBucket {
    from_ns: u64,
    to_ns: u64,
    count: u64,
}

/// A round trip to the microsecond: `23.4 µs`, `1.250 ms`, `1.25 s`.
pub fn fine(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1e6 {
        format!("{:.3} ms", us / 1e3)
    } else {
        duration(d)
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn json(wire: &PingWire) -> String {
    // Plain structs of numbers and addresses: serialising cannot fail.
    serde_json::to_string(wire).expect("a ping event serialises")
}

/// Runs ping until `count` probes are settled, Ctrl-C or SIGTERM; shows
/// each reply (or progress), then the summary; returns the report. Fails
/// when not one reply came back.
pub fn run(
    options: &PingOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<PingReport, Error> {
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = probe(options, capture.clone(), shutdown, out);
    options::finish_capture(capture.as_ref(), result)
}

/// [`run`] with the capture open.
fn probe(
    options: &PingOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<PingReport, Error> {
    check_family(options.socket.bind, options.to)?;
    check_not_self(options.socket.bind, options.to)?;
    let (endpoint, _) = Endpoint::open(&options.socket)?;
    endpoint.capture_to(capture);
    let size = options.size.max(MIN_PROBE);
    let mut ping = Ping {
        options,
        endpoint,
        size,
        run: seed() as u32,
        start: Instant::now(),
        replies: Replies::default(),
        outstanding: std::collections::BTreeMap::new(),
        unreachable: 0,
        said_unreachable: false,
        network_error: None,
        wait: READ_TIMEOUT,
        out,
        lines: options.interval >= LINE_PER_REPLY,
        progress: options.interval < LINE_PER_REPLY
            && options.format == Format::Human
            && std::io::stderr().is_terminal(),
        last_progress: Instant::now(),
    };
    ping.say_start()?;
    ping.run(shutdown)?;
    let report = PingReport {
        stats: ping.replies.stats(),
        replies: ping.replies.clone(),
        unreachable: ping.unreachable,
    };
    ping.say_summary(&report)?;
    if !answered_any(&report.replies) && report.replies.sent > 0 {
        // The cause, said once: what the network reported, a refusal, or
        // silence.
        if let (Some(error), 0) = (ping.network_error.take(), report.unreachable) {
            return Err(Error::PeerNotReached {
                peer: options.to,
                error,
            });
        }
        return Err(Error::NoReplies {
            to: options.to,
            sent: report.replies.sent,
            refused: (report.unreachable > 0).then(|| port_state(options.to)),
        });
    }
    Ok(report)
}

/// Some probe came back (whole or not, on time or not).
fn answered_any(r: &Replies) -> bool {
    r.on_time() + r.late + r.truncated > 0
}

struct Ping<'a> {
    options: &'a PingOptions,
    endpoint: Endpoint,
    size: usize,
    run: u32,
    start: Instant,
    replies: Replies,
    /// Probes waiting for a reply, with when they time out.
    outstanding: std::collections::BTreeMap<u64, Instant>,
    unreachable: u64,
    said_unreachable: bool,
    /// The last ICMP error other than a refusal, as the OS words it.
    network_error: Option<String>,
    /// The socket's receive timeout now.
    wait: Duration,
    out: &'a mut dyn Sink,
    /// A line per reply and per timeout (probes at least 100 ms apart).
    lines: bool,
    /// A progress line on stderr (a terminal) stands in for a line per
    /// reply.
    progress: bool,
    last_progress: Instant,
}

impl Ping<'_> {
    fn run(&mut self, shutdown: &Shutdown) -> Result<(), Error> {
        let count = self.options.count.unwrap_or(u64::MAX);
        let mut next_seq = 0u64;
        let mut next_send = self.start;
        // --max-size: a reply longer than this is cut by the kernel, as in
        // listen, and counted truncated.
        let mut buf = vec![0u8; self.options.max_size];
        let mut scratch = Scratch::default();
        let mut done_at: Option<Instant> = None;
        loop {
            match shutdown.requests().try_recv() {
                Ok(_) => break,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
            }
            let now = Instant::now();
            let pong = self.options.interval.is_zero();
            if next_seq < count && now >= next_send && (!pong || self.outstanding.is_empty()) {
                self.send(next_seq)?;
                next_seq += 1;
                next_send = now + self.options.interval;
            }
            self.expire(Instant::now())?;
            if next_seq >= count && self.outstanding.is_empty() {
                // Everything is settled: a moment more for duplicates and
                // late replies, then stop.
                let end = *done_at
                    .get_or_insert_with(|| Instant::now() + AFTER_LAST.min(self.options.timeout));
                if Instant::now() >= end {
                    break;
                }
            }
            // Wait for a reply until the next thing to do.
            let mut wake = self.outstanding.values().min().copied();
            if let Some(end) = done_at {
                wake = Some(end);
            }
            if next_seq < count && (!pong || self.outstanding.is_empty()) {
                wake = Some(wake.map_or(next_send, |w| w.min(next_send)));
            }
            let until = wake
                .map_or(READ_TIMEOUT, |w| {
                    w.saturating_duration_since(Instant::now())
                })
                .clamp(Duration::from_micros(100), READ_TIMEOUT);
            let got = if self.busy_poll() {
                busy_recv(&self.endpoint, &mut buf, Instant::now() + until)
            } else {
                self.set_wait(until);
                self.endpoint.recv(&mut buf, &mut scratch)
            };
            match got {
                Ok(got) => {
                    let rtt_base = self.start.elapsed();
                    let cut = got.truncated.then_some(got.original_len);
                    self.on_reply(got.from, &buf[..got.len], cut, rtt_base)?;
                }
                Err(e) => match sort(e, &self.endpoint) {
                    Sorted::Retry | Sorted::Idle => {}
                    Sorted::Peers(errors) => self.on_peer_errors(errors)?,
                    Sorted::Failed(source) => {
                        return Err(Error::Receive {
                            local: self.endpoint.local_addr(),
                            source,
                        });
                    }
                },
            }
            self.draw_progress(false)?;
        }
        self.draw_progress(true)
    }

    fn set_wait(&mut self, wait: Duration) {
        // Only when it changes by more than a millisecond: a setsockopt per
        // probe would sit on the round trip.
        if wait.abs_diff(self.wait) > Duration::from_millis(1)
            && self.endpoint.set_read_timeout(wait).is_ok()
        {
            self.wait = wait;
        }
    }

    fn send(&mut self, seq: u64) -> Result<(), Error> {
        let sent_ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let probe = Probe {
            run: self.run,
            seq,
            sent_ns,
        };
        let payload = probe.encode(self.size);
        let mut drained = Vec::new();
        let sent = self
            .endpoint
            .send_to(&payload, self.options.to, &mut drained);
        self.on_peer_errors(drained)?;
        sent?;
        self.replies.record_sent(seq);
        self.outstanding
            .insert(seq, Instant::now() + self.options.timeout);
        Ok(())
    }

    fn expire(&mut self, now: Instant) -> Result<(), Error> {
        let expired: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            self.outstanding.remove(&seq);
            self.replies.timed_out(seq);
            match self.options.format {
                Format::Json => self.line(json(&PingWire::Timeout { seq }))?,
                Format::Human if self.lines => self.line(format!(
                    "no reply to probe {seq} within {}",
                    duration(self.options.timeout)
                ))?,
                Format::Human => {}
            }
        }
        Ok(())
    }

    /// A datagram from `from`; `cut` when this side's `--max-size` cut it
    /// (with its true length where the platform tells it).
    fn on_reply(
        &mut self,
        from: SocketAddr,
        payload: &[u8],
        cut: Option<Option<usize>>,
        now: Duration,
    ) -> Result<(), Error> {
        let probe = (from == self.options.to)
            .then(|| Probe::decode(payload, self.run))
            .flatten();
        let rtt = probe.map_or(Duration::ZERO, |p| {
            now.saturating_sub(Duration::from_nanos(p.sent_ns))
        });
        let whole = payload.len() >= self.size && cut.is_none();
        let reply = self.replies.record(probe, rtt, whole);
        if let Some(probe) = probe {
            self.outstanding.remove(&probe.seq);
        }
        let seq = probe.map_or(0, |p| p.seq);
        let (status, reordered) = match reply {
            Reply::OnTime { reordered, .. } => ("on_time", reordered),
            Reply::Late { .. } => ("late", false),
            Reply::Truncated { .. } => ("truncated", false),
            Reply::Duplicate => ("duplicate", false),
            Reply::Foreign => {
                return match self.options.format {
                    Format::Json => self.line(json(&PingWire::Foreign {
                        from,
                        len: payload.len(),
                    })),
                    Format::Human if self.lines => self.line(format!(
                        "{} B from {from}: not a reply to this ping (counted, not timed)",
                        payload.len()
                    )),
                    Format::Human => Ok(()),
                };
            }
        };
        match self.options.format {
            Format::Json => self.line(json(&PingWire::Reply {
                seq,
                from,
                len: payload.len(),
                rtt_ns: ns(rtt),
                status,
                reordered,
            })),
            Format::Human if !self.lines => Ok(()),
            Format::Human => {
                let mut line = format!(
                    "{} B from {from}: probe {seq}, {}",
                    payload.len(),
                    fine(rtt)
                );
                match reply {
                    Reply::Late { .. } => {
                        line.push_str(" (late: after the timeout, counted apart)")
                    }
                    Reply::Duplicate => line.push_str(" (duplicate reply, not timed)"),
                    Reply::Truncated { .. } => match cut {
                        Some(len) => {
                            let _ = write!(
                                line,
                                " (truncated here by --max-size {}: {} came; counted apart, not timed)",
                                self.options.max_size,
                                len.map_or("more".to_string(), |len| format!("{len} B"))
                            );
                        }
                        None => {
                            let _ = write!(
                                line,
                                " (truncated: {} B sent, the echo server's buffer cut it; counted apart, not timed)",
                                self.size
                            );
                        }
                    },
                    _ if reordered => line.push_str(" (reordered: after a later probe's reply)"),
                    _ => {}
                }
                self.line(line)
            }
        }
    }

    fn on_peer_errors(&mut self, errors: Vec<PeerError>) -> Result<(), Error> {
        for error in errors {
            if error.is_refusal() {
                self.unreachable_once(error.peer)?;
            } else {
                self.network_error(error)?;
            }
        }
        Ok(())
    }

    /// An ICMP error other than a refusal (no route, host or network
    /// unreachable): each in `--json`, said once to people, and the cause
    /// named at the end if no probe came back.
    fn network_error(&mut self, error: PeerError) -> Result<(), Error> {
        let first = self.network_error.is_none();
        let message = error.message();
        self.network_error = Some(message.clone());
        match self.options.format {
            Format::Json => self.line(json(&PingWire::PeerError {
                peer: error.peer,
                error: message,
            })),
            // A run that ends by itself with no reply names the cause in
            // its error line, as for a refusal.
            Format::Human if self.options.count.is_some() && !answered_any(&self.replies) => Ok(()),
            Format::Human if first => self.line(format!(
                "!! the network reports \"{message}\" for {} (an ICMP error from a router or its host); probing on",
                error.peer
            )),
            Format::Human => Ok(()),
        }
    }

    fn unreachable_once(&mut self, peer: SocketAddr) -> Result<(), Error> {
        self.unreachable += 1;
        match self.options.format {
            Format::Json => self.line(json(&PingWire::Unreachable { peer })),
            // A run that ends by itself with no reply says the cause in
            // its error line: once, not here as well.
            Format::Human if self.options.count.is_some() && !answered_any(&self.replies) => Ok(()),
            Format::Human if !self.said_unreachable => {
                self.said_unreachable = true;
                self.line(match port_state(peer) {
                    crate::net::addr::PortState::InUse => format!(
                        "!! {peer} refuses these probes (ICMP port unreachable), though a program holds that port: it takes datagrams from one peer only; probing on"
                    ),
                    _ => format!(
                        "!! nothing is listening at {peer} (ICMP port unreachable); probing on"
                    ),
                })
            }
            Format::Human => Ok(()),
        }
    }

    fn draw_progress(&mut self, last: bool) -> Result<(), Error> {
        if !self.progress {
            return Ok(());
        }
        if !last && self.last_progress.elapsed() < PROGRESS_EVERY {
            return Ok(());
        }
        self.last_progress = Instant::now();
        let r = &self.replies;
        let p50 = r
            .stats()
            .map_or_else(String::new, |s| format!(", p50 {}", fine(s.p50)));
        let line = format!(
            "\r\x1b[2Ksent {}, replies {}, lost {}{p50}{}",
            r.sent,
            r.on_time(),
            r.lost(),
            if last { "\n" } else { "" }
        );
        let mut err = std::io::stderr().lock();
        err.write_all(line.as_bytes())
            .and_then(|()| err.flush())
            .map_err(|source| Error::WriteOutput { source })
    }

    fn line(&mut self, line: String) -> Result<(), Error> {
        self.out
            .write_lines(&[line])
            .map_err(|source| Error::WriteOutput { source })
    }

    /// Replies are waited for by spinning (asked, and possible here).
    fn busy_poll(&self) -> bool {
        self.options.busy_poll && LOOKS_WITHOUT_WAITING
    }

    fn say_start(&mut self) -> Result<(), Error> {
        let o = self.options;
        let local = self.endpoint.local_addr();
        let line = match o.format {
            Format::Json => json(&PingWire::PingStart {
                local,
                to: o.to,
                size: self.size,
                interval_ms: ms(o.interval),
                timeout_ms: ms(o.timeout),
                busy_poll: self.busy_poll(),
            }),
            Format::Human => format!(
                "ping {} from {local}: {}-byte probes, {}, timeout {}{}",
                o.to,
                self.size,
                if o.interval.is_zero() {
                    "ping-pong (the next as soon as a reply or the timeout comes)".to_string()
                } else {
                    format!("one every {}", duration(o.interval))
                },
                duration(o.timeout),
                match (o.busy_poll, self.busy_poll()) {
                    (false, _) => "",
                    (true, true) => ", busy polling (a CPU spins)",
                    (true, false) => {
                        ", no busy polling here (a receive cannot look without waiting): blocking receives"
                    }
                }
            ),
        };
        self.line(line)
    }

    fn say_summary(&mut self, report: &PingReport) -> Result<(), Error> {
        let r = &report.replies;
        let loss = if r.sent == 0 {
            0.0
        } else {
            (r.lost() as f64 * 1000.0 / r.sent as f64).round() / 10.0
        };
        let lines = match self.options.format {
            Format::Json => vec![json(&PingWire::PingSummary {
                to: self.options.to,
                sent: r.sent,
                replies: r.on_time(),
                lost: r.lost(),
                loss_percent: loss,
                late: r.late,
                truncated: r.truncated,
                duplicates: r.duplicates,
                reordered: r.reordered,
                foreign: r.foreign,
                unreachable: report.unreachable,
                throttled: r.throttled().map(|t| WireThrottled {
                    stalls: t.stalls,
                    replies_between: t.replies_between,
                }),
                rtt: report.stats.as_ref().map(|s| WireStats {
                    min_ns: ns(s.min),
                    p50_ns: ns(s.p50),
                    p90_ns: ns(s.p90),
                    p99_ns: ns(s.p99),
                    p999_ns: ns(s.p999),
                    max_ns: ns(s.max),
                    mean_ns: ns(s.mean),
                    histogram: s
                        .histogram
                        .iter()
                        .map(|(from, to, count)| WireBucket {
                            from_ns: ns(*from),
                            to_ns: ns(*to),
                            count: *count,
                        })
                        .collect(),
                }),
            })],
            Format::Human => human_summary(self.options.to, report, loss),
        };
        self.out
            .write_lines(&lines)
            .map_err(|source| Error::WriteOutput { source })
    }
}

/// The summary for people: counts, percentiles, a histogram.
pub fn human_summary(to: SocketAddr, report: &PingReport, loss: f64) -> Vec<String> {
    let r = &report.replies;
    let mut counts = format!(
        "--- {to}: {} probe{} sent, {} repl{} on time, {} lost ({loss}%), {} late, {} duplicate{}, {} reordered",
        r.sent,
        plural(r.sent),
        r.on_time(),
        if r.on_time() == 1 { "y" } else { "ies" },
        r.lost(),
        r.late,
        r.duplicates,
        plural(r.duplicates),
        r.reordered,
    );
    if r.truncated > 0 {
        let _ = write!(
            counts,
            ", {} truncated (shorter than the probe: not timed)",
            r.truncated
        );
    }
    if r.foreign > 0 {
        let _ = write!(counts, ", {} not replies", r.foreign);
    }
    if report.unreachable > 0 {
        let _ = write!(counts, ", unreachable reports {}", report.unreachable);
    }
    let mut lines = vec![counts];
    if let Some(t) = r.throttled() {
        lines.push(format!(
            "note: the replies stopped {} times, each after about {} in a row: that looks like the echo server's rate limit, not loss on the way (dgram listen --echo answers a peer at most --echo-rate times a second, 1000 by default; --echo-rate 0 lifts it)",
            t.stalls, t.replies_between
        ));
    }
    let Some(s) = &report.stats else {
        return lines;
    };
    lines.push(format!(
        "round trip: min {}, p50 {}, p90 {}, p99 {}, p99.9 {}, max {}, mean {}",
        fine(s.min),
        fine(s.p50),
        fine(s.p90),
        fine(s.p99),
        fine(s.p999),
        fine(s.max),
        fine(s.mean)
    ));
    let most = s
        .histogram
        .iter()
        .map(|(_, _, n)| *n)
        .max()
        .unwrap_or(1)
        .max(1);
    for (from, to, n) in &s.histogram {
        let bar = (n * BAR).div_ceil(most) as usize;
        lines.push(format!(
            "  {:>9} to {:>9}  {:<width$}  {n}",
            fine(*from),
            fine(*to),
            "#".repeat(bar),
            width = BAR as usize
        ));
    }
    lines
}
