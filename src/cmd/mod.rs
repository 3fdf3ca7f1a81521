//! The commands. Each command's module holds its command line (clap's
//! `Args`), the checks clap cannot make, the options struct they make, and
//! the `main` that [`crate::cli`] calls. `listen`, `send` and `chat` are
//! thin users of the [pipeline](crate::runtime::Pipeline); `ping` runs its
//! round trips on one thread, and `bench` and `lab` drive their sockets
//! themselves (see their module docs for why).
//!
//! - [`listen`]: `dgram listen`.
//! - [`send`]: `dgram send`.
//! - [`chat`]: `dgram chat` (its options, REPL, commands, session,
//!   terminal).
//! - [`ping`]: `dgram ping`: round trips to an echo server.
//! - [`bench`](mod@bench): `dgram bench`: throughput and loss, every datagram
//!   accounted for (a server, a client, or both in one process).
//! - [`lab`](mod@lab): `dgram lab`: the experiments.
//! - [`mtu`]: `dgram mtu`: the largest UDP payload that crosses a path
//!   whole, each way (the search is [`crate::proto::mtu`]'s).
//! - [`rendezvous`]: `dgram rendezvous`: the service peers meet at by a
//!   code's number, and STUN on the same port (a socket, a loop, the
//!   operator's lines; the rules are [`crate::proto::rendezvous`]'s).
//! - [`docs`]: `dgram completions` and `dgram man`.
//! - [`options`]: the options several commands share (socket buffers, a
//!   group, a key file, a `--pcap` capture).
//! - [`payload`]: the `--size` pattern and the line reader.
//! - [`parse`]: what users type: addresses, sizes, hex.
//! - [`keyfile`]: key files (`--key-file`, `dgram keygen`), new keys and
//!   the `dgram keygen` command.
//! - [`files`]: local files named on the command line: regular files
//!   only, nothing that blocks, no directories made.

pub mod bench;
pub mod chat;
pub mod docs;
pub mod files;
pub mod keyfile;
pub mod lab;
pub mod listen;
pub mod mtu;
pub mod options;
pub mod parse;
pub mod payload;
pub mod ping;
pub mod rendezvous;
pub mod send;
