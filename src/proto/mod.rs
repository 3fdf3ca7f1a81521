//! The dgram chat protocol, without input or output: the envelope, the
//! receive-side sequence accounting, the send-side pending table and its
//! timers. `docs/PROTOCOL.md` is the specification; the runtime's
//! [`messenger`](crate::runtime::messenger) puts these parts on a socket.
//!
//! - [`envelope`]: the wire layout and the validated [`Envelope`].
//! - [`inbound`]: new, reordered, duplicate and missing messages per
//!   sender session ([`Arrivals`]).
//! - [`outbound`]: sequence numbers, messages waiting for receipts,
//!   retransmission and final states ([`Outbound`]).
//! - [`members`]: a group's members (hello, bye, silence) and each group
//!   message's receipts member by member ([`Members`], [`GroupSends`]).
//! - [`rto`]: RFC 6298 timers ([`Estimator`], [`backoff`]).
//! - [`random`]: session ids and jitter.
//! - [`seal`]: sealed envelopes (`--key-file`): the key, XChaCha20-Poly1305,
//!   the replay window, the reasons a keyed side refuses a datagram.

pub mod envelope;
pub mod inbound;
pub mod members;
pub mod outbound;
pub mod random;
pub mod rto;
pub mod seal;

pub use envelope::{Decoded, Envelope, Malformed, Message, Presence, Receipt, SessionId};
pub use inbound::{Arrival, Arrivals};
pub use members::{GroupSend, GroupSends, Heard, Member, Members};
pub use outbound::{Acked, Due, Outbound, Pending};
pub use rto::{Estimator, RtoConfig, backoff};
