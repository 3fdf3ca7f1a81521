//! `dgram listen`: bind, show every datagram as it arrives (dgram chat
//! messages decoded and acknowledged, `dgram mtu`'s probes answered),
//! optionally echo plain datagrams back, and print a summary on exit.

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::options::{self, BufferArgs, GroupArgs, PcapArgs, load_key};
use super::parse;
use crate::Error;
use crate::model::{Security, Summary};
use crate::net::SocketOptions;
use crate::net::capture::Capture;
use crate::net::group::{self, GroupOptions};
use crate::output::{Display, Format, Renderer, Shown, Sink, sink};
use crate::proto::seal::Key;
use crate::proto::{ChatConfig, SessionId};
use crate::runtime::driver::Driver;
use crate::runtime::echo::{DEFAULT_ECHO_RATE, Echo};
use crate::runtime::entropy;
use crate::runtime::mtu::MtuAnswers;
use crate::runtime::{Handler, Pipeline, Plan, Show, Shutdown, report, report_summary};

/// The command line of `dgram listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to bind: IP:PORT, [IPv6]:PORT ([::] is dual-stack) or
    /// HOST:PORT; port 0 lets the system choose. Default 127.0.0.1:9000.
    /// Not with --group or --broadcast (the group's port is shared; the
    /// watcher's own socket takes the interface's address).
    #[arg(value_name = "ADDR", value_parser = parse::socket_addr)]
    addr: Option<SocketAddr>,
    #[command(flatten)]
    group: GroupArgs,
    /// Take only dgram envelopes sealed with the key in FILE (from dgram
    /// keygen), and seal the receipts; everything else is refused and
    /// counted.
    #[arg(long, value_name = "FILE", conflicts_with = "raw")]
    key_file: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Exit (status 0) after N datagrams.
    #[arg(long, value_name = "N", value_parser = parse::count::<u64>(1, parse::MAX_COUNT))]
    count: Option<u64>,
    /// Send every datagram back to its sender unchanged (an echo server).
    /// dgram chat messages are acknowledged instead (unless --raw).
    #[arg(long)]
    echo: bool,
    /// No chat protocol: show dgram envelopes as the raw datagrams they
    /// are, and send no receipts (nor answers to dgram mtu's probes).
    #[arg(long)]
    raw: bool,
    /// With --echo: at most N replies per second to each peer (bursts of
    /// up to N); replies over the rate are held back and counted, so two
    /// echo servers cannot keep each other busy. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ECHO_RATE, requires = "echo", value_parser = parse::count::<u32>(0, parse::MAX_RATE))]
    echo_rate: u32,
    /// Wait for datagrams by spinning on a non-blocking receive instead of
    /// sleeping in the kernel: an echo answers without a wake-up on the
    /// round trip (the other side of `ping --busy-poll`), for a whole CPU
    /// kept busy while it runs. Linux; elsewhere receives wait as usual.
    #[arg(long)]
    busy_poll: bool,
    #[command(flatten)]
    buffers: BufferArgs,
    #[command(flatten)]
    pcap: PcapArgs,
}

/// `dgram listen` as the command line asks for it: on stdout, until
/// Ctrl-C or SIGTERM.
pub fn main(args: ListenArgs) -> Result<(), Error> {
    let options = ListenOptions::from_args(&args)?;
    let shutdown = Shutdown::from_signals()?;
    run(&options, &shutdown, &mut sink::stdout()).map(|_| ())
}

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
    /// `--busy-poll`: spin on the socket instead of sleeping in a receive.
    pub busy_poll: bool,
    /// `--pcap`: where every datagram in and out is recorded.
    pub pcap: Option<PathBuf>,
}

impl ListenOptions {
    /// The options of the command line, checked (a group is watched from
    /// its own port; a watcher does not echo), with the key file read.
    pub fn from_args(args: &ListenArgs) -> Result<Self, Error> {
        let group = args.group.options()?;
        if group.is_some() && args.echo {
            return Err(Error::Usage {
                message: "--echo and a group: a watcher sends nothing (a group's members acknowledge each message themselves)".to_string(),
            });
        }
        let bind = match (&group, args.addr) {
            (Some(_), Some(addr)) => {
                return Err(Error::Usage {
                    message: format!(
                        "{addr}: with --group or --broadcast, the group is the address to listen on (its port is shared); use --iface to choose where"
                    ),
                });
            }
            (Some(group), None) => group::unicast_bind_for(group),
            (None, addr) => addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
        };
        Ok(ListenOptions {
            socket: args.buffers.socket(bind),
            group,
            max_size: args.buffers.max_size,
            format: Format::json(args.json),
            count: args.count,
            echo: args.echo.then_some(args.echo_rate),
            raw: args.raw,
            coalesce: (!args.json && io::stdout().is_terminal())
                .then_some(TERMINAL_LINES_PER_SECOND),
            key: args.key_file.as_deref().map(load_key).transpose()?,
            busy_poll: args.busy_poll,
            pcap: args.pcap.pcap.clone(),
        })
    }
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
    let capture = options::open_capture(options.pcap.as_deref())?;
    let result = listen(options, capture.clone(), shutdown, out);
    options::finish_capture(capture.as_ref(), result)
}

/// [`run`] with the capture open.
fn listen(
    options: &ListenOptions,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<Summary, Error> {
    let pipeline = match &options.group {
        Some(group) => Pipeline::open_group(&options.socket, options.max_size, group)?,
        None => Pipeline::open(&options.socket, options.max_size)?,
    };
    pipeline.capture_to(capture);
    let mut display = Display::new(Renderer::new(options.format), out);
    if let Some(per_second) = options.coalesce {
        display = display.coalesce(per_second);
    }
    let tally = pipeline.tally();
    if report(
        &tally,
        &mut display,
        &pipeline.listening(Security::of(
            options.key.is_some(),
            false,
            options.group.is_some(),
        )),
    )? == Shown::ReaderGone
    {
        return Ok(tally.snapshot().summary);
    }
    if let Some(joined) = pipeline.joined()
        && report(&tally, &mut display, &joined)? == Shown::ReaderGone
    {
        return Ok(tally.snapshot().summary);
    }
    if options.key.is_some() && options.format == crate::output::Format::Human {
        let note = if options.group.is_some() {
            crate::cmd::chat::SEALED_NOTE
        } else {
            crate::cmd::chat::SESSION_NOTE
        };
        display.write(&[note.to_string()])?;
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
        let chat: Box<dyn Handler> = Box::new(driver.handler(plain));
        if options.key.is_some() {
            // A keyed listener takes only sealed envelopes: probes are
            // refused like any other clear datagram.
            chat
        } else {
            // `dgram mtu`'s probes (kinds 14 and 15) are answered before
            // the chat protocol sees them.
            Box::new(MtuAnswers::new(chat))
        }
    };
    plan.limit = options.count;
    plan.busy_poll = options.busy_poll;
    pipeline.run(&mut display, shutdown, plan)?;
    report_summary(&tally, &mut display)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The listener's options as a command line of their own.
    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: ListenArgs,
    }

    fn options(words: &[&str]) -> Result<ListenOptions, Error> {
        let line = Line::try_parse_from(std::iter::once("listen").chain(words.iter().copied()))
            .expect("a valid command line");
        ListenOptions::from_args(&line.args)
    }

    /// A listener binds 127.0.0.1:9000 unless told; a group watcher binds
    /// its own socket and listens on the group's port, so an address with
    /// a group, or --echo with one, is a usage error.
    #[test]
    fn a_group_watcher_takes_no_address_and_sends_nothing() {
        let bind = |words: &[&str]| options(words).expect("valid").socket.bind.to_string();
        assert_eq!(bind(&[]), "127.0.0.1:9000");
        assert_eq!(bind(&["[::1]:0"]), "[::1]:0");
        assert_eq!(bind(&["--group", "239.1.2.3:5000"]), "0.0.0.0:0");
        for words in [
            &["127.0.0.1:5000", "--group", "239.1.2.3:5000"][..],
            &["--group", "239.1.2.3:5000", "--echo"],
        ] {
            assert!(
                matches!(options(words), Err(Error::Usage { .. })),
                "{words:?}"
            );
        }
    }
}
