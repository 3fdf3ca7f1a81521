//! The `--json` event stream: its wire shapes, kept apart from the
//! validated [`Event`] so that the field names other tools rely on are
//! written down here, once, and pinned by the golden tests below.
//!
//! One JSON object per line; `event` names the kind. Strings are escaped as
//! JSON requires, and further: every character that must not reach a
//! terminal raw (C1 controls such as U+009B, DEL, bidirectional overrides,
//! invisible characters; see [`is_hidden`]) is written as a `\uXXXX`
//! escape, so that `--json` on a terminal is as safe as the human lines.
//! The decoded strings are unchanged.

use std::io;
use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::escape::{is_hidden, to_hex};
use crate::model::{EchoSkip, Event, Summary};
use crate::net::addr::PortState;
use crate::net::{BufferSize, Capabilities};

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Wire<'a> {
    Listening {
        local: SocketAddr,
        rcvbuf: WireBuffer,
        sndbuf: WireBuffer,
        max_size: usize,
        capabilities: WireCapabilities,
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
    EchoSkipped {
        peer: SocketAddr,
        len: usize,
        reason: &'static str,
    },
    LineSkipped {
        line: u64,
        len: u64,
        limit: usize,
    },
    Dropped {
        count: u64,
        total: u64,
    },
    Unreachable {
        peer: SocketAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        port_in_use: Option<bool>,
    },
    PeerError {
        peer: SocketAddr,
        error: &'a str,
    },
    Summary(WireSummary),
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

#[derive(Serialize)]
struct WireCapabilities {
    true_length: bool,
    drop_count: bool,
    icmp_errors: bool,
    kernel_timestamps: bool,
}

impl From<Capabilities> for WireCapabilities {
    fn from(c: Capabilities) -> Self {
        WireCapabilities {
            true_length: c.true_length,
            drop_count: c.drop_count,
            icmp_errors: c.icmp_errors,
            kernel_timestamps: c.kernel_timestamps,
        }
    }
}

#[derive(Serialize)]
struct WireSummary {
    received: u64,
    bytes: u64,
    empty: u64,
    truncated: u64,
    dropped: u64,
    unreachable: u64,
    sent: u64,
    sent_bytes: u64,
    echo_skipped: u64,
    skipped_lines: u64,
}

impl From<Summary> for WireSummary {
    fn from(s: Summary) -> Self {
        WireSummary {
            received: s.received,
            bytes: s.bytes,
            empty: s.empty,
            truncated: s.truncated,
            dropped: s.dropped,
            unreachable: s.unreachable,
            sent: s.sent,
            sent_bytes: s.sent_bytes,
            echo_skipped: s.echo_skipped,
            skipped_lines: s.skipped_lines,
        }
    }
}

/// The event as one line of JSON (without the newline).
pub fn to_line(event: &Event) -> String {
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
            capabilities: (*capabilities).into(),
        },
        Event::Datagram(datagram) => {
            let (text, hex) = match datagram.text() {
                Some(text) => (Some(text), None),
                None => (None, Some(to_hex(&datagram.payload))),
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
        Event::EchoSkipped { peer, len, reason } => Wire::EchoSkipped {
            peer: *peer,
            len: *len,
            reason: match reason {
                EchoSkip::RateLimited => "rate_limited",
                EchoSkip::OwnAddress => "own_address",
                EchoSkip::Truncated => "truncated",
            },
        },
        Event::LineSkipped { line, len, limit } => Wire::LineSkipped {
            line: *line,
            len: *len,
            limit: *limit,
        },
        Event::Dropped { count, total } => Wire::Dropped {
            count: *count,
            total: *total,
        },
        Event::Unreachable { peer, port } => Wire::Unreachable {
            peer: *peer,
            port_in_use: match port {
                PortState::Free => Some(false),
                PortState::InUse => Some(true),
                PortState::Unknown => None,
            },
        },
        Event::PeerError { peer, error } => Wire::PeerError { peer: *peer, error },
        Event::Summary(summary) => Wire::Summary((*summary).into()),
    };
    let mut line = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, TerminalSafe);
    // Serialising these plain structs into memory cannot fail: no maps with
    // non-string keys, no failing Serialize impls.
    wire.serialize(&mut serializer)
        .expect("event serialises to JSON");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// serde_json's compact format, with hidden characters escaped too.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_hidden(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    //! Golden tests: one per event kind, pinning every field name, type
    //! and the order they are written in.

    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::Datagram;
    use crate::net::Buffers;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456)
    }

    #[test]
    fn listening() {
        let event = Event::Listening {
            local: addr("127.0.0.1:9000"),
            buffers: Buffers {
                rcvbuf: BufferSize {
                    requested: Some(4096),
                    effective: 8192,
                },
                sndbuf: BufferSize {
                    requested: None,
                    effective: 212992,
                },
            },
            max_size: 65535,
            capabilities: Capabilities {
                true_length: true,
                drop_count: true,
                icmp_errors: false,
                kernel_timestamps: true,
            },
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"listening","local":"127.0.0.1:9000","rcvbuf":{"requested":4096,"effective":8192,"clamped":false},"sndbuf":{"requested":null,"effective":212992,"clamped":false},"max_size":65535,"capabilities":{"true_length":true,"drop_count":true,"icmp_errors":false,"kernel_timestamps":true}}"#
        );
    }

    #[test]
    fn datagram_text_hex_empty_truncated() {
        let datagram = |payload: &[u8], truncated, original_len| {
            Event::Datagram(Datagram {
                at: at(),
                from: addr("[::1]:5000"),
                payload: payload.to_vec(),
                truncated,
                original_len,
            })
        };
        assert_eq!(
            to_line(&datagram(b"hi\n\"x\"", false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":6,"truncated":false,"text":"hi\n\"x\""}"#
        );
        assert_eq!(
            to_line(&datagram(&[0, 0xff], false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":2,"truncated":false,"hex":"00ff"}"#
        );
        assert_eq!(
            to_line(&datagram(b"", false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":0,"truncated":false,"text":""}"#
        );
        assert_eq!(
            to_line(&datagram(b"0123", true, Some(2000))),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":4,"truncated":true,"original_len":2000,"text":"0123"}"#
        );
        // Characters that could drive or fool a terminal are \u escapes
        // (C1 CSI, DEL, RIGHT-TO-LEFT OVERRIDE, a tag character); the text
        // decodes to the same string.
        let sneaky = "a\u{9b}2J\u{7f}\u{202e}b\u{e0041}é";
        let line = to_line(&datagram(sneaky.as_bytes(), false, None));
        assert_eq!(
            line,
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":16,"truncated":false,"text":"a\u009b2J\u007f\u202eb\udb40\udc41é"}"#
        );
        let decoded: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(decoded["text"], sneaky);
        // Cut through a character: not valid UTF-8, so hex.
        assert_eq!(
            to_line(&datagram(&"你".as_bytes()[..2], true, Some(3))),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":2,"truncated":true,"original_len":3,"hex":"e4bd"}"#
        );
    }

    #[test]
    fn sent() {
        let event = Event::Sent {
            to: addr("127.0.0.1:9"),
            len: 5,
            echo: true,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":true}"#
        );
    }

    #[test]
    fn echo_skipped() {
        let event = |reason| Event::EchoSkipped {
            peer: addr("127.0.0.1:9"),
            len: 3,
            reason,
        };
        assert_eq!(
            to_line(&event(EchoSkip::RateLimited)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"rate_limited"}"#
        );
        assert_eq!(
            to_line(&event(EchoSkip::OwnAddress)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"own_address"}"#
        );
        assert_eq!(
            to_line(&event(EchoSkip::Truncated)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"truncated"}"#
        );
    }

    #[test]
    fn line_skipped() {
        let event = Event::LineSkipped {
            line: 2,
            len: 70000,
            limit: 65507,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"line_skipped","line":2,"len":70000,"limit":65507}"#
        );
    }

    #[test]
    fn dropped() {
        let event = Event::Dropped {
            count: 997,
            total: 1000,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"dropped","count":997,"total":1000}"#
        );
    }

    #[test]
    fn unreachable_and_peer_error() {
        let unreachable = |port| Event::Unreachable {
            peer: addr("127.0.0.1:9"),
            port,
        };
        assert_eq!(
            to_line(&unreachable(PortState::Free)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9","port_in_use":false}"#
        );
        assert_eq!(
            to_line(&unreachable(PortState::InUse)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9","port_in_use":true}"#
        );
        assert_eq!(
            to_line(&unreachable(PortState::Unknown)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9"}"#
        );
        assert_eq!(
            to_line(&Event::PeerError {
                peer: addr("127.0.0.1:9"),
                error: "No route to host".into()
            }),
            r#"{"event":"peer_error","peer":"127.0.0.1:9","error":"No route to host"}"#
        );
    }

    #[test]
    fn summary() {
        let event = Event::Summary(Summary {
            received: 4,
            bytes: 1031,
            empty: 1,
            truncated: 1,
            dropped: 997,
            unreachable: 2,
            sent: 3,
            sent_bytes: 15,
            echo_skipped: 6,
            skipped_lines: 1,
        });
        assert_eq!(
            to_line(&event),
            r#"{"event":"summary","received":4,"bytes":1031,"empty":1,"truncated":1,"dropped":997,"unreachable":2,"sent":3,"sent_bytes":15,"echo_skipped":6,"skipped_lines":1}"#
        );
    }
}
