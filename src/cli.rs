//! The command line: clap definitions, dispatch, exit codes, and how errors
//! are printed (one line: what failed, why, what to do; usage errors as clap
//! words them). Also `dgram completions` and `dgram man`.

use std::io::{self, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::Error;
use crate::cmd::bench;
use crate::cmd::chat::repl::default_history;
use crate::cmd::chat::{self, ChatIo, ChatOptions};
use crate::cmd::docs;
use crate::cmd::keyfile;
use crate::cmd::lab;
use crate::cmd::listen::{self, ListenOptions};
use crate::cmd::parse;
use crate::cmd::payload::pattern;
use crate::cmd::ping::{self, PingOptions};
use crate::cmd::send::{self, Payloads, SendOptions};
use crate::error::report;
use crate::model::latency::MIN_PROBE;
use crate::net::SocketOptions;
use crate::net::addr::any_port_for;
use crate::net::group::{self, GroupKind, GroupOptions, Iface};
use crate::output::Format;
use crate::output::escape::escape_line;
use crate::output::sink;
use crate::proto::SessionId;
use crate::proto::envelope::valid_name;
use crate::proto::members::HELLO_EVERY;
use crate::proto::rto::{DEFAULT_RETRIES, DEFAULT_RTO_MIN, RtoConfig};
use crate::proto::seal::Key;
use crate::proto::{ChatConfig, Eol};
use crate::runtime::Shutdown;
use crate::runtime::echo::DEFAULT_ECHO_RATE;
use crate::runtime::entropy;

/// A terminal UDP datagram messenger that shows what UDP really does:
/// every sender, every empty or truncated datagram, every kernel drop,
/// every peer that is down.
#[derive(Debug, Parser)]
#[command(name = "dgram", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Bind and show every datagram as it arrives (any number of peers),
    /// until Ctrl-C.
    Listen(ListenArgs),
    /// Send datagrams to ADDR and show the replies.
    Send(SendArgs),
    /// Chat with a peer: each line typed is one message (one datagram;
    /// another dgram acknowledges it, and it is sent again until it does);
    /// what arrives is shown above the prompt.
    Chat(ChatArgs),
    /// Measure round trips to an echo server (dgram listen --echo, socat,
    /// a Python echo): loss, late, duplicated and reordered replies told
    /// apart, percentiles and a histogram.
    Ping(PingArgs),
    /// Measure throughput and loss: dgram bench --serve ADDR receives,
    /// dgram bench ADDR sends; --loopback runs both. Every datagram is
    /// accounted for: received, dropped by the receiver's kernel, or lost
    /// elsewhere.
    Bench(BenchArgs),
    /// Run the experiments that test what socket courses say about UDP,
    /// on loopback: each states a claim, predicts, measures, and gives a
    /// verdict with the evidence.
    Lab(LabArgs),
    /// Write a new random 256-bit key to FILE (mode 0600; never over an
    /// existing file), for --key-file: every member of a chat uses the
    /// same key file.
    Keygen {
        /// Where to write the key.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print dgram's manual page (roff), with every command, on stdout:
    /// dgram man | man -l -
    Man,
}

/// Socket buffer sizes, shared by every command.
#[derive(Debug, Args)]
struct BufferArgs {
    /// Request this SO_RCVBUF (bytes; k/M suffixes). Requested and effective
    /// sizes are shown: Linux doubles requests and caps them at twice
    /// net.core.rmem_max.
    #[arg(long, value_name = "BYTES", value_parser = parse::buffer_size)]
    rcvbuf: Option<usize>,
    /// Request this SO_SNDBUF (bytes; k/M suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse::buffer_size)]
    sndbuf: Option<usize>,
    /// The application's receive buffer: longer datagrams are truncated
    /// (and reported so). 1 to 65535.
    #[arg(long, value_name = "BYTES", default_value = "65535", value_parser = parse::recv_size)]
    max_size: usize,
}

/// Joining a group: multicast or broadcast.
#[derive(Debug, Args)]
struct GroupArgs {
    /// Join this multicast group: IPv4 224.0.0.0/4 such as
    /// 239.1.2.3:5000, or IPv6 such as [ff02::1:2]:5000 (with --iface).
    /// Members on one host share the port.
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr, conflicts_with = "broadcast")]
    group: Option<SocketAddr>,
    /// Use this IPv4 broadcast address as the group, such as
    /// 10.77.0.255:5000 (the subnet's) or 255.255.255.255:5000.
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    broadcast: Option<SocketAddr>,
    /// The interface of the group, by name or address (default: where the
    /// route to the group leads).
    #[arg(long, value_name = "NAME|ADDR")]
    iface: Option<String>,
    /// Multicast TTL (hop limit), 1 to 255; 1 keeps the group on the LAN.
    // The range (1 to 255) is checked with the other group options, which
    // say why in one line.
    #[arg(long, value_name = "N", value_parser = parse::count::<u32>(0, u32::MAX.into()))]
    ttl: Option<u32>,
}

impl GroupArgs {
    /// The group asked for, checked; `None` without --group/--broadcast.
    fn options(&self) -> Result<Option<GroupOptions>, Error> {
        let usage = |message: &str| {
            Err(Error::Usage {
                message: message.to_string(),
            })
        };
        let (addr, kind) = match (self.group, self.broadcast) {
            (Some(addr), _) => (addr, GroupKind::Multicast),
            (None, Some(addr)) => (addr, GroupKind::Broadcast),
            (None, None) if self.iface.is_some() => {
                return usage("--iface picks a group's interface: give --group or --broadcast too");
            }
            (None, None) if self.ttl.is_some() => {
                return usage("--ttl is a multicast group's: give --group too");
            }
            (None, None) => return Ok(None),
        };
        if kind == GroupKind::Broadcast && self.ttl.is_some() {
            return usage("--ttl is for multicast: broadcasts never leave the LAN");
        }
        let options = GroupOptions {
            addr,
            kind,
            iface: self.iface.as_deref().map(Iface::parse),
            ttl: self.ttl.unwrap_or(group::DEFAULT_TTL),
        };
        group::check(&options)?;
        Ok(Some(options))
    }
}

#[derive(Debug, Args)]
struct ListenArgs {
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
    /// are, and send no receipts.
    #[arg(long)]
    raw: bool,
    /// With --echo: at most N replies per second to each peer (bursts of
    /// up to N); replies over the rate are held back and counted, so two
    /// echo servers cannot keep each other busy. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ECHO_RATE, requires = "echo", value_parser = parse::count::<u32>(0, parse::MAX_RATE))]
    echo_rate: u32,
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("payload").args(["text", "empty", "size", "hex"]))]
struct SendArgs {
    /// Destination: IP:PORT, [IPv6]:PORT or HOST:PORT.
    #[arg(value_name = "ADDR", value_parser = parse::peer_addr)]
    addr: SocketAddr,
    /// Send this text as one datagram (its bytes as given, UTF-8 or not).
    /// Without TEXT (or --empty, --size, --hex) each line of stdin becomes
    /// one datagram.
    #[arg(value_name = "TEXT")]
    text: Option<std::ffi::OsString>,
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
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// Who typed lines go to (IP:PORT, [IPv6]:PORT or HOST:PORT). Without
    /// it, use /to ADDR or /reply.
    #[arg(long, value_name = "ADDR", value_parser = parse::peer_addr)]
    peer: Option<SocketAddr>,
    /// Local address (default: with --peer, any address of its family and
    /// a port the system chooses; without, 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// Print what arrives as the JSON events of `dgram listen`.
    #[arg(long)]
    json: bool,
    /// The history file (default: dgram/history in the user's data
    /// directory, such as ~/.local/share/dgram/history).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Keep no history file.
    #[arg(long, conflicts_with = "history")]
    no_history: bool,
    /// With input from a pipe: after its end (and once every message has
    /// its receipt or has failed), wait this long (milliseconds) for
    /// replies before leaving.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = parse::millis(0, parse::MAX_WAIT_MS))]
    linger: u64,
    /// The name sent with each message (default: the login name).
    #[arg(long, value_name = "NAME", value_parser = parse::chat_name)]
    name: Option<String>,
    /// Send a message again at most N times when its receipt does not come.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES, value_parser = parse::count::<u8>(0, 20))]
    retries: u8,
    /// The shortest retransmission timeout, in milliseconds (the timeout is
    /// SRTT + 4 RTTVAR, 1 s before the first round trip is measured).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_RTO_MIN.as_millis() as u64, value_parser = parse::millis(1, 60_000))]
    rto_min: u64,
    /// Line ending added to messages to plain peers (nc -u -l shows one
    /// line per message with lf).
    #[arg(long, value_name = "EOL", default_value = "none", value_parser = ["none", "lf", "crlf"])]
    eol: String,
    /// No chat protocol: every message is plain bytes, no receipts (what
    /// nc and socat do).
    #[arg(long)]
    raw: bool,
    /// The --peer speaks plain UDP from the start (such as nc -u -l, which
    /// cannot speak first); other peers are found out as they speak.
    #[arg(long, requires = "peer", conflicts_with = "raw")]
    plain: bool,
    /// Append every message in and out, with its final state, to FILE as
    /// JSON lines.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    #[command(flatten)]
    group: GroupArgs,
    /// Seal every message, receipt and hello with the key in FILE (from
    /// dgram keygen), and take only datagrams sealed with it: encrypted,
    /// authenticated, replays refused. Every member needs the same file.
    /// A keyed chat keeps no history unless --history is given.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["raw", "plain"])]
    key_file: Option<PathBuf>,
    /// In a group: say hello every MS milliseconds (jittered by ±25%); a
    /// member silent for 3.5 times this is taken to have left.
    #[arg(long, value_name = "MS", default_value_t = HELLO_EVERY.as_millis() as u64, value_parser = parse::millis(100, 600_000))]
    hello: u64,
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
struct LabArgs {
    /// Experiments to run (all when none is named; --list names them).
    #[arg(value_name = "EXPERIMENT")]
    names: Vec<String>,
    /// List the experiments and what each shows.
    #[arg(long)]
    list: bool,
    /// One JSON object per experiment instead of text.
    #[arg(long)]
    json: bool,
    /// Also write a Markdown report with the tables to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Also draw the loss experiment (loss % and datagrams received against
    /// the receive buffer) as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PingArgs {
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
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("role").args(["addr", "loopback"]).required(true))]
struct BenchArgs {
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
    /// as the kernel takes them.
    #[arg(long, short = 'r', value_name = "N", value_parser = parse::rate)]
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
}

/// Raw bytes from `--hex` (a newtype, so that clap takes one value).
#[derive(Debug, Clone)]
struct HexBytes(Vec<u8>);

fn parse_hex(text: &str) -> Result<HexBytes, String> {
    parse::hex(text).map(HexBytes)
}

/// Parses the command line, runs the command, and turns the outcome into
/// an exit status: 0 success, 1 runtime error, 2 usage error, 130/143 when
/// Ctrl-C or SIGTERM cut `send` short.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli.command) {
        // The one place a closed pipe is taken as the end it is, for every
        // command and whichever write met it.
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_reader_gone() => ExitCode::SUCCESS,
        Err(e) => {
            // An interruption has been reported by the command already.
            if !matches!(e, Error::Interrupted { .. }) {
                let _ = writeln!(io::stderr(), "{}", report(&e));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(command: Commands) -> Result<(), Error> {
    match command {
        Commands::Listen(args) => {
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
            let options = ListenOptions {
                socket: socket_options(bind, &args.buffers),
                group,
                max_size: args.buffers.max_size,
                format: Format::json(args.json),
                count: args.count,
                echo: args.echo.then_some(args.echo_rate),
                raw: args.raw,
                coalesce: (!args.json && io::stdout().is_terminal())
                    .then_some(listen::TERMINAL_LINES_PER_SECOND),
                key: args.key_file.as_deref().map(load_key).transpose()?,
            };
            let shutdown = Shutdown::from_signals()?;
            listen::run(&options, &shutdown, &mut sink::stdout()).map(|_| ())
        }
        Commands::Send(args) => {
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
            let options = SendOptions {
                socket: socket_options(bind, &args.buffers),
                to: args.addr,
                payloads,
                count: args.count,
                wait: Duration::from_millis(args.wait),
                max_size: args.buffers.max_size,
                format: Format::json(args.json),
            };
            let shutdown = Shutdown::from_signals()?;
            send::run(options, &shutdown, &mut sink::stdout(), &mut sink::stderr()).map(|_| ())
        }
        Commands::Chat(args) => {
            if let Some(name) = &args.name
                && let Err(message) = parse::check_chat_name(name)
            {
                return Err(Error::Usage { message });
            }
            let group = args.group.options()?;
            if let (Some(group), Some(peer)) = (&group, args.peer) {
                return Err(Error::Usage {
                    message: format!(
                        "--peer {peer} and a group ({}): a group chat talks to every member; leave out --peer",
                        group.addr
                    ),
                });
            }
            let bind = args.bind.unwrap_or_else(|| match (&group, &args.peer) {
                (Some(group), _) => group::unicast_bind_for(group),
                (None, Some(peer)) => any_port_for(peer),
                (None, None) => SocketAddr::from(([127, 0, 0, 1], 9000)),
            });
            // What is typed in a keyed chat is private: no history file
            // unless one is asked for.
            let history = if args.no_history || (args.key_file.is_some() && args.history.is_none())
            {
                None
            } else {
                args.history.or_else(default_history)
            };
            let options = ChatOptions {
                socket: socket_options(bind, &args.buffers),
                peer: args.peer,
                max_size: args.buffers.max_size,
                format: Format::json(args.json),
                history,
                linger: Duration::from_millis(args.linger),
                protocol: ChatConfig {
                    session: SessionId::from_random(entropy::seed()),
                    name: args.name.unwrap_or_else(login_name),
                    rto: RtoConfig {
                        retries: args.retries,
                        min: Duration::from_millis(args.rto_min),
                    },
                    eol: match args.eol.as_str() {
                        "lf" => Eol::Lf,
                        "crlf" => Eol::CrLf,
                        _ => Eol::None,
                    },
                    announce_kinds: true,
                    raw: args.raw,
                    group: group.as_ref().map(|g| g.addr),
                    hello: Duration::from_millis(args.hello),
                    silent: false,
                    key: args.key_file.as_deref().map(load_key).transpose()?,
                },
                group,
                plain_peer: args.plain,
                log: args.log,
            };
            let shutdown = Shutdown::from_signals()?;
            chat::run(&options, &shutdown, ChatIo::Process).map(|_| ())
        }
        Commands::Ping(args) => {
            if args.size < MIN_PROBE {
                return Err(Error::Usage {
                    message: format!(
                        "invalid value '{}' for --size: a probe is at least {MIN_PROBE} bytes (its number and send time)",
                        args.size
                    ),
                });
            }
            let bind = args.bind.unwrap_or_else(|| any_port_for(&args.addr));
            let options = PingOptions {
                socket: socket_options(bind, &args.buffers),
                to: args.addr,
                count: args.count,
                interval: Duration::from_millis(args.interval),
                size: args.size,
                timeout: Duration::from_millis(args.timeout),
                format: Format::json(args.json),
            };
            let shutdown = Shutdown::from_signals()?;
            ping::run(&options, &shutdown, &mut sink::stdout()).map(|_| ())
        }
        Commands::Bench(args) => {
            let format = Format::json(args.json);
            let shutdown = Shutdown::from_signals()?;
            let mut out = sink::stdout();
            if args.serve {
                let addr = args.addr.expect("clap requires ADDR with --serve");
                let options = bench::ServeOptions {
                    socket: socket_options(addr, &args.buffers),
                    format,
                };
                return bench::serve(&options, &shutdown, &mut out);
            }
            if args.size < bench::MIN_SIZE {
                return Err(Error::Usage {
                    message: format!(
                        "invalid value '{}' for --size: a bench datagram is at least {} bytes (its run and number)",
                        args.size,
                        bench::MIN_SIZE
                    ),
                });
            }
            let to = args
                .addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let bind = args.bind.unwrap_or_else(|| any_port_for(&to));
            let options = bench::BenchOptions {
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
                format,
            };
            if args.loopback {
                let server = SocketOptions {
                    bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                    rcvbuf: args.buffers.rcvbuf,
                    sndbuf: None,
                };
                bench::loopback(&options, server, &shutdown, &mut out).map(|_| ())
            } else {
                bench::run(&options, &shutdown, &mut out).map(|_| ())
            }
        }
        Commands::Lab(args) => {
            let options = lab::LabOptions {
                names: args.names,
                list: args.list,
                format: Format::json(args.json),
                report: args.report,
                chart: args.chart,
            };
            lab::run(&options, &mut sink::stdout()).map(|_| ())
        }
        Commands::Keygen { file } => {
            if file.as_os_str() == "-" || file.is_dir() {
                return Err(Error::Usage {
                    message: format!(
                        "keygen writes a new file: {} is not one (give a path such as team.key)",
                        file.display()
                    ),
                });
            }
            keyfile::write_new(&keyfile::generate()?, &file)?;
            let path = escape_line(&file.display().to_string());
            write_stdout(&format!(
                "wrote a new 256-bit key to {path} (mode 0600). Give a copy to each member by a safe channel, then: dgram chat --key-file {path} ...\n"
            ).into_bytes())
        }
        Commands::Completions { shell } => write_stdout(&docs::completions(shell, Cli::command())),
        Commands::Man => write_stdout(&docs::man_page(Cli::command())),
    }
}

/// Reads `--key-file`, warning on stderr when others can read it.
fn load_key(path: &std::path::Path) -> Result<Key, Error> {
    let (key, warning) = keyfile::read(path)?;
    if let Some(warning) = warning {
        let _ = writeln!(io::stderr(), "warning: {}", escape_line(&warning));
    }
    Ok(key)
}

/// The bytes of an argument as the shell gave them (on Unix, any bytes;
/// elsewhere, its text).
fn os_bytes(text: std::ffi::OsString) -> Vec<u8> {
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

/// The login name ($USER, $LOGNAME, else the user database), or "dgram"
/// when none is usable as a chat name.
fn login_name() -> String {
    let from_env = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok());
    #[cfg(unix)]
    let from_db = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name);
    #[cfg(not(unix))]
    let from_db: Option<String> = None;
    from_env
        .chain(from_db)
        .find(|name| valid_name(name))
        .unwrap_or_else(|| "dgram".to_string())
}

/// Writes generated text to stdout (a closed pipe is a quiet end, in
/// [`main`]).
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| Error::WriteOutput { source })
}

fn socket_options(bind: SocketAddr, buffers: &BufferArgs) -> SocketOptions {
    SocketOptions {
        bind,
        rcvbuf: buffers.rcvbuf,
        sndbuf: buffers.sndbuf,
    }
}

/// Prints a clap error as clap words it (which argument is missing, the
/// similar subcommand it suggests, the usage line) and returns its status:
/// 2, or 0 for help and version (1 when they cannot be written). What the
/// user typed is escaped (see [`escaped_usage`]).
fn usage_error(mut error: clap::Error) -> ExitCode {
    if let Some(text) = escaped_usage(&mut error) {
        let _ = io::stderr().write_all(text.as_bytes());
        return ExitCode::from(2);
    }
    let printed = error.print();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match printed {
            Err(source) if source.kind() != io::ErrorKind::BrokenPipe => {
                let _ = writeln!(io::stderr(), "{}", report(&Error::WriteOutput { source }));
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        },
        _ => ExitCode::from(2),
    }
}

/// clap's message with what the user typed escaped, when any of it holds
/// characters that must not reach a terminal as they are (ESC, C1, bidi
/// controls, backspace, line breaks); `None` when nothing does, and clap
/// prints its own message, in color.
///
/// What was typed is in the error's context (the value, the unknown
/// argument) and in the message of dgram's parser it failed (the source),
/// which quotes it again. clap strips escape sequences only when stderr is
/// not a terminal, and C1 and bidi controls never.
fn escaped_usage(error: &mut clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let source = std::error::Error::source(&*error).map(|s| s.to_string());
    let typed: Vec<(ContextKind, ContextValue)> = error
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(text) if escape_line(text) != *text => {
                Some((kind, ContextValue::String(escape_line(text))))
            }
            ContextValue::Strings(texts) if texts.iter().any(|t| escape_line(t) != *t) => Some((
                kind,
                ContextValue::Strings(texts.iter().map(|t| escape_line(t)).collect()),
            )),
            _ => None,
        })
        .collect();
    let source_is_plain = source.as_ref().is_none_or(|s| escape_line(s) == *s);
    if typed.is_empty() && source_is_plain {
        return None;
    }
    for (kind, value) in typed {
        error.insert(kind, value);
    }
    // The source is a line of dgram's own; clap would print it stripped of
    // escape sequences at best, so it is written here as a whole, escaped.
    if let (ErrorKind::ValueValidation, Some(source)) = (error.kind(), &source)
        && let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue)
        && let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg)
    {
        return Some(format!(
            "error: invalid value '{value}' for '{arg}': {}\n\nFor more information, try '--help'.\n",
            escape_line(source)
        ));
    }
    // Anything else: clap's plain text (its line breaks kept), escaped.
    let plain = error.render().to_string();
    Some(
        plain
            .split('\n')
            .map(escape_line)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
