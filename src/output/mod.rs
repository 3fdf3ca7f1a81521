//! How dgram shows things.
//!
//! - [`display`]: the display end of a command: count, render, write.
//! - [`render`]: human lines for events and peer transitions.
//! - [`escape`]: escaping of what peers send (Unicode classes, quoting,
//!   hex), and payload previews.
//! - [`json`]: the `--json` wire schema, apart from the internal types.
//! - [`sink`]: where lines go (stdout, stderr, rustyline's external
//!   printer, memory).

pub mod display;
pub mod escape;
pub mod fast;
pub mod json;
pub mod render;
pub mod sink;

pub use display::{Display, Shown};
pub use render::{Format, Renderer};
pub use sink::Sink;
