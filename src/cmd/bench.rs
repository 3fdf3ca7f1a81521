//! `dgram bench`: throughput and loss between a sender and a receiver,
//! every datagram accounted for.
//!
//! Two ends: `dgram bench --serve ADDR` receives, `dgram bench ADDR` sends
//! (`--loopback` runs both in one process). As iperf3 does, the ends talk
//! over a TCP control connection to the same address as the data (JSON
//! lines: hello and ready, live counts every second, done and the
//! report), so that nothing but data crosses the UDP socket and the
//! receiver's kernel drop counter counts data alone.
//!
//! The data are bench datagrams ([`crate::model::bench`]): run id and
//! sequence number. The receiver tells new, reordered and duplicated ones
//! apart; its report comes only once its socket has nothing more queued,
//! so every datagram sent is received, dropped by its kernel, or lost
//! elsewhere, and the three add up to what was sent.
//!
//! With `--gso` the sender hands the kernel up to 64 datagrams per call
//! (`UDP_SEGMENT`) and the receiver takes them coalesced (`UDP_GRO`),
//! splitting them back at the segment size the kernel reports; the
//! sequence numbers prove every boundary survived. Both are Linux only and
//! fall back, with a notice, to one datagram per call.
//!
//! # Threads, and why not the runtime's receiver
//!
//! Bench stops as every command does: a [`Shutdown`] channel for signals,
//! stop channels that disconnect for its own threads, and receives with a
//! bounded read timeout. Failed receives and sends are sorted by
//! [`sorting`](crate::runtime::sorting), as in every other loop. But its
//! receive loop is its own, not [`crate::runtime::receiver`]'s: that one
//! hands each datagram to a handler that emits an event (a copy of the
//! payload sent over a channel to the display), which costs more than the
//! `recvmsg` itself and would cap what bench measures well below what the
//! kernel delivers. Bench's loop counts each datagram where it lands (a
//! header read and a bit set) and reports only counts: a request from the
//! control thread is looked at every `RECEIVER_CHECK` datagrams, or
//! whenever the socket goes idle. Likewise the sender publishes its counts
//! through atomics every `SENDER_CHECK` sends rather than an event per
//! send.

use std::io::{self, BufRead, BufReader, IsTerminal, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::{
    Receiver, RecvTimeoutError, Sender, TryRecvError, bounded, never, select, tick, unbounded,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::options::{self, BufferArgs, PcapArgs};
use super::parse;
use crate::Error;
use crate::model::bench::{
    BenchReport, HEADER, LOST_ELSEWHERE_UNKNOWN, ReceiverCounts, SenderCounts, Sequence, per_sec,
    read_header, write_header,
};
use crate::model::pacing::{PacingReport, Schedule};
use crate::net::addr::any_port_for;
use crate::net::capture::Capture;
use crate::net::sys::Scratch;
use crate::net::{Buffers, Endpoint, SocketOptions};
use crate::output::render::{duration, pacing_line};
use crate::output::sink::MemorySink;
use crate::output::{Format, Sink, sink};
use crate::runtime::entropy::seed;
use crate::runtime::pacing::wait_until;
use crate::runtime::sorting::{Sorted, sort};
use crate::runtime::{Shutdown, Signal};

/// The control protocol's version, in every hello.
const CONTROL_VERSION: u32 = 1;

/// How long either end waits for an answer on the control connection.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits for the control connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The most payload bytes handed to the kernel in one GSO call, and the
/// most segments (the kernel's `UDP_MAX_SEGMENTS` is 64 on older kernels).
const GSO_BYTES: usize = 65_000;
const GSO_MAX_SEGMENTS: usize = 64;

/// How often the sender publishes its counts and looks at the clock (in
/// send calls).
const SENDER_CHECK: u64 = 64;

/// How often the receiver looks for control requests while datagrams keep
/// coming (in receive calls).
const RECEIVER_CHECK: u32 = 1024;

/// How long the server's receive waits before it looks for requests and
/// stop requests: the delay of a control answer while no data comes.
const SERVER_WAIT: Duration = Duration::from_millis(20);

/// How often the control thread looks for a new client (the listener is
/// non-blocking; the wait ends at once when the server stops).
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// How long a control session's read waits before it looks whether the
/// server stops.
const SESSION_POLL: Duration = Duration::from_millis(100);

/// A message on the control connection (one JSON object per line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    /// Client: a run begins.
    Hello {
        version: u32,
        run: u64,
        size: usize,
        segments: u16,
        gro: bool,
    },
    /// Server: ready to count the run.
    Ready { rcvbuf: usize, gro: bool },
    /// Client: the counts so far, please.
    Stats,
    /// Server: the counts so far.
    Counts { receiver: ReceiverCounts },
    /// Client: every datagram of the run has been sent.
    Done { sender: SenderCounts },
    /// Server: the run's final counts (once nothing more is queued).
    BenchReport { receiver: ReceiverCounts },
}

/// One end of a control connection.
struct ControlConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl ControlConn {
    fn new(stream: TcpStream) -> io::Result<ControlConn> {
        stream.set_nodelay(true)?;
        Ok(ControlConn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn send(&mut self, message: &Control) -> io::Result<()> {
        let mut line = serde_json::to_string(message).map_err(io::Error::other)?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())
    }

    /// The next message; `None` when the other end closed the connection.
    fn recv(&mut self) -> io::Result<Option<Control>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The next message, which must come.
    fn expect(&mut self) -> io::Result<Control> {
        self.recv()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other end closed the control connection",
            )
        })
    }
}

/// The command line of `dgram bench`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("role").args(["addr", "loopback"]).required(true))]
pub struct BenchArgs {
    /// The bench server to send to (IP:PORT, HOST:PORT); with --serve, the
    /// address to receive on (port 0: the system chooses and says which).
    #[arg(value_name = "ADDR", value_parser = parse::socket_addr)]
    addr: Option<SocketAddr>,
    /// Be the receiving end: count every run sent here, until Ctrl-C. Data
    /// comes over UDP, the control connection over TCP on the same port.
    #[arg(long, requires = "addr", conflicts_with_all = ["loopback", "size", "duration", "rate", "gso", "bind"])]
    serve: bool,
    /// Run a server on 127.0.0.1 in this process and bench against it
    /// (--rcvbuf is the server's, --sndbuf the sender's).
    #[arg(long)]
    loopback: bool,
    /// Datagram size in bytes (20 to 65507; the first 20 carry the run and
    /// the datagram's number).
    #[arg(long, short = 's', value_name = "N", default_value = "64", value_parser = parse::payload_size)]
    size: usize,
    /// Seconds to send for (fractions allowed).
    #[arg(long, short = 't', value_name = "SECS", default_value_t = 3.0, value_parser = parse::seconds)]
    duration: f64,
    /// Datagrams per second (k and M suffixes: 10k, 1.5M); default: as fast
    /// as the kernel takes them. Paced on a schedule (datagram i due i/N
    /// seconds after the first; one try each, rate × duration in all), and
    /// the report says how far the sends deviated from it (p50, p99, max)
    /// and how many fell more than one interval behind: those move the
    /// schedule back rather than go out in a burst, so a run can take up
    /// to twice the duration. Not with --gso, which hands the kernel 64
    /// datagrams at once: they would leave back to back, a burst.
    #[arg(long, short = 'r', value_name = "N", value_parser = parse::rate, conflicts_with = "gso")]
    rate: Option<u64>,
    /// Hand the kernel up to 64 datagrams per send (UDP_SEGMENT) and let
    /// the server take them coalesced (UDP_GRO), split back at their
    /// boundaries. Linux only; elsewhere one datagram per call, with a note.
    #[arg(long)]
    gso: bool,
    /// Local address to send from (default: any address of ADDR's family).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// One JSON object per line: start, every second, the report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    buffers: BufferArgs,
    #[command(flatten)]
    pcap: PcapArgs,
}

/// `dgram bench` as the command line asks for it: a server (`--serve`),
/// a client, or both (`--loopback`), on stdout.
pub fn main(args: BenchArgs) -> Result<(), Error> {
    let shutdown = Shutdown::from_signals()?;
    let mut out = sink::stdout();
    if args.serve {
        return serve(&ServeOptions::from_args(&args), &shutdown, &mut out);
    }
    let options = BenchOptions::from_args(&args)?;
    if args.loopback {
        loopback(&options, args.loopback_server(), &shutdown, &mut out).map(|_| ())
    } else {
        run(&options, &shutdown, &mut out).map(|_| ())
    }
}

impl BenchArgs {
    /// The socket of `--loopback`'s server: 127.0.0.1, a port the system
    /// chooses, `--rcvbuf`.
    fn loopback_server(&self) -> SocketOptions {
        SocketOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            rcvbuf: self.buffers.rcvbuf,
            sndbuf: None,
        }
    }
}

impl ServeOptions {
    /// The options of `dgram bench --serve ADDR`.
    pub fn from_args(args: &BenchArgs) -> Self {
        let addr = args.addr.expect("clap requires ADDR with --serve");
        ServeOptions {
            socket: args.buffers.socket(addr),
            format: Format::json(args.json),
            pcap: args.pcap.pcap.clone(),
        }
    }
}

impl BenchOptions {
    /// The options of the sending end, checked: a datagram holds at least
    /// its run and number. The socket takes `--sndbuf` only (with
    /// `--loopback`, `--rcvbuf` is the server's).
    pub fn from_args(args: &BenchArgs) -> Result<Self, Error> {
        if args.size < MIN_SIZE {
            return Err(Error::Usage {
                message: format!(
                    "invalid value '{}' for --size: a bench datagram is at least {} bytes (its run and number)",
                    args.size, MIN_SIZE
                ),
            });
        }
        let to = args
            .addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let bind = args.bind.unwrap_or_else(|| any_port_for(&to));
        Ok(BenchOptions {
            socket: SocketOptions {
                bind,
                rcvbuf: None,
                sndbuf: args.buffers.sndbuf,
            },
            to,
            size: args.size,
            duration: Duration::from_secs_f64(args.duration),
            rate: args.rate,
            gso: args.gso,
            format: Format::json(args.json),
            pcap: args.pcap.pcap.clone(),
        })
    }
}

/// What `dgram bench --serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to receive on (UDP data, TCP control) and its buffers.
    pub socket: SocketOptions,
    /// Human lines or JSON lines.
    pub format: Format,
    /// `--pcap`: where every datagram received is recorded.
    pub pcap: Option<PathBuf>,
}

/// What `dgram bench ADDR` was asked to do.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The local address and buffers of the sending socket.
    pub socket: SocketOptions,
    /// The bench server.
    pub to: SocketAddr,
    /// Datagram size (at least [`HEADER`]).
    pub size: usize,
    /// How long to send.
    pub duration: Duration,
    /// Datagrams per second; `None`: as fast as the kernel takes them.
    pub rate: Option<u64>,
    /// Segmentation and receive offload (`UDP_SEGMENT`, `UDP_GRO`).
    pub gso: bool,
    /// Human lines or JSON lines.
    pub format: Format,
    /// `--pcap`: where every datagram sent (and with `--loopback`, every
    /// one the server received) is recorded.
    pub pcap: Option<PathBuf>,
}

/// A request from the control thread to the server's receive loop.
enum Request {
    Start {
        run: u64,
        size: usize,
        segments: u16,
        gro: bool,
        from: SocketAddr,
        reply: Sender<Control>,
    },
    Stats {
        reply: Sender<Control>,
    },
    Finish {
        sender: SenderCounts,
        reply: Sender<Control>,
    },
    /// The client went away before its report.
    Abandon,
}

/// A bench server: its UDP socket and its TCP control listener, bound.
pub struct Server {
    endpoint: Endpoint,
    buffers: Buffers,
    listener: TcpListener,
    format: Format,
}

impl Server {
    /// Binds the data socket, then the control port of the same address.
    pub fn open(options: &ServeOptions) -> Result<Server, Error> {
        let (endpoint, buffers) = Endpoint::open(&options.socket)?;
        let addr = endpoint.local_addr();
        let listener =
            TcpListener::bind(addr).map_err(|source| Error::BindControl { addr, source })?;
        endpoint
            .set_read_timeout(SERVER_WAIT)
            .map_err(|source| Error::SetOption {
                option: "SO_RCVTIMEO",
                source,
            })?;
        Ok(Server {
            endpoint,
            buffers,
            listener,
            format: options.format,
        })
    }

    /// Records every datagram the server receives in `capture`.
    pub fn capture_to(&self, capture: Option<Arc<Capture>>) {
        self.endpoint.capture_to(capture);
    }

    /// The address the server receives on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    /// Serves runs, one client at a time, until `shutdown` asks.
    pub fn run(self, shutdown: &Shutdown, out: &mut dyn Sink) -> Result<(), Error> {
        let local = self.local_addr();
        emit(
            out,
            self.format,
            &format!(
                "bench server on {local} (UDP data, TCP control); SO_RCVBUF {} bytes",
                self.buffers.rcvbuf.effective
            ),
            &serde_json::json!({
                "event": "bench_listening",
                "local": local,
                "rcvbuf": self.buffers.rcvbuf.effective,
            }),
        )?;
        let (requests_tx, requests) = unbounded();
        // Dropped (disconnected) when the serve loop ends: the control
        // thread and its session stop at once.
        let (stop_tx, stop) = bounded::<()>(0);
        let control = spawn_control(self.listener, requests_tx, stop)?;
        let mut server = ServerLoop {
            endpoint: self.endpoint,
            format: self.format,
            run: None,
            finish: None,
        };
        let result = server.serve(shutdown, &requests, out);
        drop(stop_tx);
        let _ = control.join();
        result
    }
}

/// Accepts control connections (one at a time) until `stop` disconnects.
fn spawn_control(
    listener: TcpListener,
    requests: Sender<Request>,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>, Error> {
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::SetOption {
            option: "O_NONBLOCK",
            source,
        })?;
    thread::Builder::new()
        .name("dgram-bench-control".into())
        .spawn(move || {
            while !stopped(&stop) {
                match listener.accept() {
                    Ok((stream, from)) => {
                        // A client that misbehaves ends its own session only.
                        let _ = serve_client(stream, from, &requests, &stop);
                        let _ = requests.send(Request::Abandon);
                    }
                    Err(_) => {
                        if !matches!(
                            stop.recv_timeout(ACCEPT_POLL),
                            Err(RecvTimeoutError::Timeout)
                        ) {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(|source| Error::SpawnThread {
            name: "bench-control",
            source,
        })
}

/// True once `stop` has disconnected (or said so).
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(TryRecvError::Empty))
}

/// One client's control session: each request goes to the receive loop,
/// each answer back to the client; it ends within [`SESSION_POLL`] of
/// `stop` disconnecting.
fn serve_client(
    stream: TcpStream,
    from: SocketAddr,
    requests: &Sender<Request>,
    stop: &Receiver<()>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SESSION_POLL))?;
    let mut conn = ControlConn::new(stream)?;
    loop {
        let message = match conn.recv() {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stopped(stop) {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let (reply, answer) = bounded(1);
        let request = match message {
            Control::Hello {
                version,
                run,
                size,
                segments,
                gro,
            } => {
                if version != CONTROL_VERSION {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("control protocol version {version}, not {CONTROL_VERSION}"),
                    ));
                }
                Request::Start {
                    run,
                    size,
                    segments,
                    gro,
                    from,
                    reply,
                }
            }
            Control::Stats => Request::Stats { reply },
            Control::Done { sender } => Request::Finish { sender, reply },
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected {other:?} from a client"),
                ));
            }
        };
        if requests.send(request).is_err() {
            return Ok(());
        }
        // The serve loop may have ended (SIGTERM): then no answer comes,
        // and the session ends with it rather than after the timeout.
        select! {
            recv(answer) -> answer => match answer {
                Ok(answer) => conn.send(&answer)?,
                Err(_) => return Ok(()),
            },
            recv(stop) -> _ => return Ok(()),
            default(CONTROL_TIMEOUT) => return Ok(()),
        }
    }
}

/// The run being counted.
struct Counting {
    id: u64,
    size: usize,
    segments: u16,
    gro: bool,
    from: SocketAddr,
    sequence: Sequence,
    counts: ReceiverCounts,
    /// The socket's drop counter when the run began.
    drops_at_start: Option<u32>,
    first: Option<Instant>,
    last: Instant,
}

impl Counting {
    /// The counts, with the drops and the active time as they stand.
    fn counts(&self, endpoint: &Endpoint) -> ReceiverCounts {
        let mut counts = self.counts;
        if let (Some(start), Some(now)) = (self.drops_at_start, endpoint.kernel_drops()) {
            counts.kernel_dropped = u64::from(now.wrapping_sub(start));
            counts.drops_counted = true;
        }
        if let Some(first) = self.first {
            counts.active_us = self.last.duration_since(first).as_micros() as u64;
        }
        counts
    }

    /// Counts one datagram (or one segment of a coalesced receive).
    fn record(&mut self, datagram: &[u8], truncated: bool) {
        match read_header(datagram) {
            Some((run, seq)) if run == self.id => {
                let arrival = self.sequence.record(seq);
                self.counts.record(arrival, datagram.len(), truncated);
            }
            _ => self.counts.foreign += 1,
        }
    }
}

/// The server's receive loop and what it counts.
struct ServerLoop {
    endpoint: Endpoint,
    format: Format,
    run: Option<Counting>,
    /// A report asked for, sent once the socket has nothing more queued.
    finish: Option<(SenderCounts, Sender<Control>)>,
}

impl ServerLoop {
    fn serve(
        &mut self,
        shutdown: &Shutdown,
        requests: &Receiver<Request>,
        out: &mut dyn Sink,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; 65_535];
        let mut scratch = Scratch::default();
        let mut wait = false;
        let mut since_look = 0u32;
        loop {
            if wait || since_look >= RECEIVER_CHECK {
                since_look = 0;
                if let Ok(signal) = shutdown.requests().try_recv() {
                    // A run under way ends here: its line is closed.
                    if let Some(run) = self.run.take() {
                        self.abandoned(&run, RunEnd::Stopped(signal), out)?;
                    }
                    return Ok(());
                }
                for request in requests.try_iter() {
                    self.on_request(request, out)?;
                }
            }
            let got = if wait {
                self.endpoint.recv(&mut buf, &mut scratch)
            } else {
                self.endpoint.try_recv(&mut buf, &mut scratch)
            };
            match got {
                Ok(got) => {
                    wait = false;
                    since_look += 1;
                    let Some(run) = &mut self.run else {
                        continue;
                    };
                    let now = Instant::now();
                    run.first.get_or_insert(now);
                    run.last = now;
                    run.counts.calls += 1;
                    let data = &buf[..got.len];
                    match got.segment {
                        Some(segment) if data.len() > segment => {
                            for one in data.chunks(segment) {
                                run.record(one, false);
                            }
                        }
                        _ => run.record(data, got.truncated),
                    }
                }
                Err(e) => match sort(e, &self.endpoint) {
                    Sorted::Idle => {
                        // Nothing more queued (certain after a wait; after
                        // a look only where the platform can look without
                        // waiting): a report asked for can be made now.
                        if (wait || crate::net::sys::LOOKS_WITHOUT_WAITING)
                            && let Some((sender, reply)) = self.finish.take()
                        {
                            self.finish_run(sender, &reply, out)?;
                        }
                        wait = true;
                    }
                    Sorted::Retry => {}
                    // The server sends no data: a report about a peer is
                    // not about a run.
                    Sorted::Peers(_) => {}
                    Sorted::Failed(source) => {
                        return Err(Error::Receive {
                            local: self.endpoint.local_addr(),
                            source,
                        });
                    }
                },
            }
        }
    }

    fn on_request(&mut self, request: Request, out: &mut dyn Sink) -> Result<(), Error> {
        match request {
            Request::Start {
                run,
                size,
                segments,
                gro,
                from,
                reply,
            } => {
                if let Some(old) = self.run.take() {
                    self.abandoned(&old, RunEnd::NoReport, out)?;
                }
                let gro = gro && self.endpoint.set_gro(true).is_ok();
                let drops_at_start = self.endpoint.kernel_drops();
                self.run = Some(Counting {
                    id: run,
                    size,
                    segments,
                    gro,
                    from,
                    sequence: Sequence::default(),
                    counts: ReceiverCounts::default(),
                    drops_at_start,
                    first: None,
                    last: Instant::now(),
                });
                let rcvbuf = self
                    .endpoint
                    .recv_buffer(None)
                    .map(|b| b.effective)
                    .unwrap_or(0);
                let _ = reply.send(Control::Ready { rcvbuf, gro });
                emit(
                    out,
                    self.format,
                    &format!(
                        "run from {from}: {size} B datagrams{}",
                        if gro { ", GRO on" } else { "" }
                    ),
                    &serde_json::json!({
                        "event": "run_start",
                        "from": from,
                        "run": format!("{run:016x}"),
                        "size": size,
                        "segments": segments,
                        "gro": gro,
                    }),
                )?;
            }
            Request::Stats { reply } => {
                let receiver = self
                    .run
                    .as_ref()
                    .map(|run| run.counts(&self.endpoint))
                    .unwrap_or_default();
                let _ = reply.send(Control::Counts { receiver });
            }
            Request::Finish { sender, reply } => self.finish = Some((sender, reply)),
            Request::Abandon => {
                self.finish = None;
                if let Some(old) = self.run.take() {
                    self.abandoned(&old, RunEnd::NoReport, out)?;
                }
            }
        }
        Ok(())
    }

    fn finish_run(
        &mut self,
        sender: SenderCounts,
        reply: &Sender<Control>,
        out: &mut dyn Sink,
    ) -> Result<(), Error> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let receiver = run.counts(&self.endpoint);
        let _ = reply.send(Control::BenchReport { receiver });
        if run.gro {
            let _ = self.endpoint.set_gro(false);
        }
        let report = BenchReport::new(run.size, run.segments, run.gro, sender, receiver);
        // The run's line ("run from …") came at its start: the report
        // closes it.
        write_report(out, self.format, "report", &report)
    }

    /// Closes the line of a run that ends without its report.
    fn abandoned(&self, run: &Counting, ended: RunEnd, out: &mut dyn Sink) -> Result<(), Error> {
        if run.gro {
            let _ = self.endpoint.set_gro(false);
        }
        let counts = run.counts(&self.endpoint);
        let (why, reason, signal) = match ended {
            RunEnd::NoReport => (
                "ended without a report (the client went away)".to_string(),
                "no_report",
                None,
            ),
            RunEnd::Stopped(signal) => (
                format!(
                    "cut short: the server was stopped ({})",
                    signal_name(signal)
                ),
                "server_stopped",
                Some(signal_name(signal)),
            ),
        };
        emit(
            out,
            self.format,
            &format!(
                "  {why}: {} received, {} dropped by the kernel",
                count(counts.received),
                count(counts.kernel_dropped)
            ),
            &serde_json::json!({
                "event": "run_abandoned",
                "from": run.from,
                "reason": reason,
                "signal": signal,
                "receiver": counts,
            }),
        )
    }
}

/// How a run ended without its report.
#[derive(Debug, Clone, Copy)]
enum RunEnd {
    /// The client went away (or began another run) before asking for it.
    NoReport,
    /// The server was stopped by a signal.
    Stopped(Signal),
}

/// A signal as people know it.
fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Interrupt => "Ctrl-C",
        Signal::Terminate => "SIGTERM",
        Signal::Hangup => "SIGHUP",
    }
}

/// `dgram bench --serve`: serves until Ctrl-C.
pub fn serve(options: &ServeOptions, shutdown: &Shutdown, out: &mut dyn Sink) -> Result<(), Error> {
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = Server::open(options).and_then(|server| {
        server.capture_to(capture.clone());
        server.run(shutdown, out)
    });
    options::finish_capture(capture.as_ref(), result)
}

/// `dgram bench --loopback`: a server on 127.0.0.1 (port chosen by the
/// system, with `server_socket`'s buffers) in this process, and a run
/// against it; only the client's lines are shown. Both ends record into
/// one `--pcap` file: each datagram as sent, and again as received.
pub fn loopback(
    options: &BenchOptions,
    server_socket: SocketOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<BenchReport, Error> {
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = loopback_with(options, server_socket, capture.clone(), shutdown, out);
    options::finish_capture(capture.as_ref(), result)
}

/// [`loopback`] with the capture open.
fn loopback_with(
    options: &BenchOptions,
    server_socket: SocketOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<BenchReport, Error> {
    let server = Server::open(&ServeOptions {
        socket: server_socket,
        format: Format::Json,
        pcap: None,
    })?;
    server.capture_to(capture.clone());
    let to = server.local_addr();
    let (stop_server, server_shutdown) = Shutdown::manual();
    let handle = thread::Builder::new()
        .name("dgram-bench-server".into())
        .spawn(move || server.run(&server_shutdown, &mut None::<MemorySink>))
        .map_err(|source| Error::SpawnThread {
            name: "bench-server",
            source,
        })?;
    let options = BenchOptions {
        to,
        ..options.clone()
    };
    let result = run_with(&options, capture, shutdown, out);
    stop_server.send(crate::runtime::Signal::Terminate);
    let served = handle.join().unwrap_or(Err(Error::ThreadPanicked {
        name: "bench-server",
    }));
    match (result, served) {
        (Ok(report), Ok(())) => Ok(report),
        // The server failed (it could not start a thread, say): the
        // client's failure (its control connection reset) is only the
        // consequence, and blaming the server's address would mislead.
        (_, Err(server)) => Err(server),
        (Err(client), Ok(())) => Err(client),
    }
}

/// What the sending thread shares with the display: counts it publishes
/// every [`SENDER_CHECK`] sends (atomics, not a message per send).
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    bytes: AtomicU64,
    not_sent: AtomicU64,
    /// How a paced sender kept its schedule, once it is done.
    pacing: std::sync::Mutex<Option<PacingReport>>,
}

/// `dgram bench ADDR`: one run against a bench server; returns its report
/// (already shown).
pub fn run(
    options: &BenchOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<BenchReport, Error> {
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = run_with(options, capture.clone(), shutdown, out);
    options::finish_capture(capture.as_ref(), result)
}

/// [`run`] with the capture open.
fn run_with(
    options: &BenchOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<BenchReport, Error> {
    let to = options.to;
    let control_error = |source: io::Error| Error::BenchControl {
        to,
        source: timeout_in_words(source),
    };
    let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
        .map_err(|source| Error::ConnectBench { to, source })?;
    stream
        .set_read_timeout(Some(CONTROL_TIMEOUT))
        .map_err(control_error)?;
    let mut conn = ControlConn::new(stream).map_err(control_error)?;

    let (endpoint, buffers) = Endpoint::open(&options.socket)?;
    endpoint.capture_to(capture);
    endpoint
        .connect(to)
        .map_err(|source| Error::Send { to, len: 0, source })?;
    let mut segments = if options.gso {
        (GSO_BYTES / options.size).clamp(1, GSO_MAX_SEGMENTS)
    } else {
        1
    };
    let mut notices = Vec::new();
    if segments > 1
        && let Err(e) = endpoint.check_gso(options.size as u16)
    {
        notices.push(format!(
            "GSO is not available here ({e}): one datagram per call"
        ));
        segments = 1;
    }
    if endpoint.capture().is_some() {
        notices.push(pcap_notice(options.size, options.rate, to.is_ipv6()));
    }
    let run_id = seed();
    conn.send(&Control::Hello {
        version: CONTROL_VERSION,
        run: run_id,
        size: options.size,
        segments: segments as u16,
        gro: segments > 1,
    })
    .map_err(control_error)?;
    // The first answer tells a bench server from another program that
    // took the TCP connection (a web server, nc -l).
    let ready = conn.expect().map_err(|source| match source.kind() {
        io::ErrorKind::InvalidData => Error::NotBenchServer {
            to,
            reason: "its answer to the hello is not the bench protocol".to_string(),
        },
        _ => control_error(source),
    })?;
    let (rcvbuf, gro) = match ready {
        Control::Ready { rcvbuf, gro } => (rcvbuf, gro),
        other => return Err(control_error(unexpected(&other))),
    };
    if segments > 1 && !gro {
        notices.push(
            "the server could not turn GRO on: it receives one datagram per call".to_string(),
        );
    }

    let pace = match options.rate {
        Some(rate) => format!("{} datagrams/s", count(rate)),
        None => "as fast as possible".to_string(),
    };
    let mut lines = vec![format!(
        "bench to {to}: {} B datagrams for {}, {pace}; SO_SNDBUF {} bytes, server SO_RCVBUF {rcvbuf} bytes{}",
        options.size,
        duration(options.duration),
        buffers.sndbuf.effective,
        if segments > 1 {
            format!(", GSO {segments} per call")
        } else {
            String::new()
        }
    )];
    lines.extend(notices.iter().map(|n| format!("note: {n}")));
    let start_json = serde_json::json!({
        "event": "bench_start",
        "to": to,
        "run": format!("{run_id:016x}"),
        "size": options.size,
        "duration_s": options.duration.as_secs_f64(),
        "rate": options.rate,
        "segments": segments,
        "gro": gro,
        "sndbuf": buffers.sndbuf.effective,
        "server_rcvbuf": rcvbuf,
        "notices": notices,
    });
    emit(out, options.format, &lines.join("\n"), &start_json)?;

    let progress = Arc::new(Progress::default());
    let mut sender = spawn_sender(
        endpoint,
        options.clone(),
        segments,
        run_id,
        Arc::clone(&progress),
    )?;
    let controller = spawn_controller(conn)?;
    let bar = progress_bar(options);
    let sender_counts = watch(
        options,
        shutdown,
        out,
        &progress,
        &mut sender,
        &controller,
        bar.as_ref(),
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    emit(
        out,
        options.format,
        &format!(
            "sent {} datagrams; waiting for the server's report",
            count(sender_counts.sent)
        ),
        &serde_json::json!({ "event": "bench_sent", "sender": sender_counts }),
    )?;
    let _ = controller.commands.send(Control::Done {
        sender: sender_counts,
    });
    let receiver = loop {
        match controller.answers.recv() {
            Ok(Ok(Control::BenchReport { receiver })) => break receiver,
            // The answer to a last look at the counts, asked for before
            // the sender ended.
            Ok(Ok(Control::Counts { .. })) => {}
            Ok(Ok(other)) => return Err(control_error(unexpected(&other))),
            Ok(Err(source)) => return Err(control_error(source)),
            Err(_) => return Err(control_error(io::ErrorKind::UnexpectedEof.into())),
        }
    };
    let mut report = BenchReport::new(options.size, segments as u16, gro, sender_counts, receiver);
    report.pacing = *progress.pacing.lock().unwrap_or_else(|e| e.into_inner());
    write_report(out, options.format, &format!("bench to {to}"), &report)?;
    Ok(report)
}

/// A control read that timed out says so in words (the socket reports
/// EAGAIN, "Resource temporarily unavailable", for a read timeout).
fn timeout_in_words(source: io::Error) -> io::Error {
    match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no answer within {} s (a stopped server, or a program that is not a dgram bench server)",
                CONTROL_TIMEOUT.as_secs()
            ),
        ),
        _ => source,
    }
}

fn unexpected(message: &Control) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected answer from the server: {message:?}"),
    )
}

/// The sending thread and its result.
struct SenderThread {
    done: Receiver<Result<SenderCounts, Error>>,
    /// Dropped (the channel disconnects) to stop the sender before its
    /// time.
    stop: Option<Sender<()>>,
}

fn spawn_sender(
    endpoint: Endpoint,
    options: BenchOptions,
    segments: usize,
    run: u64,
    progress: Arc<Progress>,
) -> Result<SenderThread, Error> {
    let (tx, done) = bounded(1);
    let (stop_tx, stop) = bounded::<()>(0);
    thread::Builder::new()
        .name("dgram-bench-sender".into())
        .spawn(move || {
            let _ = tx.send(send_run(
                &endpoint, &options, segments, run, &progress, &stop,
            ));
        })
        .map_err(|source| Error::SpawnThread {
            name: "bench-sender",
            source,
        })?;
    Ok(SenderThread {
        done,
        stop: Some(stop_tx),
    })
}

/// Sends the run's datagrams for the duration (or until `stop`
/// disconnects), paced when a rate is set, `segments` per call.
fn send_run(
    endpoint: &Endpoint,
    options: &BenchOptions,
    segments: usize,
    run: u64,
    progress: &Progress,
    stop: &Receiver<()>,
) -> Result<SenderCounts, Error> {
    let size = options.size;
    let mut buf = vec![b'.'; size * segments];
    let mut counts = SenderCounts {
        asked_us: u64::try_from(options.duration.as_micros()).unwrap_or(u64::MAX),
        ..SenderCounts::default()
    };
    let mut seq = 0u64;
    // The schedule's place: datagrams due so far, sent or not.
    let mut slot = 0u64;
    let start = Instant::now();
    let end = start + options.duration;
    // Paced: `rate × duration` datagrams, due at 0, 1/rate, 2/rate, … (the
    // one due at the very end is not the run's), each call due when its
    // first datagram is. A sender that falls behind moves the schedule
    // back (see `model::pacing`) and so takes longer than the duration,
    // but never more than twice as long: past that, the rate is beyond
    // what it can do, and the run ends as an unpaced one would.
    let mut schedule = options.rate.map(Schedule::new);
    let planned = options.rate.map(|rate| {
        let duration_ns = options.duration.as_nanos();
        // The datagrams due before the end: ⌈rate × duration⌉.
        (u128::from(rate) * duration_ns).div_ceil(1_000_000_000) as u64
    });
    let last_end = end + options.duration;
    loop {
        if counts.calls.is_multiple_of(SENDER_CHECK) {
            progress.sent.store(counts.sent, Ordering::Relaxed);
            progress.bytes.store(counts.bytes, Ordering::Relaxed);
            progress.not_sent.store(counts.not_sent, Ordering::Relaxed);
            let now = Instant::now();
            if now >= last_end || (schedule.is_none() && now >= end) {
                break;
            }
            if stopped(stop) {
                counts.cut_short = true;
                break;
            }
        }
        if let Some(schedule) = schedule.as_mut() {
            if planned.is_some_and(|planned| slot >= planned) {
                break;
            }
            let due = start + Duration::from_nanos(schedule.due_ns(slot));
            // A long gap (a slow rate) must not hold a stop up.
            if !wait_until(due, |ahead| {
                matches!(stop.recv_timeout(ahead), Err(RecvTimeoutError::Timeout))
            }) {
                counts.cut_short = true;
                break;
            }
            schedule.record(slot, start.elapsed().as_nanos() as u64);
            // Each due time gets one try: a datagram the kernel did not
            // take is counted not sent, and the next is due when it was.
            slot += segments as u64;
        }
        for (i, datagram) in buf.chunks_mut(size).enumerate() {
            write_header(datagram, run, seq + i as u64);
        }
        let sent = if segments > 1 {
            endpoint.send_segments(&buf, size as u16)
        } else {
            endpoint.send_connected(&buf)
        };
        counts.calls += 1;
        match sent {
            Ok(_) => {
                counts.sent += segments as u64;
                counts.bytes += (size * segments) as u64;
                seq += segments as u64;
            }
            // The device queue was full: not sent.
            Err(e) if e.raw_os_error() == Some(NO_BUFFERS) => {
                counts.not_sent += segments as u64;
            }
            Err(e) => match sort(e, endpoint) {
                Sorted::Retry => {}
                // No room in the socket's send queue: not sent.
                Sorted::Idle => counts.not_sent += segments as u64,
                // The server's port refused an earlier datagram: nothing
                // listens there now. The data goes on; the control
                // connection says whether the server is still there.
                Sorted::Peers(_) => counts.not_sent += segments as u64,
                Sorted::Failed(source) => {
                    return Err(Error::Send {
                        to: options.to,
                        len: size * segments,
                        source,
                    });
                }
            },
        }
    }
    // The loop looks at the clock every few calls and ends right after the
    // last send: its end is the last send's time.
    counts.active_us = start.elapsed().as_micros() as u64;
    progress.sent.store(counts.sent, Ordering::Relaxed);
    *progress.pacing.lock().unwrap_or_else(|e| e.into_inner()) = schedule.and_then(|s| s.report());
    Ok(counts)
}

/// `ENOBUFS`: the device queue was full (a datagram not sent).
#[cfg(unix)]
const NO_BUFFERS: i32 = nix::libc::ENOBUFS;
#[cfg(not(unix))]
const NO_BUFFERS: i32 = 105;

/// The thread that owns the control connection, so that a slow server
/// never holds the display up.
struct Controller {
    commands: Sender<Control>,
    answers: Receiver<io::Result<Control>>,
}

fn spawn_controller(mut conn: ControlConn) -> Result<Controller, Error> {
    let (commands, requests) = unbounded::<Control>();
    let (answer, answers) = unbounded();
    thread::Builder::new()
        .name("dgram-bench-control".into())
        .spawn(move || {
            for command in requests {
                let result = conn.send(&command).and_then(|()| conn.expect());
                let failed = result.is_err();
                if answer.send(result).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|source| Error::SpawnThread {
            name: "bench-control",
            source,
        })?;
    Ok(Controller { commands, answers })
}

/// A progress bar on standard error when it is a terminal (and the output
/// is for people).
fn progress_bar(options: &BenchOptions) -> Option<ProgressBar> {
    if options.format == Format::Json || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(
        Some(options.duration.as_millis() as u64),
        ProgressDrawTarget::stderr(),
    );
    let style = ProgressStyle::with_template("{bar:30} {elapsed:>3}/{duration}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Shows the counts of both ends every second until the sender is done
/// (or Ctrl-C stops it); returns the sender's counts.
fn watch(
    options: &BenchOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
    progress: &Progress,
    sender: &mut SenderThread,
    controller: &Controller,
    bar: Option<&ProgressBar>,
) -> Result<SenderCounts, Error> {
    let start = Instant::now();
    let ticks = tick(Duration::from_secs(1));
    let redraw = if bar.is_some() {
        tick(Duration::from_millis(100))
    } else {
        never()
    };
    let mut signals = shutdown.requests().clone();
    let mut asking = false;
    let mut before = (0u64, ReceiverCounts::default(), start);
    let mut latest = ReceiverCounts::default();
    loop {
        select! {
            recv(sender.done) -> result => {
                return result.unwrap_or(Err(Error::ThreadPanicked { name: "bench-sender" }));
            }
            recv(ticks) -> _ => {
                if !asking && controller.commands.send(Control::Stats).is_ok() {
                    asking = true;
                }
            }
            recv(controller.answers) -> answer => {
                asking = false;
                let receiver = match answer {
                    Ok(Ok(Control::Counts { receiver })) => receiver,
                    Ok(Ok(other)) => return Err(Error::BenchControl { to: options.to, source: unexpected(&other) }),
                    Ok(Err(source)) => return Err(Error::BenchControl { to: options.to, source }),
                    Err(_) => return Err(Error::BenchControl { to: options.to, source: io::ErrorKind::UnexpectedEof.into() }),
                };
                latest = receiver;
                let now = Instant::now();
                let sent = progress.sent.load(Ordering::Relaxed);
                let (sent_before, received_before, at_before) = before;
                let seconds = now.duration_since(at_before).as_secs_f64().max(1e-6);
                let interval = Interval {
                    t: now.duration_since(start).as_secs_f64(),
                    sent: sent - sent_before,
                    received: receiver.received - received_before.received,
                    kernel_dropped: receiver.kernel_dropped - received_before.kernel_dropped,
                    sent_per_sec: (sent - sent_before) as f64 / seconds,
                    received_per_sec: (receiver.received - received_before.received) as f64 / seconds,
                    received_mb_per_sec: (receiver.bytes - received_before.bytes) as f64 / seconds / 1e6,
                };
                before = (sent, receiver, now);
                let line = interval.line();
                match bar {
                    Some(bar) => bar.println(line),
                    None => emit(out, options.format, &line, &interval.json())?,
                }
            }
            recv(redraw) -> _ => {
                if let Some(bar) = bar {
                    bar.set_position(start.elapsed().as_millis() as u64);
                    bar.set_message(format!(
                        "sent {}  received {}  dropped {}",
                        count(progress.sent.load(Ordering::Relaxed)),
                        count(latest.received),
                        count(latest.kernel_dropped),
                    ));
                }
            }
            recv(signals) -> signal => {
                if signal.is_err() {
                    signals = never();
                }
                drop(sender.stop.take());
            }
        }
    }
}

/// One second of a run, as both ends counted it.
#[derive(Debug, Clone, Copy, Serialize)]
struct Interval {
    t: f64,
    sent: u64,
    received: u64,
    kernel_dropped: u64,
    sent_per_sec: f64,
    received_per_sec: f64,
    received_mb_per_sec: f64,
}

impl Interval {
    fn line(&self) -> String {
        format!(
            "{:>6.2} s  sent {:>10}/s  received {:>10}/s  {:>8.2} MB/s  dropped {}",
            self.t,
            count(self.sent_per_sec.round() as u64),
            count(self.received_per_sec.round() as u64),
            self.received_mb_per_sec,
            count(self.kernel_dropped),
        )
    }

    fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["event"] = "interval".into();
        value
    }
}

/// Writes the final accounting of a run.
fn write_report(
    out: &mut dyn Sink,
    format: Format,
    title: &str,
    report: &BenchReport,
) -> Result<(), Error> {
    let s = &report.sender;
    let r = &report.receiver;
    let mut lines = vec![
        format!(
            "{title}: {} B datagrams{}, sent for {}{}",
            report.size,
            offload(report),
            duration(Duration::from_micros(s.active_us)),
            if s.cut_short {
                format!(
                    " (cut short before the {} asked)",
                    duration(Duration::from_micros(s.asked_us))
                )
            } else {
                String::new()
            }
        ),
        format!(
            "  sent       {:>12}  {:>12}/s  {:>9.2} MB/s  ({} not sent: EAGAIN/ENOBUFS; {} send calls)",
            count(s.sent),
            count(report.sent_per_sec.round() as u64),
            per_sec(s.bytes, s.active_us) / 1e6,
            count(s.not_sent),
            count(s.calls),
        ),
        format!(
            "  received   {:>12}  {:>12}/s  {:>9.2} MB/s  ({} receive calls)",
            count(r.received),
            count(report.received_per_sec.round() as u64),
            report.received_mb_per_sec,
            count(r.calls),
        ),
        if !r.drops_counted {
            format!(
                "  dropped    {:>12}  by the receiver's kernel: not counted on this platform (inside \"lost elsewhere\")",
                "?"
            )
        } else {
            format!(
                "  dropped    {:>12}  by the receiver's kernel (SO_RCVBUF full{}){}{}",
                count(report.dropped),
                if r.kernel_dropped > 0 {
                    ": raise --rcvbuf on the server, or send slower with --rate"
                } else {
                    ""
                },
                if report.drop_unit > 1 {
                    format!(
                        "; {} coalesced buffers of {} datagrams",
                        count(r.kernel_dropped),
                        report.drop_unit
                    )
                } else {
                    String::new()
                },
                if report.lost_elsewhere.is_none() {
                    "; some may be foreign datagrams'"
                } else {
                    ""
                }
            )
        },
        match report.lost_elsewhere {
            Some(lost) => format!("  lost       {:>12}  elsewhere", count(lost)),
            None => format!(
                "  lost       {:>12}  elsewhere: {LOST_ELSEWHERE_UNKNOWN}",
                "?"
            ),
        },
        format!(
            "  reordered {}, duplicated {}, truncated {}, too old to tell {}, foreign {}",
            count(r.reordered),
            count(r.duplicates),
            count(r.truncated),
            count(r.too_old),
            count(r.foreign),
        ),
        match report.lost_elsewhere {
            Some(lost) => format!(
                "  accounting: sent {} = received {} + dropped {} + lost {}  ({:.3}% not received)",
                count(s.sent),
                count(r.received),
                if r.drops_counted {
                    count(report.dropped)
                } else {
                    "?".to_string()
                },
                count(lost),
                report.loss_percent,
            ),
            None => format!(
                "  accounting: sent {} = received {} + not received {}, dropped by the receiver's kernel or lost elsewhere in shares not known  ({:.3}% not received)",
                count(s.sent),
                count(r.received),
                count(report.not_received),
                report.loss_percent,
            ),
        },
    ];
    if let Some(pacing) = &report.pacing {
        lines.insert(2, format!("  {}", pacing_line(pacing)));
    }
    if format == Format::Json {
        lines.clear();
    }
    let mut value = serde_json::to_value(report).unwrap_or_default();
    value["event"] = "report".into();
    emit(out, format, &lines.join("\n"), &value)
}

fn offload(report: &BenchReport) -> String {
    match (report.gso_segments > 1, report.gro) {
        (false, false) => String::new(),
        (true, true) => format!(", GSO {} per call, GRO on", report.gso_segments),
        (true, false) => format!(", GSO {} per call, GRO off", report.gso_segments),
        (false, true) => ", GRO on".to_string(),
    }
}

/// Writes `human` (one or more lines) or the JSON `value` as one line.
fn emit(
    out: &mut dyn Sink,
    format: Format,
    human: &str,
    value: &serde_json::Value,
) -> Result<(), Error> {
    let lines: Vec<String> = match format {
        Format::Human => human.lines().map(str::to_owned).collect(),
        Format::Json => vec![value.to_string()],
    };
    out.write_lines(&lines)
        .map_err(|source| Error::WriteOutput { source })
}

/// What `--pcap` will cost on disk, said before a flood fills it: the
/// bytes per datagram (record header, IP and UDP headers and payload),
/// and per second at `--rate`.
fn pcap_notice(size: usize, rate: Option<u64>, ipv6: bool) -> String {
    let each = Capture::record_bytes(size, ipv6);
    let megabytes = |datagrams: f64| datagrams * each as f64 / 1e6;
    match rate {
        Some(rate) => format!(
            "--pcap records every datagram, {each} B each: at this rate about {:.1} MB/s for those sent",
            megabytes(rate as f64)
        ),
        None => format!(
            "--pcap records every datagram, {each} B each: {:.0} MB per million sent, as fast as the kernel takes them (--rate bounds it)",
            megabytes(1e6)
        ),
    }
}

/// `1234567` as `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The smallest bench datagram: its header.
pub const MIN_SIZE: usize = HEADER;

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands are separated for people.
    #[test]
    fn counts_read_with_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_536_000), "1,536,000");
    }
}
