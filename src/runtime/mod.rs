//! The moving parts: threads, the send path, and how a run stops.
//!
//! - [`pipeline`]: the one pipeline every command runs on: endpoint,
//!   receiver, the command's job, the display loop, ordered stop.
//! - [`receiver`]: the receiver thread and its [`Handler`] seam.
//! - [`driver`]: the protocol's core ([`crate::proto::Core`]) on the
//!   socket: messages in from the chat's input, datagrams, refusals and
//!   timeouts in from the receiver ([`ChatHandler`](driver::ChatHandler)),
//!   transmits out through the outbox, waiters woken on changes.
//! - [`entropy`]: randomness from the OS, handed to the protocol.
//! - [`echo`]: the `--echo` handler and its per-peer rate limit.
//! - [`mtu`]: a listener's answers to `dgram mtu`'s probes (kinds 14
//!   and 15), in front of the chat handler.
//! - [`outbox`]: the one send path ([`Outbox`]).
//! - [`pacing`]: waiting for a paced send's due time (sleep, then spin).
//! - [`relay`]: a chat's path through its own TURN relay: wrap, unwrap,
//!   refresh.
//! - [`shutdown`]: Ctrl-C, SIGTERM and SIGHUP as a channel ([`Shutdown`]).
//! - [`sorting`]: what a failed receive (or send) means to its loop: retry,
//!   idle, a report about a peer, or a failure; one place for every loop.
//! - [`traverse`]: the path search of `chat --via` on its sockets, before
//!   the chat's pipeline starts.

pub mod driver;
pub mod echo;
pub mod entropy;
pub mod mtu;
pub mod outbox;
pub mod pacing;
pub mod pipeline;
pub mod receiver;
pub mod relay;
pub mod shutdown;
pub mod sorting;
pub mod traverse;

pub use outbox::{Closed, Outbox};
pub use pipeline::{Ended, Job, JobControl, OnInterrupt, Pipeline, Plan, report, report_summary};
pub use receiver::{Handler, Show};
pub use shutdown::{Shutdown, Signal, Trigger};
