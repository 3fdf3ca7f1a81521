//! dgram: a terminal UDP datagram messenger that shows what UDP really does.
//!
//! Every datagram is shown with its sender and its length; empty datagrams
//! are real messages; a datagram cut short by the application's receive buffer
//! is marked truncated (with its true length where the platform tells it); the
//! datagrams the kernel dropped because `SO_RCVBUF` was full are counted; an
//! ICMP port-unreachable answer is reported against the peer that is down, and
//! never ends a receive loop or a sender.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap), exit codes and how errors are printed.
//!   `main.rs` only calls [`cli::main`].
//! - [`parse`]: parsing of addresses, byte sizes and hex payloads, with
//!   messages that say what to type instead.
//! - [`error`]: the [`Error`] type; one variant per operation that can fail.
//! - [`socket`]: the socket2 socket ([`socket::Endpoint`]): bind, `SO_RCVBUF`
//!   and `SO_SNDBUF` set and read back, sends that survive an ICMP refusal.
//! - [`sys`]: the platform module. Linux extras (`MSG_TRUNC`, `SO_RXQ_OVFL`,
//!   `SO_MEMINFO`, `IP_RECVERR` and the socket error queue) live here, with a
//!   portable fallback for every other platform.
//! - [`datagram`]: the validated received datagram and how its payload reads
//!   (text or bytes).
//! - [`event`]: what the receiver reports ([`event::Event`]) and the serde
//!   form of the `--json` event stream.
//! - [`receiver`]: the named receiver thread: `recv_from`, echo replies, error
//!   sorting, kernel drop accounting.
//! - [`stats`]: counters folded from events (summary, per-peer figures).
//! - [`display`]: how an event reads on a terminal (escaped) or as JSON.
//! - [`shutdown`]: Ctrl-C and SIGTERM as a channel.
//! - [`listen`] and [`send`]: the `dgram listen` and `dgram send` commands.
//! - [`chat`]: the `dgram chat` command: its threads and how they stop.
//! - [`repl`]: the chat's input: rustyline (history, completion) on a
//!   terminal, plain lines from a pipe.
//! - [`command`]: what a typed line means: a message or a `/command`.
//! - [`session`]: the chat's sending side: current peer, commands run.
//!
//! # Platform support
//!
//! On Linux every feature is present. Elsewhere dgram builds and runs with
//! the portable fallback of [`sys`]: truncation is still detected (the
//! `MSG_TRUNC` flag of `recvmsg`), but the true length of a truncated
//! datagram, the kernel drop count and ICMP refusals are not reported; the
//! `listening` event says which of these are available.
//! The `portable` cargo feature selects the fallback on Linux too, so that it
//! can be built and tried here.

pub mod chat;
pub mod cli;
pub mod command;
pub mod datagram;
pub mod display;
pub mod error;
pub mod event;
pub mod listen;
pub mod parse;
pub mod receiver;
pub mod repl;
pub mod send;
pub mod session;
pub mod shutdown;
pub mod socket;
pub mod stats;
pub mod sys;

pub use error::Error;
