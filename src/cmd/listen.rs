//! `dgram listen`: bind, show every datagram as it arrives (dgram chat
//! messages decoded and acknowledged), optionally echo plain datagrams
//! back, and print a summary on exit.

use crate::Error;
use crate::model::Summary;
use crate::net::SocketOptions;
use crate::net::group::GroupOptions;
use crate::output::{Display, Format, Renderer, Shown, Sink};
use crate::proto::seal::Key;
use crate::proto::{ChatConfig, SessionId};
use crate::runtime::driver::Driver;
use crate::runtime::echo::Echo;
use crate::runtime::entropy;
use crate::runtime::{Handler, Pipeline, Plan, Show, Shutdown, report, report_summary};

/// What `dgram listen` was asked to do.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Bind address and buffer sizes.
    pub socket: SocketOptions,
    /// `--group`/`--broadcast`: watch this group (`socket.bind` is then
    /// the member's own socket).
    pub group: Option<GroupOptions>,
    /// The application's receive buffer (`--max-size`).
    pub max_size: usize,
    /// Human lines or JSON lines.
    pub format: Format,
    /// Exit after this many datagrams.
    pub count: Option<u64>,
    /// Send every datagram back to its sender, at most this many replies
    /// per second to each peer (`0`: no limit); `None`: no echo.
    pub echo: Option<u32>,
    /// `--raw`: no chat protocol (envelopes are shown as raw datagrams and
    /// not acknowledged).
    pub raw: bool,
    /// Show at most this many datagram lines a second, the rest coalesced
    /// (for a terminal; see [`Display::coalesce`]); `None`: every one.
    pub coalesce: Option<u32>,
    /// `--key-file`: take only sealed envelopes, seal the receipts.
    pub key: Option<Key>,
}

/// How many datagram lines a second a terminal shows before the rest are
/// coalesced: more than anyone reads, few enough for any terminal.
pub const TERMINAL_LINES_PER_SECOND: u32 = 200;

/// Runs the listener until `--count` datagrams, a stop request from
/// `shutdown` (Ctrl-C, SIGTERM), or the reader of `out` going away, and
/// returns the totals (already shown).
pub fn run(
    options: &ListenOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<Summary, Error> {
    let pipeline = match &options.group {
        Some(group) => Pipeline::open_group(&options.socket, options.max_size, group)?,
        None => Pipeline::open(&options.socket, options.max_size)?,
    };
    let mut display = Display::new(Renderer::new(options.format), out);
    if let Some(per_second) = options.coalesce {
        display = display.coalesce(per_second);
    }
    let tally = pipeline.tally();
    if report(&tally, &mut display, &pipeline.listening())? == Shown::ReaderGone {
        return Ok(tally.snapshot().summary);
    }
    if let Some(joined) = pipeline.joined()
        && report(&tally, &mut display, &joined)? == Shown::ReaderGone
    {
        return Ok(tally.snapshot().summary);
    }
    if options.key.is_some() && options.format == crate::output::Format::Human {
        display.write(&[crate::cmd::chat::SEALED_NOTE.to_string()])?;
    }
    let plain: Box<dyn Handler> = match options.echo {
        Some(rate) => Box::new(Echo::new(pipeline.local_addr(), rate)),
        None => Box::new(Show),
    };
    let mut plan = Plan::receive(Show);
    plan.handler = if options.raw {
        plain
    } else {
        // Messages are shown decoded and acknowledged; the rest as ever.
        let mut receiver = ChatConfig::receiver(SessionId::from_random(entropy::seed()));
        // A group is watched, not joined as a member.
        receiver.silent = options.group.is_some();
        receiver.key = options.key.clone();
        let driver = Driver::new(pipeline.outbox(), receiver)?;
        Box::new(driver.handler(plain))
    };
    plan.limit = options.count;
    pipeline.run(&mut display, shutdown, plan)?;
    report_summary(&tally, &mut display)
}
