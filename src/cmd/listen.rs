//! `dgram listen`: bind, show every datagram as it arrives, optionally echo
//! it back, and print a summary on exit.

use crate::Error;
use crate::model::Summary;
use crate::net::SocketOptions;
use crate::output::{Display, Format, Renderer, Shown, Sink};
use crate::runtime::echo::Echo;
use crate::runtime::{Pipeline, Plan, Show, Shutdown};

/// What `dgram listen` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOptions {
    /// Bind address and buffer sizes.
    pub socket: SocketOptions,
    /// The application's receive buffer (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines.
    pub format: Format,
    /// Exit after this many datagrams.
    pub count: Option<u64>,
    /// Send every datagram back to its sender, at most this many replies
    /// per second to each peer (`0`: no limit); `None`: no echo.
    pub echo: Option<u32>,
}

/// Runs the listener until `--count` datagrams, a stop request from
/// `shutdown` (Ctrl-C, SIGTERM), or the reader of `out` going away, and
/// returns the totals (already shown).
pub fn run(
    options: &ListenOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<Summary, Error> {
    let pipeline = Pipeline::open(&options.socket, options.max_size)?;
    let mut display = Display::new(Renderer::new(options.format), out);
    if display.show(&pipeline.listening())? == Shown::ReaderGone {
        return Ok(display.snapshot().summary);
    }
    let mut plan = match options.echo {
        Some(rate) => Plan::receive(Echo::new(pipeline.local_addr(), rate)),
        None => Plan::receive(Show),
    };
    plan.limit = options.count;
    pipeline.run(&mut display, shutdown, plan)?;
    display.show_summary()
}
