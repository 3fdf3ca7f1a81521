//! `dgram chat`: one socket, every datagram shown as it arrives while the
//! user types, each line typed sent as one message (in an envelope with a
//! receipt to dgram peers, plain to plain peers; the protocol is
//! [`crate::proto::Core`], put on the socket by [`Driver`]).
//!
//! The chat runs on the pipeline ([`Pipeline`]): the receiver thread
//! receives, the display loop (the calling thread) prints events, and the
//! input is the pipeline's job (`dgram-input`), in one of three modes (see
//! [`Mode`]): the rustyline editor, plain typed lines, or a pipe.
//!
//! - [`args`]: the command line ([`ChatArgs`]) and the options it makes.
//! - [`command`]: what a typed line means (a message or a `/command`).
//! - [`session`]: the sending side (current peer, commands run).
//! - [`repl`]: the input loops of the three modes.
//! - [`terminal`]: mode detection and the terminal settings to restore.
//! - [`via`]: `--via`: the path through NATs, found before the chat.

pub mod args;
pub mod command;
pub mod repl;
pub mod session;
pub mod terminal;
pub mod via;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::args::ChatArgs;
use self::repl::Prepared;
use self::session::Session;
use self::terminal::{Mode, TerminalState};
use crate::Error;
use crate::cmd::files;
use crate::cmd::payload::spawn_line_reader;
use crate::model::{Security, Summary, Tally};
use crate::net::SocketOptions;
use crate::net::addr::{check_family, check_not_self};
use crate::net::capture::Capture;
use crate::net::group::GroupOptions;
use crate::net::limits::MAX_PAYLOAD_V4;
use crate::output::fast::shown;
use crate::output::sink::{self, PrinterSink};
use crate::output::{Display, Format, Renderer, Shown, Sink};
use crate::proto::ChatConfig;
use crate::proto::code::Code;
use crate::proto::traverse::{Found, Keeper};
use crate::runtime::driver::Driver;
use crate::runtime::receiver::ShowOthers;
use crate::runtime::traverse::TurnSetup;
use crate::runtime::{
    Ended, Job, OnInterrupt, Pipeline, Plan, Show, Shutdown, report, report_summary,
};

/// What `dgram chat` was asked to do.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Bind address and buffer sizes.
    pub socket: SocketOptions,
    /// Who typed lines go to first.
    pub peer: Option<SocketAddr>,
    /// The application's receive buffer (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines.
    pub format: Format,
    /// The history file (`None`: no history).
    pub history: Option<PathBuf>,
    /// From a pipe: how long to wait for replies after end of input (and
    /// after the last message's final state).
    pub linger: Duration,
    /// The name, session, timers and line ending of the messages sent.
    pub protocol: ChatConfig,
    /// `--plain`: the `--peer` speaks plain UDP from the start.
    pub plain_peer: bool,
    /// `--code`: a secure session set up with a short code, and whether
    /// this run made it (then it is shown, for the other person to type).
    pub code: Option<(Code, bool)>,
    /// `--log FILE`.
    pub log: Option<PathBuf>,
    /// `--group`/`--broadcast`: chat with every member of this group
    /// (`socket.bind` is then the member's own socket).
    pub group: Option<GroupOptions>,
    /// `--via`: meet the other side of the code at a rendezvous and find
    /// a path to it first.
    pub via: Option<Via>,
    /// The peer begins the session's handshake: this side only answers
    /// (the side `--via` found the path for, that did not choose it).
    pub passive: bool,
    /// `--pcap`: where every datagram in and out is recorded (the search
    /// of `--via` included).
    pub pcap: Option<PathBuf>,
}

/// `--via` and what goes with it.
#[derive(Debug, Clone)]
pub struct Via {
    /// The rendezvous service.
    pub rendezvous: SocketAddr,
    /// `--stun`: a second STUN server.
    pub stun: Option<SocketAddr>,
    /// `--path-wait`.
    pub path_wait: Duration,
    /// `--turn`: a relay for when no direct path is found.
    pub turn: Option<TurnSetup>,
}

/// How long the line of a message sent waits for its receipt before it is
/// shown without it (on loopback or a LAN a receipt takes well under a
/// millisecond; a lost message is tried again after at least 200 ms).
pub const HOLD_SENT_LINE: Duration = Duration::from_millis(150);

/// What a keyed chat or listener says once, under its banner.
pub const SEALED_NOTE: &str = "messages, receipts and hellos are sealed with the key file (the room key, XChaCha20-Poly1305; no forward secrecy in groups yet); whatever is not sealed with it is refused and counted";

/// The note of a keyed chat with a peer.
pub const SESSION_NOTE: &str = "messages and receipts go only in a secure session: a handshake \
    (Noise NNpsk0, from the key file or the code) gives keys of this run only, one per direction; \
    what is typed before it completes waits; whatever is not secured in the session is refused and counted";

/// What a side that made a code shows: the code, and the command the
/// other person runs (this side's address as the peer can reach it).
fn code_line(code: &Code, local: SocketAddr, peer: Option<SocketAddr>) -> String {
    let reachable = match (local.ip().is_unspecified(), peer) {
        (true, Some(peer)) => std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0))
            .and_then(|probe| {
                // No datagram goes out: connecting a UDP socket only
                // picks the source address towards the peer.
                probe.connect(peer)?;
                probe.local_addr()
            })
            .map(|addr| shown(SocketAddr::new(addr.ip(), local.port())).to_string())
            .unwrap_or_else(|_| format!("THIS_HOST:{}", local.port())),
        (true, None) => format!("THIS_HOST:{}", local.port()),
        (false, _) => shown(local).to_string(),
    };
    format!(
        "code: {code} ({} bits of secret; one guess per run): the other person runs  \
         dgram chat --peer {reachable} --code {code}",
        code.secret_bits()
    )
}

/// Where a chat's input comes from and its output goes.
pub enum ChatIo {
    /// The process's standard streams; the mode follows from them.
    Process,
    /// Given streams (tests, in-process use).
    Streams {
        /// Lines of input.
        input: Box<dyn BufRead + Send>,
        /// Typed by a person (`/commands` work, an empty line sends
        /// nothing), or data from a pipe.
        typed: bool,
        /// Events.
        out: Box<dyn Sink>,
        /// Answers to commands, warnings.
        err: Box<dyn Sink>,
    },
}

/// `dgram chat` as the command line asks for it: on the process's
/// terminal or pipes.
pub fn main(args: ChatArgs) -> Result<(), Error> {
    let options = ChatOptions::from_args(args)?;
    let shutdown = Shutdown::from_signals()?;
    run(&options, &shutdown, ChatIo::Process).map(|_| ())
}

/// Opens the `--log` file for appending (a new one is created 0600: what
/// was said is private). Only a regular file, or a new one in a directory
/// that exists: a FIFO or a device is refused before it is opened (a FIFO
/// would block `open(2)` until SIGKILL), and no directory is made.
fn open_log(path: &Path) -> Result<File, Error> {
    files::check_target(path).map_err(|e| Error::LogFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    files::open_regular(path, &mut options).map_err(|source| Error::WriteLog {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the chat until `/quit`, Ctrl-D, end of input (plus `linger` for a
/// pipe), SIGTERM, or (from a pipe) Ctrl-C, and returns the totals (already
/// printed). Lines of a pipe too long for a datagram are skipped and make
/// it fail at the end ([`Error::LinesNotSent`]).
pub fn run(options: &ChatOptions, shutdown: &Shutdown, io: ChatIo) -> Result<Summary, Error> {
    let capture = crate::cmd::options::open_capture(options.pcap.as_deref())?;
    let result = chat(options, capture.clone(), shutdown, io);
    crate::cmd::options::finish_capture(capture.as_ref(), result)
}

/// [`run`] with the capture open.
fn chat(
    options: &ChatOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    io: ChatIo,
) -> Result<Summary, Error> {
    if let Some(peer) = options.peer {
        check_family(options.socket.bind, peer)?;
        check_not_self(options.socket.bind, peer)?;
    }
    let process = matches!(io, ChatIo::Process);
    let Streams {
        mode,
        out,
        mut err,
        input,
    } = Streams::of(io);
    let mut out = Some(out);
    let mut prepared = match mode {
        Mode::Editor => Some(repl::editor(options.history.as_deref())?),
        Mode::Typed | Mode::Piped => None,
    };
    let mut display = display(options, prepared.as_mut(), &mut out)?;
    let mut found_path = None;
    let pipeline = match (&options.group, &options.via, &options.code) {
        (Some(group), _, _) => Pipeline::open_group(&options.socket, options.max_size, group)?,
        (None, Some(via), Some((code, _))) => {
            if let Some((code, true)) = &options.code {
                // The other person needs the code before anything can
                // happen: shown first.
                show_code_line(options, code, None, &mut display)?;
            }
            match via::find_path(options, via, code, capture.clone(), shutdown, &mut display)? {
                Some(path) => {
                    let pipeline = path.pipeline;
                    found_path = Some((path.found, path.keeper));
                    pipeline
                }
                None => return Ok(Summary::default()),
            }
        }
        (None, _, _) => Pipeline::open(&options.socket, options.max_size)?,
    };
    pipeline.capture_to(capture);
    // After `--via`, the chat is one with the peer the path leads to.
    let found_options;
    let options = match &found_path {
        Some((found, _)) => {
            let mut with_peer = options.clone();
            with_peer.peer = Some(found.peer);
            with_peer.passive = !found.controlling;
            found_options = with_peer;
            &found_options
        }
        None => options,
    };

    // The banner goes out before any thread can print.
    let tally = pipeline.tally();
    if banner(options, &pipeline, mode, &mut display)? == Shown::ReaderGone {
        return Ok(tally.snapshot().summary);
    }
    if let Some(prepared) = &prepared
        && !prepared.warnings.is_empty()
    {
        err.write_lines(&prepared.warnings)
            .map_err(|source| Error::WriteOutput { source })?;
    }

    let (plan, terminal) = plan(options, &pipeline, mode, prepared, input, err, found_path)?;
    let ended = pipeline.run(&mut display, shutdown, plan);
    if let Some(terminal) = &terminal {
        // Unless the editor ended by itself, it may still be in raw mode,
        // reading: put the terminal back before anything else is printed,
        // and print plainly from now on.
        if !matches!(ended, Ok(Ended { job: Some(_), .. })) {
            terminal.restore();
        }
        display.redirect(out.take());
    }
    let ended = ended?;
    if ended.reader_gone && process && mode == Mode::Typed {
        // Someone is typing: say why the chat ended (at a pipeline, Ctrl-C
        // ends `tee` and the like too).
        let _ = sink::stderr().write_lines(&[
            "the chat ends: its output pipe closed (the program reading it ended)".to_string(),
        ]);
    }
    let summary = report_summary(&tally, &mut display)?;
    if let Some(Err(error)) = ended.job {
        return Err(error);
    }
    outcome(options, mode, &tally, summary)
}

/// A chat's streams and the input mode they make.
struct Streams {
    mode: Mode,
    /// Events.
    out: Box<dyn Sink>,
    /// Answers to commands, warnings.
    err: Box<dyn Sink>,
    /// Lines of input; `None`: stdin.
    input: Option<Box<dyn BufRead + Send>>,
}

impl Streams {
    fn of(io: ChatIo) -> Streams {
        match io {
            ChatIo::Process => Streams {
                mode: Mode::detect(),
                out: Box::new(sink::stdout()),
                err: Box::new(sink::stderr()),
                input: None,
            },
            ChatIo::Streams {
                input,
                typed,
                out,
                err,
            } => Streams {
                mode: if typed { Mode::Typed } else { Mode::Piped },
                out,
                err,
                input: Some(input),
            },
        }
    }
}

/// Where events are shown: above the editor's prompt (coalesced, so that
/// a flood cannot bury it), else on `out` (taken); sent lines held for
/// their receipt for people; the `--log` file opened.
fn display(
    options: &ChatOptions,
    prepared: Option<&mut Prepared>,
    out: &mut Option<Box<dyn Sink>>,
) -> Result<Display<'static>, Error> {
    let renderer = Renderer::new(options.format).keyed(options.protocol.key.is_some());
    let mut display = match prepared {
        Some(prepared) => {
            let printer = prepared
                .editor
                .create_external_printer()
                .map_err(|source| Error::Terminal { source })?;
            Display::new(renderer, PrinterSink(Box::new(printer)))
                .coalesce(crate::cmd::listen::TERMINAL_LINES_PER_SECOND)
        }
        None => Display::new(renderer, out.take()),
    };
    if options.format == Format::Human {
        display = display.hold_sent_lines(HOLD_SENT_LINE);
    }
    if let Some(path) = &options.log {
        display = display.log_to(open_log(path)?, path);
    }
    Ok(display)
}

/// The socket's banner, the group joined, and for people the chat's own
/// line (where, to whom, how to type) and the sealed note.
fn banner(
    options: &ChatOptions,
    pipeline: &Pipeline,
    mode: Mode,
    display: &mut Display<'_>,
) -> Result<Shown, Error> {
    let tally = pipeline.tally();
    if report(
        &tally,
        display,
        &pipeline.listening(Security::of(
            options.protocol.key.is_some(),
            options.protocol.code.is_some(),
            options.group.is_some(),
        )),
    )? == Shown::ReaderGone
    {
        return Ok(Shown::ReaderGone);
    }
    if let Some(joined) = pipeline.joined()
        && report(&tally, display, &joined)? == Shown::ReaderGone
    {
        return Ok(Shown::ReaderGone);
    }
    if options.format == Format::Human {
        let peer = match (options.group.as_ref(), options.peer) {
            (Some(group), _) => format!("group {}", shown(group.addr)),
            (None, Some(p)) => format!("peer {}", shown(p)),
            // A pipe carries no /commands: only --peer gives its lines a
            // destination.
            (None, None) if mode == Mode::Piped => "no peer (lines need --peer ADDR)".to_string(),
            (None, None) => "no peer yet (/to ADDR)".to_string(),
        };
        let how = match mode {
            Mode::Editor | Mode::Typed => "type a message and press Enter; /help lists commands",
            Mode::Piped => "each line of input is one message",
        };
        let local = pipeline.local_addr();
        display.write(&[format!("chat on {}, {peer}: {how}", shown(local))])?;
        if options.protocol.key.is_some() && options.group.is_some() {
            display.write(&[SEALED_NOTE.to_string()])?;
        } else if options.protocol.key.is_some() || options.code.is_some() {
            display.write(&[SESSION_NOTE.to_string()])?;
        }
    }
    if let (Some((code, true)), None) = (&options.code, &options.via) {
        show_code_line(options, code, Some(pipeline.local_addr()), display)?;
    }
    Ok(Shown::Yes)
}

/// Shows a code made here with the command the other person runs, whatever
/// the output format (under --json it goes to the terminal's error
/// stream). `local`: this side's address, for a chat without `--via`.
fn show_code_line(
    options: &ChatOptions,
    code: &Code,
    local: Option<SocketAddr>,
    display: &mut Display<'_>,
) -> Result<(), Error> {
    let line = match (&options.via, local) {
        (Some(via), _) => format!(
            "code: {code} ({} bits of secret; one guess per run): the other person runs  \
             dgram chat --via {} --code {code}",
            code.secret_bits(),
            shown(via.rendezvous)
        ),
        (None, Some(local)) => code_line(code, local, options.peer),
        (None, None) => return Ok(()),
    };
    if options.format == Format::Human {
        display.write(&[line])?;
    } else {
        let _ = sink::stderr().write_lines(&[line]);
    }
    Ok(())
}

/// What the pipeline runs: the protocol (unless `--raw`) on what
/// arrives, and the input loop of `mode` as its job, sending through one
/// [`Session`]; with the editor, the terminal's settings to put back.
fn plan(
    options: &ChatOptions,
    pipeline: &Pipeline,
    mode: Mode,
    mut prepared: Option<Prepared>,
    input: Option<Box<dyn BufRead + Send>>,
    err: Box<dyn Sink>,
    path: Option<(Found, Keeper)>,
) -> Result<(Plan, Option<TerminalState>), Error> {
    let local = pipeline.local_addr();
    let (found, keeper) = path.unzip();
    let messenger = Driver::new(pipeline.outbox(), options.protocol.clone())?.with_keeper(keeper);
    if let (true, Some(peer)) = (options.plain_peer, options.peer) {
        messenger.assume_plain(peer);
    }
    if let Some(peer) = options.peer
        && !options.passive
    {
        // A keyed chat secures its session at once, before anything is
        // typed (after `--via`, the side that chose the path does).
        messenger.connect(peer);
    }
    if let Some(helper) = prepared.as_mut().and_then(|p| p.editor.helper_mut()) {
        helper.waiting = Some(messenger.clone());
    }
    // In a group, what is typed goes to the group.
    let peer = options.peer.or(options.group.as_ref().map(|g| g.addr));
    let session = Session::new(
        pipeline.outbox(),
        messenger.clone(),
        peer,
        (options.socket.rcvbuf, options.socket.sndbuf),
        pipeline.tally(),
    )
    .with_path(found);
    let mut plan = if options.protocol.raw && options.group.is_some() {
        Plan::receive(ShowOthers { local })
    } else if options.protocol.raw {
        Plan::receive(Show)
    } else {
        Plan::receive(messenger.handler(Box::new(Show)))
    };
    let input = || -> Result<_, Error> {
        spawn_line_reader(input.unwrap_or_else(|| Box::new(BufReader::new(io::stdin()))))
    };
    let terminal = match (mode, prepared) {
        (Mode::Editor, Some(prepared)) => {
            plan.job = Some(
                Job::new("input", move |control| {
                    repl::run_editor(prepared, session, control)
                })
                .may_block(),
            );
            plan.on_interrupt = OnInterrupt::ForwardToJob;
            TerminalState::save()
        }
        (Mode::Typed, _) => {
            let lines = input()?;
            plan.job = Some(Job::new("input", move |control| {
                repl::run_typed(lines, session, control, err)
            }));
            plan.on_interrupt = OnInterrupt::ForwardToJob;
            None
        }
        (Mode::Piped, _) | (Mode::Editor, None) => {
            let lines = input()?;
            plan.job = Some(Job::new("input", move |control| {
                repl::run_piped(lines, session, control, err)
            }));
            plan.linger = options.linger;
            None
        }
    };
    Ok((plan, terminal))
}

/// How a finished chat ends: from a pipe, it fails when its peer was
/// unreachable or a message was not delivered; any chat fails when lines
/// were too long to send.
fn outcome(
    options: &ChatOptions,
    mode: Mode,
    tally: &Tally,
    summary: Summary,
) -> Result<Summary, Error> {
    // A plain peer sends no receipts, but a refusal still says that
    // nothing got there: from a pipe, that fails the chat as it fails
    // `send`.
    if mode == Mode::Piped
        && let Some(peer) = options.peer
        && let Some(state) = tally.snapshot().peers.get(&peer)
        && state.down
        && summary.failed == 0
    {
        return Err(Error::PeerUnreachable {
            peer,
            port: state.port.unwrap_or(crate::net::addr::PortState::Unknown),
        });
    }
    if mode == Mode::Piped && summary.failed > 0 {
        return Err(Error::NotDelivered {
            failed: summary.failed,
            messages: summary.messages_sent,
            keyed: options.protocol.key.is_some() || options.protocol.code.is_some(),
            refused: options
                .peer
                .filter(|peer| tally.snapshot().peers.get(peer).is_some_and(|p| p.down)),
        });
    }
    if summary.skipped_lines > 0 {
        return Err(Error::LinesNotSent {
            count: summary.skipped_lines,
            limit: summary.skipped_limit.unwrap_or(MAX_PAYLOAD_V4),
        });
    }
    Ok(summary)
}
