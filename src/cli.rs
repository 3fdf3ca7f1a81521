//! The command line: clap definitions, dispatch, exit codes, and how errors
//! are printed (one line: what failed, why, what to do; usage errors as clap
//! words them). Each command's own options, their checks and the options
//! struct they make live with the command (`ListenArgs` in [`listen`], and
//! so on); the options several share are in
//! [`options`](crate::cmd::options).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use crate::Error;
use crate::cmd::bench::{self, BenchArgs};
use crate::cmd::chat::{self, ChatArgs};
use crate::cmd::docs;
use crate::cmd::keyfile;
use crate::cmd::lab::{self, LabArgs};
use crate::cmd::listen::{self, ListenArgs};
use crate::cmd::mtu::{self, MtuArgs};
use crate::cmd::ping::{self, PingArgs};
use crate::cmd::rendezvous::{self, RendezvousArgs};
use crate::cmd::send::{self, SendArgs};
use crate::error::report;
use crate::output::escape::escape_line;

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
    Chat(Box<ChatArgs>),
    /// Measure round trips to an echo server (dgram listen --echo, socat,
    /// a Python echo): loss, late, duplicated and reordered replies told
    /// apart, percentiles and a histogram.
    Ping(PingArgs),
    /// Find the largest UDP payload that reaches ADDR without IP
    /// fragmentation, each way: don't-fragment probes (IP_PMTUDISC_PROBE),
    /// ICMP "fragmentation needed"/"packet too big" taken as hints and
    /// confirmed by probes, probing alone where no ICMP comes (RFC 8899).
    /// Against dgram listen: forward and reverse; against any other echo
    /// server: the round trip only.
    Mtu(MtuArgs),
    /// Measure throughput and loss: dgram bench --serve ADDR receives,
    /// dgram bench ADDR sends; --loopback runs both. Every datagram is
    /// accounted for: received, dropped by the receiver's kernel, or lost
    /// elsewhere.
    Bench(BenchArgs),
    /// Run the experiments that test what socket courses say about UDP,
    /// on loopback: each states a claim, predicts, measures, and gives a
    /// verdict with the evidence. `dgram lab nat` (root, only when named)
    /// measures what a NAT does to UDP in network namespaces of its own;
    /// `dgram lab fragments` (root, only when named) how one lost IP
    /// fragment loses a whole datagram larger than the path MTU.
    Lab(LabArgs),
    /// Serve the rendezvous two peers meet at by their code's number (and
    /// STUN Binding requests on the same port): a line per pairing, until
    /// SIGTERM or Ctrl-C.
    Rendezvous(RendezvousArgs),
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

/// Runs one command: its module checks its options and runs it.
fn run(command: Commands) -> Result<(), Error> {
    match command {
        Commands::Listen(args) => listen::main(args),
        Commands::Send(args) => send::main(args),
        Commands::Chat(args) => chat::main(*args),
        Commands::Ping(args) => ping::main(args),
        Commands::Mtu(args) => mtu::main(args),
        Commands::Bench(args) => bench::main(args),
        Commands::Lab(args) => lab::main(args),
        Commands::Rendezvous(args) => rendezvous::main(args),
        Commands::Keygen { file } => keyfile::keygen(&file),
        Commands::Completions { shell } => docs::print_completions(shell, Cli::command()),
        Commands::Man => docs::print_man_page(Cli::command()),
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
