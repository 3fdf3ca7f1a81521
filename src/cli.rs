//! The command line: clap definitions, dispatch, exit codes, and how errors
//! are printed (one line: what failed, why, what to do).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};

use crate::chat::{self, ChatOptions};
use crate::display::Format;
use crate::error::report;
use crate::listen::{self, ListenOptions};
use crate::parse;
use crate::repl;
use crate::send::{self, Payloads, SendOptions};
use crate::socket::SocketOptions;

/// A terminal UDP datagram messenger that shows what UDP really does:
/// every sender, every empty or truncated datagram, every kernel drop,
/// every peer that is down.
#[derive(Debug, Parser)]
#[command(name = "dgram", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bind and show every datagram as it arrives (any number of peers).
    Listen(ListenArgs),
    /// Send datagrams to ADDR and show the replies.
    Send(SendArgs),
    /// Chat with a peer: each line typed is one datagram; what arrives is
    /// shown above the prompt.
    Chat(ChatArgs),
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

#[derive(Debug, Args)]
struct ListenArgs {
    /// Address to bind: IP:PORT, [IPv6]:PORT ([::] is dual-stack); port 0
    /// lets the system choose.
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000", value_parser = parse::socket_addr)]
    addr: SocketAddr,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Exit (status 0) after N datagrams.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Send every datagram back to its sender unchanged (an echo server).
    #[arg(long)]
    echo: bool,
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("payload").args(["text", "empty", "size", "hex"]))]
struct SendArgs {
    /// Destination: IP:PORT or [IPv6]:PORT.
    #[arg(value_name = "ADDR", value_parser = parse::peer_addr)]
    addr: SocketAddr,
    /// Send this text as one datagram. Without TEXT (or --empty, --size,
    /// --hex) each line of stdin becomes one datagram.
    #[arg(value_name = "TEXT")]
    text: Option<String>,
    /// Send one empty datagram.
    #[arg(long)]
    empty: bool,
    /// Send an N-byte payload (a repeating 0123456789 pattern).
    #[arg(long, value_name = "N", value_parser = parse::byte_count)]
    size: Option<usize>,
    /// Send these raw bytes, written in hex (00ff10, or 00:ff:10).
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    hex: Option<HexBytes>,
    /// Send each datagram N times.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Local address to send from (default: any address, a port the system
    /// chooses).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// After the last datagram, listen this long (milliseconds) for replies
    /// and ICMP errors.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    wait: u64,
    /// Replies and reports as JSON lines (with a "sent" event per datagram).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    buffers: BufferArgs,
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// Who typed lines go to (IP:PORT). Without it, use /to ADDR or /reply.
    #[arg(long, value_name = "ADDR", value_parser = parse::peer_addr)]
    peer: Option<SocketAddr>,
    /// Local address (default: with --peer, any address and a port the
    /// system chooses; without, 127.0.0.1:9000).
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    bind: Option<SocketAddr>,
    /// Print received datagrams as the JSON events of `dgram listen`.
    #[arg(long)]
    json: bool,
    /// The history file (default: dgram/history in the user's data
    /// directory, such as ~/.local/share/dgram/history).
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
    /// Keep no history file.
    #[arg(long, conflicts_with = "history")]
    no_history: bool,
    /// Without a terminal: after end of input, wait this long (milliseconds)
    /// for replies before leaving.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    linger: u64,
    #[command(flatten)]
    buffers: BufferArgs,
}

/// Raw bytes from `--hex` (a newtype, so that clap takes one value).
#[derive(Debug, Clone)]
struct HexBytes(Vec<u8>);

fn parse_hex(text: &str) -> Result<HexBytes, String> {
    parse::hex(text).map(HexBytes)
}

fn format(json: bool) -> Format {
    if json { Format::Json } else { Format::Human }
}

/// Parses the command line, runs the command, and turns the outcome into
/// an exit status: 0 success, 1 runtime error, 2 usage error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Listen(args) => listen::run(&ListenOptions {
            socket: socket_options(args.addr, &args.buffers),
            max_size: args.buffers.max_size,
            format: format(args.json),
            count: args.count,
            echo: args.echo,
        })
        .map(|_| ()),
        Command::Send(args) => {
            let payloads = if let Some(text) = args.text {
                Payloads::Fixed(text.into_bytes())
            } else if args.empty {
                Payloads::Fixed(Vec::new())
            } else if let Some(size) = args.size {
                Payloads::Fixed(crate::datagram::pattern(size))
            } else if let Some(HexBytes(bytes)) = args.hex {
                Payloads::Fixed(bytes)
            } else {
                Payloads::StdinLines
            };
            let bind = args.bind.unwrap_or_else(|| any_port_for(&args.addr));
            send::run(&SendOptions {
                socket: socket_options(bind, &args.buffers),
                to: args.addr,
                payloads,
                count: args.count,
                wait: Duration::from_millis(args.wait),
                max_size: args.buffers.max_size,
                format: format(args.json),
            })
            .map(|_| ())
        }
        Command::Chat(args) => {
            let bind = args.bind.unwrap_or_else(|| match &args.peer {
                Some(peer) => any_port_for(peer),
                None => SocketAddr::from(([127, 0, 0, 1], 9000)),
            });
            let history = if args.no_history {
                None
            } else {
                args.history.or_else(repl::default_history)
            };
            chat::run(&ChatOptions {
                socket: socket_options(bind, &args.buffers),
                peer: args.peer,
                max_size: args.buffers.max_size,
                format: format(args.json),
                history,
                linger: Duration::from_millis(args.linger),
            })
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Any local address of `peer`'s family, with a port the system chooses.
fn any_port_for(peer: &SocketAddr) -> SocketAddr {
    let ip = match peer.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

fn socket_options(bind: SocketAddr, buffers: &BufferArgs) -> SocketOptions {
    SocketOptions {
        bind,
        rcvbuf: buffers.rcvbuf,
        sndbuf: buffers.sndbuf,
    }
}

/// Prints a clap error as one line (help and version go out as clap
/// writes them) and returns its status: 2, or 0 for help and version.
fn usage_error(error: clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(if error.use_stderr() { 2 } else { 0 })
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: invalid usage");
            eprintln!("{first}; see 'dgram --help'");
            ExitCode::from(2)
        }
    }
}
