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
//! The layers, from the socket up; each folder's `mod.rs` maps its files.
//!
//! - [`net`]: the socket and what the kernel allows.
//!   [`endpoint`](net::endpoint) (the socket2 socket, buffers set and read
//!   back, a send that survives ICMP refusals), [`capture`](net::capture)
//!   (`--pcap`: every datagram in and out as a pcap file),
//!   [`addr`](net::addr) (address
//!   families, local addresses), [`limits`](net::limits) (payload and buffer
//!   limits), [`group`](net::group) (multicast and broadcast groups: a
//!   member's own socket and the shared group socket, interfaces, `/why`),
//!   [`sys`](net::sys) (Linux extras and the portable fallback), `netns`
//!   (Linux build only: network namespaces of dgram's own for
//!   `dgram lab nat` and `lab fragments`, entered with `setns(2)`, removed on drop).
//! - [`model`]: what dgram knows. [`datagram`](model::datagram),
//!   [`chat`](model::chat) (messages, receipts, what was sent),
//!   [`latency`](model::latency) (ping's probes, replies, percentiles),
//!   [`pacing`](model::pacing) (a paced sender's schedule and its
//!   deviations), [`bench`](mod@model::bench) (bench datagrams, sequence tracking, the
//!   report's accounting), [`lab`](mod@model::lab) (an experiment's claim,
//!   table, verdict and facts),
//!   [`event`](model::event) (events and the summary), [`peers`](model::peers)
//!   (the one peer table and its transitions).
//! - [`proto`]: the chat protocol without input or output (its
//!   specification is `docs/PROTOCOL.md`). [`chat`](proto::chat) (the
//!   whole protocol as one state machine, [`Core`](proto::Core): datagrams,
//!   refusals, sends and timeouts in; transmits, events, its next timeout
//!   out), [`envelope`](proto::envelope) (the wire layout and the validated
//!   envelope), [`inbound`](proto::inbound) (new, reordered, duplicate and
//!   missing messages), [`outbound`](proto::outbound) (sequence numbers,
//!   pending messages, final states), [`members`](proto::members) (a
//!   group's members and each group message's receipts, member by member),
//!   [`report`](proto::report) (what the protocol reports),
//!   [`seal`](proto::seal) (sealed envelopes: the key, XChaCha20-Poly1305,
//!   the replay window, refusals), [`rto`](proto::rto) (RFC 6298 timers),
//!   [`random`](proto::random) (a seeded generator for jitter),
//!   [`stun`](proto::stun) (STUN Binding, RFC 8489),
//!   [`turn`](proto::turn) (a TURN client, RFC 8656: a relay's
//!   allocation, permissions, channels),
//!   [`rendezvous`](proto::rendezvous) (the rendezvous service: pairs by a
//!   code's number, STUN on the same port, its limits),
//!   [`mtu`](proto::mtu) (path MTU probes, kinds 14 and 15: their wire
//!   form, a listener's answer, the prober's RFC 8899 search),
//!   [`code`](proto::code) (short codes people can say, `--code`: the
//!   word list, making, parsing, the handshake's password),
//!   [`secure`](proto::secure) (secure sessions: handshake datagrams, Noise
//!   `NNpsk0` from a key file or a code's SPAKE2, per-direction keys with
//!   rekeying, path checks), [`sessions`](proto::sessions) (a keyed side's
//!   sessions: handshakes, cookies, roaming), [`tokens`](proto::tokens)
//!   (tokens bound to an address: hello challenges, cookies).
//! - [`runtime`]: the moving parts. [`pipeline`](runtime::pipeline) (endpoint,
//!   receiver, job, display loop, ordered stop; a plan without a job runs
//!   on one thread), [`receiver`](runtime::receiver)
//!   (the receiver thread and its handler seam), [`driver`](runtime::driver)
//!   (the protocol's core on the socket: fed by the chat's input and the
//!   receiver, drained into the outbox, waiters woken on changes),
//!   [`entropy`](runtime::entropy) (randomness from the OS, handed to the
//!   protocol),
//!   [`echo`](runtime::echo) (the echo handler and its rate limit),
//!   [`mtu`](runtime::mtu) (a listener's answers to `dgram mtu`'s probes),
//!   [`outbox`](runtime::outbox) (the one send path),
//!   [`pacing`](runtime::pacing) (waiting for a paced send's due time),
//!   [`shutdown`](runtime::shutdown) (signals as a channel),
//!   [`sorting`](runtime::sorting) (what a failed receive means: retry,
//!   idle, a peer's report, a failure; for every receive loop).
//! - [`output`]: how things are shown. [`display`](output::display) (hold,
//!   render, write), [`render`](output::render) (human lines),
//!   [`escape`](output::escape) (escaping and previews of what peers send),
//!   [`fast`](output::fast) (numbers, addresses, times and JSON strings
//!   written straight into the output buffer),
//!   [`json`](output::json) (the `--json` wire schema), [`sink`](output::sink)
//!   (stdout, stderr, rustyline's printer, memory).
//! - [`cmd`]: the commands (`listen`, `send` and `chat` on the pipeline;
//!   `ping`, `mtu`, `bench`, `lab` and `rendezvous` on sockets of their own), each with its
//!   command line (clap's `Args`), the checks clap cannot make and the
//!   options they build.
//!   [`listen`](cmd::listen), [`send`](cmd::send), [`chat`](cmd::chat)
//!   (options, REPL, commands, session, terminal), [`ping`](cmd::ping) (round trips
//!   on one thread), [`mtu`](cmd::mtu) (the largest datagram that crosses
//!   whole, each way), [`bench`](mod@cmd::bench) (throughput and loss: server,
//!   client, loopback, GSO/GRO), [`lab`](mod@cmd::lab) (the experiments
//!   of `dgram lab`, their text, Markdown and SVG; `lab nat` and `lab
//!   fragments` in network namespaces),
//!   [`rendezvous`](cmd::rendezvous) (the rendezvous service on a
//!   socket), [`docs`](cmd::docs) (completions,
//!   the manual page), [`payload`](cmd::payload) (patterns, the line reader),
//!   [`parse`](cmd::parse) (what users type), [`options`](cmd::options)
//!   (the options several commands share: buffers, a group, a key file),
//!   [`keyfile`](cmd::keyfile) (key files and new keys: the file and OS
//!   side of `--key-file`; `dgram keygen`),
//!   [`files`](cmd::files) (the local files users name: regular files
//!   only, opened without blocking, no directories made).
//! - [`cli`]: the command line: parses it (clap: the commands, each
//!   command's options from its module), calls the command's `main`, and
//!   turns the outcome into an exit status and one printed error;
//!   `main.rs` only calls [`cli::main`].
//! - [`error`]: the [`Error`] type; one variant per operation that can fail.
//!
//! # Platform support
//!
//! On Linux every feature is present. Elsewhere dgram builds and runs with
//! the portable fallback of [`net::sys`]: truncation is still detected (the
//! `MSG_TRUNC` flag of `recvmsg`), but the true length of a truncated
//! datagram, the kernel drop count, ICMP refusals and kernel timestamps are
//! not reported; the `listening` event says which of these are available.
//! The `portable` cargo feature selects the fallback on Linux too, so that it
//! can be built and tested here.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod cmd;
pub mod error;
pub mod model;
pub mod net;
pub mod output;
pub mod proto;
pub mod runtime;

pub use error::Error;
