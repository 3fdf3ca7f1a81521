//! What the chat protocol adds to the events: messages decoded from
//! envelopes, receipts and their final states, and what was sent.

pub use crate::proto::chat::SentKind;
pub use crate::proto::report::{
    ChatMessage, GroupReceipt, MemberChange, MemberEvent, Outcome, Settled,
};
