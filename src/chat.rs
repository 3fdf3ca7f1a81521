//! `dgram chat`: one socket, a receiver thread printing every datagram
//! above the prompt while the user types, and a REPL thread sending.
//!
//! The threads: the receiver (see [`receiver`]) receives;
//! `dgram-display` prints events (through rustyline's external printer on a
//! terminal, so the half-typed line survives) and counts them; `dgram-input`
//! runs the REPL or reads a pipe, and sends. The main thread waits for the
//! input to end or for a signal, then stops the others in order and prints
//! the summary.

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, bounded, never, select};
use rustyline::ExternalPrinter;

use crate::Error;
use crate::display::{Format, Printer, Renderer};
use crate::event::Event;
use crate::listen::EVENT_QUEUE;
use crate::receiver::{self, ReceiverConfig, report_peer_errors};
use crate::repl;
use crate::session::Session;
use crate::shutdown;
use crate::socket::{Endpoint, SocketOptions};
use crate::stats::{Stats, Summary};
use crate::sys::TerminalState;

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
    /// Without a terminal: how long to wait for replies after end of input.
    pub linger: Duration,
}

/// True when the line editor can run: stdin and stdout are terminals and
/// `TERM` is not `dumb`. (rustyline's external printer needs both; with
/// stdout piped it would still write escape sequences.)
pub fn interactive() -> bool {
    io::stdin().is_terminal()
        && io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |term| term != "dumb")
}

/// Where the display thread writes.
enum Sink {
    /// Above the prompt, through rustyline.
    Terminal(Box<dyn ExternalPrinter + Send>),
    /// Plain lines on stdout.
    Stdout,
}

/// Runs the chat until `/quit`, Ctrl-D, end of input (plus `linger`),
/// SIGTERM or (outside the editor) Ctrl-C, and returns the totals (already
/// printed).
pub fn run(options: &ChatOptions) -> Result<Summary, Error> {
    let interactive = interactive();
    let signals = shutdown::signals()?;
    let (endpoint, buffers) = Endpoint::open(&options.socket)?;
    let endpoint = Arc::new(endpoint);

    // The banner goes out before any thread can print.
    let mut banner = Printer::new(io::stdout().lock(), options.format);
    let shown = banner.print(&Event::Listening {
        local: endpoint.local_addr(),
        buffers,
        max_size: options.max_size,
        capabilities: endpoint.capabilities(),
    });
    drop(banner);
    shown.map_err(|source| Error::WriteOutput { source })?;
    if options.format == Format::Human {
        let peer = options
            .peer
            .map_or("no peer yet (/to ADDR)".to_string(), |p| {
                format!("peer {p}")
            });
        let how = if interactive {
            "type a message and press Enter; /help lists commands"
        } else {
            "each line of input is one datagram"
        };
        println!("chat on {}, {peer}: {how}", endpoint.local_addr());
    }

    let stats = Arc::new(Mutex::new(Stats::default()));
    let (events_tx, events) = bounded(EVENT_QUEUE);
    let (stop_tx, stop) = bounded::<()>(0);
    let (done_tx, done) = bounded::<()>(0);

    let (editor, sink, terminal) = if interactive {
        let mut editor = repl::editor(options.history.as_deref())?;
        let printer = editor
            .create_external_printer()
            .map_err(|source| Error::Terminal { source })?;
        let sink = Sink::Terminal(Box::new(printer));
        (Some(editor), sink, TerminalState::save())
    } else {
        (None, Sink::Stdout, None)
    };

    let display = spawn_display(sink, options.format, events, done, Arc::clone(&stats))?;
    let config = ReceiverConfig {
        max_size: options.max_size,
        echo: false,
        limit: None,
    };
    let receiver = receiver::spawn(Arc::clone(&endpoint), config, events_tx.clone(), stop)?;
    // The receiver only ends early on a failure; the chat must not go on
    // deaf, so its end is something to wait for too.
    let receiver_ended = notify_on_exit("receiver", receiver)?;

    let session = Session::new(
        Arc::clone(&endpoint),
        events_tx.clone(),
        options.peer,
        (options.socket.rcvbuf, options.socket.sndbuf),
        Arc::clone(&stats),
    );
    let history = options.history.clone();
    let input_ended = notify_on_exit(
        "input",
        thread::Builder::new()
            .name("dgram-input".into())
            .spawn(move || match editor {
                Some(editor) => repl::run_terminal(editor, session, history),
                None => repl::run_piped(session),
            })
            .map_err(|source| Error::SpawnThread {
                name: "input",
                source,
            })?,
    )?;

    let end = select! {
        recv(input_ended) -> result => End::Input(result.unwrap_or(Ok(()))),
        recv(receiver_ended) -> result => End::Receiver(result.unwrap_or(Ok(()))),
        recv(signals) -> _ => End::Signal,
    };
    match end {
        // The editor may still be in raw mode, reading: put the terminal
        // back before anything else is printed.
        End::Signal | End::Receiver(_) => {
            if let Some(terminal) = &terminal {
                terminal.restore();
            }
        }
        // End of input: replies may still be on their way.
        End::Input(_) if !interactive => select! {
            recv(signals) -> _ => {}
            default(options.linger) => {}
        },
        End::Input(_) => {}
    }

    drop(stop_tx);
    let (input_result, received) = match end {
        End::Input(result) => (result, receiver_ended.recv().unwrap_or(Ok(()))),
        End::Receiver(result) => (Ok(()), result),
        End::Signal => (Ok(()), receiver_ended.recv().unwrap_or(Ok(()))),
    };
    report_peer_errors(&events_tx, endpoint.take_errors());
    drop(events_tx);
    drop(done_tx);
    display
        .join()
        .map_err(|_| Error::ThreadPanicked { name: "display" })?;
    input_result?;
    received?;

    let summary = stats.lock().unwrap_or_else(|e| e.into_inner()).summary;
    let mut out = Printer::new(io::stdout().lock(), options.format);
    match out.print(&Event::Summary(summary)) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(Error::WriteOutput { source: e });
        }
        _ => {}
    }
    Ok(summary)
}

/// How a chat came to its end.
enum End {
    /// `/quit`, Ctrl-D or end of input (or the input failed).
    Input(Result<(), Error>),
    /// The receiver stopped by itself, which only a failure makes it do.
    Receiver(Result<(), Error>),
    /// SIGTERM, or Ctrl-C outside the line editor.
    Signal,
}

/// Joins `thread` on a helper thread and hands its result over a channel,
/// so that the end of a thread can be waited for with `select!`.
fn notify_on_exit(
    name: &'static str,
    handle: thread::JoinHandle<Result<(), Error>>,
) -> Result<Receiver<Result<(), Error>>, Error> {
    let (tx, rx) = bounded(1);
    thread::Builder::new()
        .name(format!("dgram-{name}-watch"))
        .spawn(move || {
            let result = handle.join().unwrap_or(Err(Error::ThreadPanicked { name }));
            let _ = tx.send(result);
        })
        .map_err(|source| Error::SpawnThread { name, source })?;
    Ok(rx)
}

/// The display thread: counts every event and prints what it renders,
/// until `done` disconnects, then prints whatever is still queued.
fn spawn_display(
    mut sink: Sink,
    format: Format,
    events: Receiver<Event>,
    done: Receiver<()>,
    stats: Arc<Mutex<Stats>>,
) -> Result<thread::JoinHandle<()>, Error> {
    thread::Builder::new()
        .name("dgram-display".into())
        .spawn(move || {
            let mut renderer = Renderer::new(format);
            let mut show = |event: Event| {
                stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(&event);
                let lines = renderer.render(&event);
                if !lines.is_empty() {
                    sink.write(lines.join("\n") + "\n");
                }
            };
            // A disconnected channel is always ready to select!: once
            // `events` disconnects it is swapped for one that never is.
            let mut events = events;
            loop {
                select! {
                    recv(events) -> event => match event {
                        Ok(event) => show(event),
                        Err(_) => events = never(),
                    },
                    recv(done) -> _ => break,
                }
            }
            for event in events.try_iter() {
                show(event);
            }
        })
        .map_err(|source| Error::SpawnThread {
            name: "display",
            source,
        })
}

impl Sink {
    /// Writes `text` (whole lines). Output that cannot be written is
    /// dropped: the counts go on.
    fn write(&mut self, text: String) {
        match self {
            Sink::Terminal(printer) => {
                let _ = printer.print(text);
            }
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            }
        }
    }
}
