//! `dgram send`: send one datagram (or one per line of stdin, or a repeated
//! one), listen a while for replies and ICMP errors, and say plainly when
//! nothing is listening at the destination.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

use crate::Error;
use crate::datagram::for_each_line;
use crate::display::{Format, Screen, buffer_line};
use crate::event::Event;
use crate::listen::EVENT_QUEUE;
use crate::receiver::{self, ReceiverConfig, report_peer_errors, send_reported};
use crate::socket::{Endpoint, SocketOptions, check_payload};
use crate::stats::{Stats, Summary};

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payloads {
    /// This payload, `count` times.
    Fixed(Vec<u8>),
    /// One datagram per line of standard input (newline removed; an empty
    /// line is an empty datagram), each `count` times.
    StdinLines,
}

/// What `dgram send` was asked to do.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Bind address (port 0 unless `--bind`) and buffer sizes.
    pub socket: SocketOptions,
    /// The destination.
    pub to: SocketAddr,
    /// What to send.
    pub payloads: Payloads,
    /// How many times each payload is sent.
    pub count: u64,
    /// How long to listen for replies and ICMP errors after the last send.
    pub wait: Duration,
    /// The receive buffer for replies (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines (replies and reports on stdout).
    pub format: Format,
}

/// Sends, waits, and reports. A refusal from the destination (and no reply
/// from it afterwards) is an [`Error::PeerUnreachable`].
pub fn run(options: &SendOptions) -> Result<Stats, Error> {
    if let Payloads::Fixed(payload) = &options.payloads {
        check_payload(payload.len(), &options.to)?;
    }
    let (endpoint, buffers) = Endpoint::open(&options.socket)?;
    let endpoint = Arc::new(endpoint);
    let (events_tx, events) = bounded(EVENT_QUEUE);
    let (stop_tx, stop) = bounded::<()>(0);
    let config = ReceiverConfig {
        max_size: options.max_size,
        echo: false,
        limit: None,
    };

    let listening = Event::Listening {
        local: endpoint.local_addr(),
        buffers,
        max_size: options.max_size,
        capabilities: endpoint.capabilities(),
    };
    match options.format {
        Format::Json => {
            let _ = events_tx.send(listening);
        }
        Format::Human => {
            if options.socket.rcvbuf.is_some() || options.socket.sndbuf.is_some() {
                eprintln!("{}", buffer_line("SO_RCVBUF", &buffers.rcvbuf));
                eprintln!("{}", buffer_line("SO_SNDBUF", &buffers.sndbuf));
            }
        }
    }

    let display = spawn_display(events, options.format, options.to)?;
    let receiver = receiver::spawn(Arc::clone(&endpoint), config, events_tx.clone(), stop)?;

    let sent = send_all(&endpoint, options, &events_tx);
    if sent.is_ok() {
        // The listening window: replies and ICMP errors arrive now.
        thread::sleep(options.wait);
    }
    drop(stop_tx);
    let received = receiver
        .join()
        .map_err(|_| Error::ThreadPanicked { name: "receiver" })?;
    // An ICMP error that came in after the receiver's last look.
    report_peer_errors(&events_tx, endpoint.take_errors());
    drop(events_tx);
    let stats = display
        .join()
        .map_err(|_| Error::ThreadPanicked { name: "display" })??;
    sent?;
    received?;

    if options.format == Format::Human {
        let Summary {
            sent: datagrams,
            sent_bytes: bytes,
            ..
        } = stats.summary;
        let replies = stats.peers.get(&options.to).map_or(0, |p| p.received);
        eprintln!(
            "sent {datagrams} datagram{} ({bytes} B) to {} from {}; {replies} repl{} from it",
            if datagrams == 1 { "" } else { "s" },
            options.to,
            endpoint.local_addr(),
            if replies == 1 { "y" } else { "ies" },
        );
    }
    if stats.is_down(&options.to) {
        return Err(Error::PeerUnreachable { peer: options.to });
    }
    Ok(stats)
}

/// Sends every payload, each `count` times; every datagram sent is a
/// `Sent` event (the display counts them).
fn send_all(
    endpoint: &Endpoint,
    options: &SendOptions,
    events: &Sender<Event>,
) -> Result<(), Error> {
    let send = |payload: &[u8]| -> Result<(), Error> {
        for _ in 0..options.count {
            send_reported(endpoint, events, payload, options.to, false)?;
        }
        Ok(())
    };
    match &options.payloads {
        Payloads::Fixed(payload) => send(payload)?,
        Payloads::StdinLines => for_each_line(io::stdin().lock(), send, |source| {
            Error::ReadStdin { source }
        })?,
    }
    Ok(())
}

/// The display thread: prints replies and reports as they come, and counts
/// them. A refusal from the destination is left out of the human output:
/// the final error says it once.
fn spawn_display(
    events: crossbeam_channel::Receiver<Event>,
    format: Format,
    to: SocketAddr,
) -> Result<thread::JoinHandle<Result<Stats, Error>>, Error> {
    thread::Builder::new()
        .name("dgram-display".into())
        .spawn(move || {
            let mut screen = Screen::new(io::stdout().lock(), format);
            let mut open = true;
            for event in events.iter() {
                let quiet = format == Format::Human
                    && matches!(event, Event::Unreachable { peer } if peer == to);
                if quiet || !open {
                    screen.stats.record(&event);
                } else {
                    open = screen.show(&event)?;
                }
            }
            if format == Format::Json && open {
                screen.show(&Event::Summary(screen.stats.summary))?;
            }
            let _ = io::stdout().flush();
            Ok(screen.stats)
        })
        .map_err(|source| Error::SpawnThread {
            name: "display",
            source,
        })
}
