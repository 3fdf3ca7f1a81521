//! `dgram send`: send one datagram (or one per line of input, or a repeated
//! one), listen a while for replies and ICMP errors, and say plainly when
//! nothing is listening at the destination.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::select;

use std::path::PathBuf;
use std::sync::Arc;

use super::chat::{self, ChatIo, ChatOptions};
use super::options::{self, BufferArgs, PcapArgs, load_key};
use super::parse;
use super::payload::{pattern, spawn_line_reader};
use crate::Error;
use crate::model::pacing::Schedule;
use crate::model::{Event, Security, Stats};
use crate::net::SocketOptions;
use crate::net::addr::{PortState, any_port_for, check_family, check_not_self};
use crate::net::capture::Capture;
use crate::net::limits::{check_payload, payload_limit};
use crate::output::render::{buffer_line, pacing_line, plural};
use crate::output::{Display, Format, Renderer, Shown, Sink, sink};
use crate::proto::code::Code;
use crate::proto::{ChatConfig, SessionId};
use crate::runtime::entropy;
use crate::runtime::pacing::wait_until;
use crate::runtime::{
    Job, JobControl, Outbox, Pipeline, Plan, Show, Shutdown, report, report_summary,
};

/// The command line of `dgram send`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("payload").args(["text", "empty", "size", "hex"]))]
pub struct SendArgs {
    /// Destination: IP:PORT, [IPv6]:PORT or HOST:PORT.
    #[arg(value_name = "ADDR", value_parser = parse::peer_addr)]
    addr: SocketAddr,
    /// Send this text as one datagram (its bytes as given, UTF-8 or not).
    /// Without TEXT (or --empty, --size, --hex) each line of stdin becomes
    /// one datagram.
    #[arg(value_name = "TEXT")]
    text: Option<OsString>,
    /// Send one empty datagram.
    #[arg(long)]
    empty: bool,
    /// Send an N-byte payload (a repeating 0123456789 pattern); at most
    /// 65507 over IPv4, 65527 over IPv6.
    #[arg(long, value_name = "N", value_parser = parse::payload_size)]
    size: Option<usize>,
    /// Send these raw bytes, written in hex: two digits per byte, as in
    /// 00ff10, 00:ff:10, 00-ff-10 or "00 ff 10" (spaces, ':' and '-'
    /// separate bytes).
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    hex: Option<HexBytes>,
    /// Send each datagram N times.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse::count::<u64>(1, parse::MAX_COUNT))]
    count: u64,
    /// Pace the datagrams at N per second (k and M suffixes: 10k, 1.5M):
    /// datagram i is due i/N seconds after the first, whatever the ones
    /// before it did, and the summary says how far the sends deviated
    /// from that schedule (p50, p99, max) and the rate achieved. A send
    /// more than one interval late goes out at once and is counted late;
    /// the schedule moves back instead of catching up in a burst. Paces
    /// every datagram: each --count repeat and each line of stdin (a line
    /// that comes after its due time counts late).
    #[arg(long, value_name = "N", value_parser = parse::rate)]
    rate: Option<u64>,
    /// Local address to send from (default: any address of ADDR's family,
    /// a port the system chooses).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// After the last datagram, listen this long (milliseconds) for replies
    /// and ICMP errors.
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = parse::millis(0, parse::MAX_WAIT_MS))]
    wait: u64,
    /// Replies and reports as JSON lines (with a "sent" event per datagram).
    #[arg(long)]
    json: bool,
    /// Open a secure session first (a handshake with the key file from
    /// dgram keygen as its pre-shared key), then send TEXT (or each line of
    /// stdin) as a chat message in it and wait for its receipt.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["empty", "size", "hex", "count", "rate", "code"])]
    key_file: Option<PathBuf>,
    /// Like --key-file, with a short code the other side was given
    /// (SPAKE2): one guess per run.
    #[arg(long, value_name = "CODE", value_parser = Code::parse, conflicts_with_all = ["empty", "size", "hex", "count", "rate"])]
    code: Option<Code>,
    #[command(flatten)]
    buffers: BufferArgs,
    #[command(flatten)]
    pcap: PcapArgs,
}

/// Raw bytes from `--hex` (a newtype, so that clap takes one value).
#[derive(Debug, Clone)]
struct HexBytes(Vec<u8>);

fn parse_hex(text: &str) -> Result<HexBytes, String> {
    parse::hex(text).map(HexBytes)
}

/// `dgram send` as the command line asks for it: replies on stdout, the
/// closing line on stderr; stdin's lines when no payload is given.
pub fn main(args: SendArgs) -> Result<(), Error> {
    if args.key_file.is_some() || args.code.is_some() {
        return secure(args).map(|_| ());
    }
    let options = SendOptions::from_args(args);
    let shutdown = Shutdown::from_signals()?;
    run(options, &shutdown, &mut sink::stdout(), &mut sink::stderr()).map(|_| ())
}

/// `send --key-file`/`--code`: a chat of one message (or one per line of
/// stdin) in a secure session, from a pipe: the handshake, the messages,
/// their receipts (up to all their tries), then the summary; it fails when
/// a message was not delivered.
fn secure(args: SendArgs) -> Result<crate::model::Summary, Error> {
    let key = args.key_file.as_deref().map(load_key).transpose()?;
    let input: Box<dyn BufRead + Send> = match args.text {
        Some(text) => {
            let mut line = os_bytes(text);
            line.push(b'\n');
            Box::new(io::Cursor::new(line))
        }
        None => Box::new(BufReader::new(io::stdin())),
    };
    let bind = args.bind.unwrap_or_else(|| any_port_for(&args.addr));
    let options = ChatOptions {
        socket: args.buffers.socket(bind),
        peer: Some(args.addr),
        max_size: args.buffers.max_size,
        format: Format::json(args.json),
        history: None,
        linger: Duration::from_millis(args.wait),
        protocol: ChatConfig {
            key,
            code: args.code.as_ref().map(Code::password),
            announce_kinds: true,
            ..ChatConfig::receiver(SessionId::from_random(entropy::seed()))
        },
        plain_peer: false,
        code: args.code.map(|code| (code, false)),
        log: None,
        group: None,
        via: None,
        passive: false,
        pcap: args.pcap.pcap,
    };
    let shutdown = Shutdown::from_signals()?;
    chat::run(
        &options,
        &shutdown,
        ChatIo::Streams {
            input,
            typed: false,
            out: Box::new(sink::stdout()),
            err: Box::new(sink::stderr()),
        },
    )
}

/// The bytes of an argument as the shell gave them (on Unix, any bytes;
/// elsewhere, its text).
fn os_bytes(text: OsString) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        text.into_vec()
    }
    #[cfg(not(unix))]
    {
        text.to_string_lossy().into_owned().into_bytes()
    }
}

/// What to send.
pub enum Payloads {
    /// This payload, `count` times.
    Fixed(Vec<u8>),
    /// One datagram per line of `input` (line ending removed; an empty line
    /// is an empty datagram), each `count` times. A line too long for one
    /// datagram is reported, skipped, and makes the command fail at the end.
    Lines {
        /// Where the lines come from.
        input: Box<dyn BufRead + Send>,
        /// The input is a terminal: say how to end it.
        from_terminal: bool,
    },
}

/// What `dgram send` was asked to do.
pub struct SendOptions {
    /// Bind address (port 0 unless `--bind`) and buffer sizes.
    pub socket: SocketOptions,
    /// The destination.
    pub to: SocketAddr,
    /// What to send.
    pub payloads: Payloads,
    /// How many times each payload is sent.
    pub count: u64,
    /// Datagrams per second, on a schedule (`None`: as fast as they go).
    pub rate: Option<u64>,
    /// How long to listen for replies and ICMP errors after the last send.
    pub wait: Duration,
    /// The receive buffer for replies (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines (replies and reports on `out`).
    pub format: Format,
    /// `--pcap`: where every datagram in and out is recorded.
    pub pcap: Option<PathBuf>,
}

impl SendOptions {
    /// The options of the command line: the payload given, or the lines of
    /// stdin; bound to any port of the destination's family unless --bind.
    /// (Every check is clap's, or [`run`]'s.)
    pub fn from_args(args: SendArgs) -> Self {
        let payloads = if let Some(text) = args.text {
            Payloads::Fixed(os_bytes(text))
        } else if args.empty {
            Payloads::Fixed(Vec::new())
        } else if let Some(size) = args.size {
            // At most 65527 bytes: the parser refused anything larger.
            Payloads::Fixed(pattern(size))
        } else if let Some(HexBytes(bytes)) = args.hex {
            Payloads::Fixed(bytes)
        } else {
            Payloads::Lines {
                from_terminal: io::stdin().is_terminal(),
                input: Box::new(BufReader::new(io::stdin())),
            }
        };
        let bind = args.bind.unwrap_or_else(|| any_port_for(&args.addr));
        SendOptions {
            socket: args.buffers.socket(bind),
            to: args.addr,
            payloads,
            count: args.count,
            rate: args.rate,
            wait: Duration::from_millis(args.wait),
            max_size: args.buffers.max_size,
            format: Format::json(args.json),
            pcap: args.pcap.pcap,
        }
    }
}

/// Sends, waits, and reports: replies and reports on `out`; on `err`, for
/// people, the buffer sizes asked for and a closing "sent …" line.
///
/// Fails, after saying what was sent, when the destination refused (and
/// did not reply afterwards: [`Error::PeerUnreachable`]), when lines were
/// skipped ([`Error::LinesNotSent`]), or when `shutdown` cut it short
/// ([`Error::Interrupted`]).
pub fn run(
    options: SendOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
    err: &mut dyn Sink,
) -> Result<Stats, Error> {
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = send(options, capture.clone(), shutdown, out, err);
    options::finish_capture(capture.as_ref(), result)
}

/// [`run`] with the capture open.
fn send(
    options: SendOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
    err: &mut dyn Sink,
) -> Result<Stats, Error> {
    let SendOptions {
        socket,
        to,
        payloads,
        count,
        rate,
        wait,
        max_size,
        format,
        pcap: _,
    } = options;
    check_family(socket.bind, to)?;
    check_not_self(socket.bind, to)?;
    if let Payloads::Fixed(payload) = &payloads {
        check_payload(payload.len(), &to)?;
    }
    let pipeline = Pipeline::open(&socket, max_size)?;
    pipeline.capture_to(capture);
    let local = pipeline.local_addr();
    let mut display = Display::new(Renderer::new(format).quiet_about(to), out);
    let mut notes = Vec::new();
    let tally = pipeline.tally();
    match format {
        Format::Json => {
            if report(&tally, &mut display, &pipeline.listening(Security::None))?
                == Shown::ReaderGone
            {
                return Ok(tally.snapshot());
            }
        }
        Format::Human if socket.rcvbuf.is_some() || socket.sndbuf.is_some() => {
            let buffers = pipeline.buffers();
            notes.push(buffer_line("SO_RCVBUF", &buffers.rcvbuf));
            notes.push(buffer_line("SO_SNDBUF", &buffers.sndbuf));
        }
        Format::Human => {}
    }
    let job_input = match payloads {
        Payloads::Fixed(payload) => JobInput::Fixed(payload),
        Payloads::Lines {
            input,
            from_terminal,
        } => {
            if from_terminal {
                notes.push(format!(
                    "reading lines from the terminal: each line is one datagram to {to}; Ctrl-D ends"
                ));
            }
            JobInput::Lines(spawn_line_reader(input)?)
        }
    };
    write_notes(err, &notes)?;

    let outbox = pipeline.outbox();
    let mut plan = Plan::receive(Show);
    // People see only the totals of what was sent: the sender counts, and
    // hands the display a batch now and then instead of an event each. The
    // JSON stream has its `sent` event per datagram.
    let batched = format == Format::Human;
    let paced = tally.clone();
    plan.job = Some(Job::new("sender", move |control| {
        let mut schedule = rate.map(Schedule::new);
        let sent = send_all(
            &outbox,
            &control,
            to,
            job_input,
            count,
            batched,
            schedule.as_mut(),
        );
        // The summary says how the schedule was kept, however the sending
        // ended.
        paced.lock().summary.pacing = schedule.and_then(|s| s.report());
        sent?;
        // The listening window: replies and ICMP errors arrive now.
        control.pause(wait);
        Ok(())
    }));
    let ended = pipeline.run(&mut display, shutdown, plan)?;
    let stats = tally.snapshot();
    if format == Format::Json && display.is_open() {
        report_summary(&tally, &mut display)?;
    }
    if ended.reader_gone {
        return Ok(stats);
    }
    if format == Format::Human {
        let summary = stats.summary;
        let replies = stats.peers.get(&to).map_or(0, |p| p.received);
        let mut line = format!(
            "sent {} datagram{} ({} B) to {to} from {local}; {replies} repl{} from it",
            summary.sent,
            plural(summary.sent),
            summary.sent_bytes,
            if replies == 1 { "y" } else { "ies" },
        );
        if ended.signal.is_some() {
            line.push_str(" (interrupted)");
        }
        let mut lines = vec![line];
        lines.extend(stats.summary.pacing.as_ref().map(pacing_line));
        write_notes(err, &lines)?;
    }
    if let Some(Err(error)) = ended.job {
        return Err(error);
    }
    if let Some(signal) = ended.signal {
        return Err(Error::Interrupted { signal });
    }
    if let Some(peer) = stats.peers.get(&to).filter(|p| p.down) {
        return Err(Error::PeerUnreachable {
            peer: to,
            port: peer.port.unwrap_or(PortState::Unknown),
        });
    }
    if let Some(error) = stats
        .peers
        .get(&to)
        .filter(|p| p.received == 0)
        .and_then(|p| p.network_error.clone())
    {
        return Err(Error::PeerNotReached { peer: to, error });
    }
    if stats.summary.skipped_lines > 0 {
        return Err(Error::LinesNotSent {
            count: stats.summary.skipped_lines,
            limit: payload_limit(&to).bytes,
        });
    }
    Ok(stats)
}

/// What the sender job sends.
enum JobInput {
    Fixed(Vec<u8>),
    Lines(crossbeam_channel::Receiver<std::io::Result<super::payload::Line>>),
}

/// How many datagrams a batch counts at most before it is handed over.
const BATCH: u64 = 4096;

/// How long a batch is kept at most before it is handed over.
const BATCH_AGE: Duration = Duration::from_millis(100);

/// Datagrams sent and not yet reported: handed to the display as one
/// `SentBatch` when full, old, or dropped (so every path out reports them).
struct Batch<'a> {
    outbox: &'a Outbox,
    to: SocketAddr,
    count: u64,
    bytes: u64,
    since: std::time::Instant,
}

impl Batch<'_> {
    fn add(&mut self, len: usize) {
        self.count += 1;
        self.bytes += len as u64;
        if self.count >= BATCH || self.since.elapsed() >= BATCH_AGE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.count > 0 {
            let _ = self.outbox.emit(Event::SentBatch {
                to: self.to,
                count: self.count,
                bytes: self.bytes,
            });
        }
        self.count = 0;
        self.bytes = 0;
        self.since = std::time::Instant::now();
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Sends every payload, each `count` times, until done or stopped; every
/// datagram sent is a `Sent` event (or, `batched`, counted in a
/// `SentBatch`) and every line skipped a `LineSkipped`. With a `schedule`,
/// each datagram waits for its due time, and its send is recorded there.
fn send_all(
    outbox: &Outbox,
    control: &JobControl,
    to: SocketAddr,
    input: JobInput,
    count: u64,
    batched: bool,
    mut schedule: Option<&mut Schedule>,
) -> Result<(), Error> {
    // Datagram 0 is due when it is ready: the schedule starts there.
    let mut start: Option<Instant> = None;
    let mut next = 0u64;

    let batch = std::cell::RefCell::new(Batch {
        outbox,
        to,
        count: 0,
        bytes: 0,
        since: std::time::Instant::now(),
    });
    let mut send = |payload: &[u8]| -> Result<bool, Error> {
        for _ in 0..count {
            if control.interrupted() {
                return Ok(false);
            }
            if let Some(schedule) = schedule.as_deref_mut() {
                let start = *start.get_or_insert_with(Instant::now);
                let due = start + Duration::from_nanos(schedule.due_ns(next));
                if !wait_until(due, |ahead| control.pause(ahead)) {
                    return Ok(false);
                }
                // The moment the send call begins is what the schedule
                // asked for.
                schedule.record(next, start.elapsed().as_nanos() as u64);
                next += 1;
            }
            if batched {
                outbox.send_counted(payload, to)?;
                batch.borrow_mut().add(payload.len());
            } else {
                outbox.send(payload, to)?;
            }
        }
        Ok(true)
    };
    match input {
        JobInput::Fixed(payload) => {
            send(&payload)?;
        }
        JobInput::Lines(lines) => loop {
            let line = select! {
                recv(lines) -> line => match line {
                    Ok(line) => line.map_err(|source| Error::ReadStdin { source })?,
                    // End of input.
                    Err(_) => return Ok(()),
                },
                recv(control.stop_requests()) -> _ => return Ok(()),
            };
            match line.payload_for(&to) {
                Ok(bytes) => {
                    if !send(&bytes)? {
                        return Ok(());
                    }
                }
                Err(skipped) => {
                    // What was sent before it is counted before it.
                    batch.borrow_mut().flush();
                    let _ = outbox.emit(*skipped);
                }
            }
        },
    }
    Ok(())
}

/// Writes lines for people on `err`; a failure to write them is an error
/// (exit 1), never a panic.
fn write_notes(err: &mut dyn Sink, lines: &[String]) -> Result<(), Error> {
    if lines.is_empty() {
        return Ok(());
    }
    err.write_lines(lines)
        .map_err(|source| Error::WriteOutput { source })
}
