//! What the chat protocol adds to the events: messages decoded from
//! envelopes, receipts and their final states, and what was sent.

use std::sync::Arc;

pub use crate::proto::report::{
    ChatMessage, GroupReceipt, MemberChange, MemberEvent, Outcome, Settled,
};

/// What a sent datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentKind {
    /// Plain bytes (a message to a plain peer, `/empty`, `send`, a burst).
    Datagram,
    /// An `--echo` reply.
    Echo,
    /// A chat message in an envelope: try `attempt` of number `seq`.
    Message {
        /// Its sequence number.
        seq: u64,
        /// Which try.
        attempt: u8,
        /// The message (without envelope).
        payload: Arc<[u8]>,
        /// The destination's name, if it has told it.
        name: Option<String>,
    },
    /// A chat message to a plain peer: the bytes typed (plus `--eol`), no
    /// envelope, no receipt.
    Text {
        /// The message as typed (without the line ending added).
        payload: Arc<[u8]>,
    },
    /// A group member's hello (`bye: false`) or bye, to the group or to
    /// one member.
    Presence {
        /// A bye.
        bye: bool,
    },
    /// A receipt for try `attempt` of `seq`.
    Receipt {
        /// The number acknowledged.
        seq: u64,
        /// The try acknowledged.
        attempt: u8,
    },
}
