//! What happens on a socket, as events ([`Event`]), and the serde form of the
//! `--json` event stream ([`to_json`]).
//!
//! The event is the validated form the rest of dgram uses; the `Wire` enum
//! below is only the JSON shape, kept apart so that the stream's field names
//! (which other tools rely on) cannot drift with internal types.

use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::datagram::{Datagram, Payload, to_hex};
use crate::socket::{BufferSize, Buffers};
use crate::stats::Summary;
use crate::sys::Capabilities;

/// Something to show or count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The socket is bound and configured.
    Listening {
        /// The bound address (with the port the system chose for port 0).
        local: SocketAddr,
        /// `SO_RCVBUF` and `SO_SNDBUF`, requested and effective.
        buffers: Buffers,
        /// The application's receive buffer (`--max-size`).
        max_size: usize,
        /// Which platform extras are on.
        capabilities: Capabilities,
    },
    /// A datagram arrived.
    Datagram(Datagram),
    /// A datagram was sent.
    Sent {
        /// Its destination.
        to: SocketAddr,
        /// Its length in bytes.
        len: usize,
        /// It was an `--echo` reply.
        echo: bool,
    },
    /// The kernel reported new drops: datagrams that found `SO_RCVBUF` full.
    Dropped {
        /// New drops since the last report.
        count: u64,
        /// All drops on this socket so far.
        total: u64,
    },
    /// ICMP port unreachable: nothing is listening at `peer`.
    Unreachable {
        /// The destination that refused.
        peer: SocketAddr,
    },
    /// Another ICMP error about a peer (host or network unreachable, …).
    PeerError {
        /// The destination the error is about.
        peer: SocketAddr,
        /// The error as the OS words it.
        error: String,
    },
    /// The last event: totals for the whole run.
    Summary(Summary),
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Wire<'a> {
    Listening {
        local: SocketAddr,
        rcvbuf: WireBuffer,
        sndbuf: WireBuffer,
        max_size: usize,
        capabilities: Capabilities,
    },
    Datagram {
        time: String,
        from: SocketAddr,
        len: usize,
        truncated: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        original_len: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
    },
    Sent {
        to: SocketAddr,
        len: usize,
        echo: bool,
    },
    Dropped {
        count: u64,
        total: u64,
    },
    Unreachable {
        peer: SocketAddr,
    },
    PeerError {
        peer: SocketAddr,
        error: &'a str,
    },
    Summary(&'a Summary),
}

#[derive(Serialize)]
struct WireBuffer {
    requested: Option<usize>,
    effective: usize,
    clamped: bool,
}

impl From<BufferSize> for WireBuffer {
    fn from(size: BufferSize) -> Self {
        WireBuffer {
            requested: size.requested,
            effective: size.effective,
            clamped: size.clamped(),
        }
    }
}

/// The event as one line of JSON (without the newline).
pub fn to_json(event: &Event) -> String {
    let wire = match event {
        Event::Listening {
            local,
            buffers,
            max_size,
            capabilities,
        } => Wire::Listening {
            local: *local,
            rcvbuf: buffers.rcvbuf.into(),
            sndbuf: buffers.sndbuf.into(),
            max_size: *max_size,
            capabilities: *capabilities,
        },
        Event::Datagram(datagram) => {
            let (text, hex) = match datagram.payload() {
                Payload::Empty => (Some(""), None),
                Payload::Text(text) => (Some(text), None),
                Payload::Binary(bytes) => (None, Some(to_hex(bytes))),
            };
            Wire::Datagram {
                time: DateTime::<Utc>::from(datagram.at)
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
                from: datagram.from,
                len: datagram.len(),
                truncated: datagram.truncated,
                original_len: datagram.original_len,
                text,
                hex,
            }
        }
        Event::Sent { to, len, echo } => Wire::Sent {
            to: *to,
            len: *len,
            echo: *echo,
        },
        Event::Dropped { count, total } => Wire::Dropped {
            count: *count,
            total: *total,
        },
        Event::Unreachable { peer } => Wire::Unreachable { peer: *peer },
        Event::PeerError { peer, error } => Wire::PeerError { peer: *peer, error },
        Event::Summary(summary) => Wire::Summary(summary),
    };
    // Serialising these plain structs cannot fail: no maps with non-string
    // keys, no failing Serialize impls.
    serde_json::to_string(&wire).expect("event serialises to JSON")
}
