//! Secure sessions (PROTOCOL.md section 10): a handshake from a key file
//! or a short code opens a session with one key per direction, replaced
//! as it ages; nothing here reads a clock or draws randomness (seeds and
//! times are handed in).
//!
//! - [`wire`]: the handshake's datagrams (kind 6) and secured datagrams
//!   (kind 7), as bytes.
//! - [`handshake`]: the key-file (Noise `NNpsk0`) and code (SPAKE2, then
//!   Noise `NNpsk0`) handshakes, step by step.
//! - [`channel`]: a session's transport: per-direction keys, rekeying,
//!   replay windows.

pub mod channel;
pub mod handshake;
pub mod wire;

#[cfg(test)]
mod vectors;

pub use channel::{Channel, CipherKey, RekeyLimits};
pub use handshake::{CodeResponder, Established, Initiator, Refusal, Secret, respond_key_file};
pub use wire::{Handshake, Method, Step};
