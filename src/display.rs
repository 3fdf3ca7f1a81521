//! How events read: on a terminal (one escaped line per event) or as JSON
//! lines.
//!
//! Anything a peer sent is escaped before it reaches the terminal: control
//! characters (escape sequences included), backslashes and the Unicode
//! controls that reorder text are written as `\n`, `\\`, `\u{1b}` and so on,
//! so a datagram can never move the cursor, change colours or hide itself.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;

use chrono::{DateTime, Local};

use crate::Error;
use crate::datagram::{Datagram, Payload, to_hex};
use crate::event::{Event, to_json};
use crate::socket::{BufferSize, BufferVerdict};
use crate::stats::{Stats, Summary};
use crate::sys::Capabilities;

/// Payload bytes shown on a terminal line; the rest is counted, not shown.
/// JSON output always carries the whole payload.
pub const PREVIEW_BYTES: usize = 1024;

/// Human-readable lines or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per event for people, escaped.
    Human,
    /// One JSON object per line (`--json`).
    Json,
}

/// Turns events into lines, remembering which peers are down so that a
/// refusal is shown once per change of state, not once per datagram, on a
/// terminal. (The JSON stream carries every report.)
#[derive(Debug)]
pub struct Renderer {
    format: Format,
    /// Peers whose host answered port unreachable and that have not been
    /// heard from since.
    down: HashSet<SocketAddr>,
}

impl Renderer {
    /// A renderer for `format`.
    pub fn new(format: Format) -> Self {
        Renderer {
            format,
            down: HashSet::new(),
        }
    }

    /// The lines to show for `event` (none for a sent datagram on a
    /// terminal, or for a repeated refusal).
    pub fn render(&mut self, event: &Event) -> Vec<String> {
        if self.format == Format::Json {
            return vec![to_json(event)];
        }
        match event {
            Event::Listening {
                local,
                buffers,
                max_size,
                capabilities,
            } => {
                let mut lines = vec![format!(
                    "listening on {local} (UDP), receive buffer {max_size} bytes (--max-size)"
                )];
                lines.push(buffer_line("SO_RCVBUF", &buffers.rcvbuf));
                lines.push(buffer_line("SO_SNDBUF", &buffers.sndbuf));
                lines.push(capabilities_line(capabilities));
                lines
            }
            Event::Datagram(datagram) => {
                let mut lines = Vec::new();
                if self.down.remove(&datagram.from) {
                    lines.push(format!("!! {} answers again", datagram.from));
                }
                lines.push(datagram_line(datagram));
                lines
            }
            Event::Sent { .. } => Vec::new(),
            Event::Dropped { count, total } => vec![format!(
                "!! the kernel dropped {count} datagram{} (SO_RCVBUF was full; {total} dropped in all): raise --rcvbuf or read faster",
                plural(*count)
            )],
            Event::Unreachable { peer } => {
                if self.down.insert(*peer) {
                    vec![format!(
                        "!! nothing is listening at {peer} (ICMP port unreachable)"
                    )]
                } else {
                    Vec::new()
                }
            }
            Event::PeerError { peer, error } => vec![format!("!! {peer}: {error}")],
            Event::Summary(summary) => vec![summary_line(summary)],
        }
    }
}

/// Writes rendered events to an output stream.
#[derive(Debug)]
pub struct Printer<W: Write> {
    out: W,
    renderer: Renderer,
}

impl<W: Write> Printer<W> {
    /// A printer writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Printer {
            out,
            renderer: Renderer::new(format),
        }
    }

    /// Writes the event's lines and flushes, so that a reader at the other
    /// end of a pipe sees every event as it happens.
    pub fn print(&mut self, event: &Event) -> io::Result<()> {
        for line in self.renderer.render(event) {
            writeln!(self.out, "{line}")?;
        }
        self.out.flush()
    }
}

/// A printer and the totals of what it has shown: the display end of a
/// command's event channel.
#[derive(Debug)]
pub struct Screen<W: Write> {
    printer: Printer<W>,
    /// Everything shown so far, counted.
    pub stats: Stats,
}

impl<W: Write> Screen<W> {
    /// A screen writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Screen {
            printer: Printer::new(out, format),
            stats: Stats::default(),
        }
    }

    /// Counts and prints one event. `Ok(false)` means the reader went away
    /// (a closed pipe): a normal, quiet end.
    pub fn show(&mut self, event: &Event) -> Result<bool, Error> {
        self.stats.record(event);
        match self.printer.print(event) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(source) => Err(Error::WriteOutput { source }),
        }
    }
}

/// `HH:MM:SS.mmm  FROM  LEN B  PAYLOAD`, with the payload escaped.
pub fn datagram_line(datagram: &Datagram) -> String {
    let time = DateTime::<Local>::from(datagram.at).format("%H:%M:%S%.3f");
    let mut line = format!("{time}  {}  {} B", datagram.from, datagram.len());
    if datagram.truncated {
        match datagram.original_len {
            Some(original) => {
                let _ = write!(
                    line,
                    " [truncated: {original} B sent, {} B lost]",
                    original - datagram.len()
                );
            }
            None => line.push_str(" [truncated]"),
        }
    }
    line.push_str("  ");
    line.push_str(&payload_text(&datagram.payload));
    line
}

/// A payload as it reads on a terminal: `<empty>`, escaped text, or
/// `hex …`, cut at [`PREVIEW_BYTES`].
pub fn payload_text(payload: &[u8]) -> String {
    let shown = &payload[..payload.len().min(PREVIEW_BYTES)];
    let rest = payload.len() - shown.len();
    let mut text = match crate::datagram::classify(payload) {
        Payload::Empty => return "<empty>".to_string(),
        Payload::Text(_) => escape(&String::from_utf8_lossy(shown)),
        Payload::Binary(_) => format!("hex {}", to_hex(shown)),
    };
    if rest > 0 {
        let _ = write!(text, "… (+{rest} B)");
    }
    text
}

/// Escapes text for a terminal: backslash, control characters and the
/// invisible Unicode controls that reorder or hide text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_format_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Bidirectional overrides, zero-width characters and similar format
/// controls (Unicode category Cf) that would let a peer disguise text.
fn is_format_control(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// `SO_RCVBUF: requested 4096, effective 8192 (…)`.
pub fn buffer_line(option: &str, size: &BufferSize) -> String {
    let effective = size.effective;
    match (size.requested, size.verdict()) {
        (None, _) | (_, BufferVerdict::Default) => {
            format!("{option}: {effective} bytes (system default)")
        }
        (Some(requested), verdict) => {
            let why = match verdict {
                BufferVerdict::Doubled => "Linux doubles a request to cover its bookkeeping",
                BufferVerdict::AsRequested => "as requested",
                BufferVerdict::Clamped if option == "SO_SNDBUF" => {
                    "clamped: the kernel caps it at twice net.core.wmem_max; raise that sysctl for more"
                }
                BufferVerdict::Clamped => {
                    "clamped: the kernel caps it at twice net.core.rmem_max; raise that sysctl for more"
                }
                BufferVerdict::Raised => "raised to the kernel's minimum",
                BufferVerdict::Default => unreachable!("handled above"),
            };
            format!("{option}: requested {requested}, effective {effective} ({why})")
        }
    }
}

fn capabilities_line(capabilities: &Capabilities) -> String {
    let mark = |on: bool| if on { "" } else { "no " };
    format!(
        "reports: {}truncated lengths (MSG_TRUNC), {}kernel drops (SO_RXQ_OVFL), {}ICMP errors (IP_RECVERR)",
        mark(capabilities.true_length),
        mark(capabilities.drop_count),
        mark(capabilities.icmp_errors),
    )
}

/// The one-line summary printed at exit.
pub fn summary_line(summary: &Summary) -> String {
    format!("summary: {}", totals(summary))
}

/// The totals of a run: `received 3 datagrams (12 B; …), …`.
pub fn totals(summary: &Summary) -> String {
    format!(
        "received {} datagram{} ({} B; {} empty, {} truncated), kernel dropped {}, sent {} ({} B), unreachable reports {}",
        summary.received,
        plural(summary.received),
        summary.bytes,
        summary.empty,
        summary.truncated,
        summary.dropped,
        summary.sent,
        summary.sent_bytes,
        summary.unreachable,
    )
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_drive_a_terminal() {
        assert_eq!(escape("hi\n"), "hi\\n");
        assert_eq!(escape("\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape("\u{202e}abc"), "\\u{202e}abc");
        assert_eq!(escape("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn payloads_read_as_empty_text_or_hex() {
        assert_eq!(payload_text(b""), "<empty>");
        assert_eq!(payload_text(b"x\ty"), "x\\ty");
        assert_eq!(payload_text(&[0, 0xff]), "hex 00ff");
        let long = vec![b'a'; PREVIEW_BYTES + 10];
        assert!(payload_text(&long).ends_with("… (+10 B)"));
    }

    #[test]
    fn buffer_verdicts() {
        let line = |requested, effective| {
            buffer_line(
                "SO_RCVBUF",
                &BufferSize {
                    requested,
                    effective,
                },
            )
        };
        assert!(line(None, 212992).contains("system default"));
        if cfg!(target_os = "linux") {
            assert!(line(Some(4096), 8192).contains("doubles"));
            assert!(line(Some(1 << 26), 1 << 23).contains("clamped"));
            assert!(line(Some(1), 2304).contains("minimum"));
        }
    }
}
