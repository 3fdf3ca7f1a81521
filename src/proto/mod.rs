//! The dgram chat protocol, without input or output. `docs/PROTOCOL.md`
//! is the specification; [`chat::Core`] is the whole protocol as one
//! state machine, and the runtime's [`driver`](crate::runtime::driver)
//! puts it on a socket. Nothing here reads a clock, touches a socket or a
//! file, starts a thread or draws randomness, and nothing imports from
//! outside `proto`: time, randomness and datagrams are handed in.
//!
//! - [`chat`]: the state machine ([`Core`]): datagrams, refusals, sends
//!   and timers in; transmits, events and its next timeout out.
//! - [`code`]: short codes people can say (`7-clockwork-crossover-ragtime`,
//!   the PGP word list), made from random bytes handed in or parsed from
//!   what was typed, and the password they give the handshake.
//! - [`envelope`]: the wire layout and the validated [`Envelope`].
//! - [`inbound`]: new, reordered, duplicate and missing messages per
//!   sender session ([`Arrivals`]).
//! - [`outbound`]: sequence numbers, messages waiting for receipts,
//!   retransmission and final states ([`Outbound`]).
//! - [`peers`]: the one peer table: a peer is known by its session, its
//!   address is where it was last heard ([`Peers`]).
//! - [`mtu`]: path MTU probes (kinds 14 and 15, section 15): their wire
//!   form, a listener's answer, the prober's search ([`mtu::Search`]).
//! - [`members`]: a group's members (hello, bye, silence) and each group
//!   message's receipts member by member ([`Members`], [`GroupSends`]).
//! - [`rendezvous`]: the rendezvous service (`dgram rendezvous`, section
//!   12): registrations by a code's number, pairs, STUN on the same port,
//!   its limits ([`rendezvous::Service`]).
//! - [`report`]: what the protocol reports (messages, settled receipts,
//!   members, group receipts), wrapped by [`crate::model`]'s events.
//! - [`rto`]: RFC 6298 timers ([`Estimator`], [`backoff`]).
//! - [`random`]: a seeded generator for jitter.
//! - [`bucket`]: a token bucket (echo replies, handshakes without a
//!   cookie, a rendezvous source's datagrams).
//! - [`tokens`]: tokens bound to an address (hello challenges, cookies).
//! - [`secure`]: secure sessions: the handshakes (Noise `NNpsk0` from a key
//!   file or a code's SPAKE2), per-direction keys, secured datagrams.
//! - [`sessions`]: a keyed side's sessions (handshakes begun and answered,
//!   cookies, roaming path checks), fed by [`chat::Core`].
//! - [`code`]: short codes people can say.
//! - [`stun`]: STUN Binding (RFC 8489): decoding, Binding requests and
//!   responses, the 420 error, FINGERPRINT's CRC-32.
//! - [`traverse`]: finding a path through NATs to the other side of a
//!   code (`chat --via`): gathering, the rendezvous, probes, the port
//!   search for a hard NAT, the choice ([`traverse::Traversal`]).
//! - [`turn`]: a TURN client (RFC 8656, long-term credentials): allocate,
//!   permit, bind channels, wrap and unwrap relayed datagrams, refresh
//!   ([`turn::TurnClient`]).
//! - [`seal`]: sealed envelopes (`--key-file`): the key, XChaCha20-Poly1305,
//!   the replay window, the reasons a keyed side refuses a datagram.

pub mod bucket;
pub mod chat;
pub mod code;
pub mod envelope;
pub mod inbound;
pub mod members;
pub mod mtu;
pub mod outbound;
pub mod peers;
pub mod random;
pub mod rendezvous;
pub mod report;
pub mod rto;
pub mod seal;
pub mod secure;
pub mod sessions;
pub mod stun;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod traverse;
pub mod turn;

pub use chat::{ChatConfig, ChatEvent, Core, Entropy, Eol, Handover, SendError, SentAs, Transmit};
pub use envelope::{Ack, Decoded, Envelope, Malformed, Message, Presence, SessionId};
pub use inbound::{Arrival, Arrivals};
pub use members::{GroupSend, GroupSends, Heard, Member, Members};
pub use outbound::{Acked, Due, Outbound, Pending};
pub use peers::{PeerId, Peers};
pub use rto::{Estimator, RtoConfig, backoff};
