//! `dgram listen`: bind, show every datagram as it arrives, optionally echo
//! it back, and print a summary on exit.

use std::io;
use std::sync::Arc;

use crossbeam_channel::{bounded, select};

use crate::Error;
use crate::display::{Format, Screen};
use crate::event::Event;
use crate::receiver::{self, ReceiverConfig};
use crate::shutdown;
use crate::socket::{Endpoint, SocketOptions};
use crate::stats::Summary;

/// How many events may wait between the receiver and the display. When the
/// display falls behind, the receiver waits, the socket's queue fills and
/// the kernel drops (and counts) what does not fit: nothing is lost
/// silently.
pub const EVENT_QUEUE: usize = 1024;

/// What `dgram listen` was asked to do.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Bind address and buffer sizes.
    pub socket: SocketOptions,
    /// The application's receive buffer (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines.
    pub format: Format,
    /// Exit after this many datagrams.
    pub count: Option<u64>,
    /// Send every datagram back to its sender.
    pub echo: bool,
}

/// Runs the listener until `--count` datagrams, Ctrl-C or SIGTERM, and
/// returns the totals (already printed).
pub fn run(options: &ListenOptions) -> Result<Summary, Error> {
    let signals = shutdown::signals()?;
    let (endpoint, buffers) = Endpoint::open(&options.socket)?;
    let endpoint = Arc::new(endpoint);
    let mut out = Screen::new(io::stdout().lock(), options.format);
    let listening = Event::Listening {
        local: endpoint.local_addr(),
        buffers,
        max_size: options.max_size,
        capabilities: endpoint.capabilities(),
    };
    if !out.show(&listening)? {
        return Ok(out.stats.summary);
    }

    let (events_tx, events) = bounded(EVENT_QUEUE);
    let (stop_tx, stop) = bounded::<()>(0);
    let config = ReceiverConfig {
        max_size: options.max_size,
        echo: options.echo,
        limit: options.count,
    };
    let receiver = receiver::spawn(Arc::clone(&endpoint), config, events_tx, stop)?;
    // Dropping the sender is the stop request.
    let mut stop_tx = Some(stop_tx);
    let shown = loop {
        select! {
            recv(events) -> event => match event {
                Ok(event) => match out.show(&event) {
                    Ok(true) => {}
                    other => break other,
                },
                // The receiver is done (count reached, stop honoured, or a
                // failure, which join reports).
                Err(_) => break Ok(true),
            },
            recv(signals) -> _ => stop_tx = None,
        }
    };
    drop(stop_tx);
    drop(events);
    let received = receiver
        .join()
        .map_err(|_| Error::ThreadPanicked { name: "receiver" })?;
    if !shown? {
        return Ok(out.stats.summary);
    }
    received?;
    let summary = out.stats.summary;
    out.show(&Event::Summary(summary))?;
    Ok(summary)
}
