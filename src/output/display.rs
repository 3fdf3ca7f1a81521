//! The display end of a command: every event is rendered and written to a
//! sink (held, batched or coalesced as the sink needs). It counts nothing
//! of the run's: the run's counts are [`crate::model::Tally`], which the
//! pipeline records each event in before the display shows it.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::render::{Renderer, delivered_mark, group_mark};
use super::sink::Sink;
use crate::Error;
use crate::model::{Event, Outcome, SentKind, Transition};

/// What a held line of a sent message ends with when its receipt has not
/// come by the time it is shown (its outcome follows on a line of its own).
const NO_RECEIPT_YET: &str = "  (no receipt yet)";

/// How much output [`Display::batch_writes`] gathers before it writes it
/// even though more is coming.
const OUTPUT_BATCH: usize = 64 * 1024;

/// The line of a message sent, held until its receipt comes (then it is
/// shown with it) or until it is time to show it anyway.
#[derive(Debug)]
struct Held {
    to: SocketAddr,
    seq: u64,
    line: String,
    mark: Option<String>,
    deadline: Instant,
}

/// Counts, renders and writes events.
pub struct Display<'a> {
    renderer: Renderer,
    sink: Box<dyn Sink + 'a>,
    /// Datagrams counted instead of shown ([`Display::coalesce`]), for the
    /// summary's `not_shown`: what the display did, not what the run did.
    not_shown: u64,
    /// False once the reader went away (a closed pipe): events are still
    /// counted, nothing more is written.
    open: bool,
    /// How long the line of a message sent waits for its receipt, so that
    /// both read as one line (`None`: lines are not held).
    hold: Option<Duration>,
    held: VecDeque<Held>,
    /// `--log`: messages in and out and their final states, as JSON lines.
    log: Option<Log>,
    /// Lines gathered for one write ([`Display::batch_writes`]).
    batch: Option<String>,
    /// Datagram lines beyond a readable rate, counted instead of shown
    /// ([`Display::coalesce`]).
    coalesce: Option<Coalescer>,
}

/// The most senders whose datagrams not shown are counted apart in one
/// window; the others are counted together.
const COALESCED_SENDERS: usize = 8;

/// Datagrams not shown in the current window, from one sender.
#[derive(Debug)]
struct Hidden {
    from: SocketAddr,
    count: u64,
    min_len: usize,
    max_len: usize,
}

/// Shows at most `per_window` datagram lines per [`COALESCE_WINDOW`];
/// the rest of the window's datagrams are counted per sender and shown as
/// one line per sender when the window ends.
#[derive(Debug)]
struct Coalescer {
    per_window: u32,
    window_end: Instant,
    shown: u32,
    hidden: Vec<Hidden>,
    /// Datagrams not shown from senders beyond [`COALESCED_SENDERS`]:
    /// count, senders.
    others: (u64, u64),
}

/// How long one window of [`Display::coalesce`] lasts.
pub const COALESCE_WINDOW: Duration = Duration::from_secs(1);

impl Coalescer {
    /// Counts `datagram` instead of showing it.
    fn hide(&mut self, from: SocketAddr, len: usize) {
        if let Some(hidden) = self.hidden.iter_mut().find(|h| h.from == from) {
            hidden.count += 1;
            hidden.min_len = hidden.min_len.min(len);
            hidden.max_len = hidden.max_len.max(len);
            return;
        }
        if self.hidden.len() < COALESCED_SENDERS {
            self.hidden.push(Hidden {
                from,
                count: 1,
                min_len: len,
                max_len: len,
            });
        } else {
            // A new sender past the cap (a sender counted there twice is
            // counted twice among the senders: "at most").
            self.others.0 += 1;
            self.others.1 += 1;
        }
    }

    /// The lines for what the window did not show, and a new window.
    fn close_window(&mut self, now: Instant) -> Vec<String> {
        let mut lines: Vec<String> = self
            .hidden
            .drain(..)
            .map(|h| {
                let sizes = if h.min_len == h.max_len {
                    format!("{} B each", h.min_len)
                } else {
                    format!("{} to {} B", h.min_len, h.max_len)
                };
                format!(
                    "… {} more from {}, {sizes}, not shown (too fast to read)",
                    h.count,
                    super::fast::shown(h.from)
                )
            })
            .collect();
        let (count, senders) = std::mem::take(&mut self.others);
        if count > 0 {
            lines.push(format!(
                "… {count} more from other senders (at most {senders}), not shown (too fast to read)"
            ));
        }
        self.shown = 0;
        self.window_end = now + COALESCE_WINDOW;
        lines
    }

    /// True when datagrams were counted instead of shown in this window.
    fn has_hidden(&self) -> bool {
        !self.hidden.is_empty() || self.others.0 > 0
    }
}

/// The `--log` file: opened for appending, one `write` per line, so that
/// every line is complete on disk as soon as it is written, however the
/// run ends. A line the file could not take whole (a full disk writes part
/// of it) is cut off again, so that the file holds only whole lines.
struct Log {
    path: PathBuf,
    file: File,
    /// The file's length after the last whole line.
    whole: u64,
}

/// What became of an event handed to [`Display::show`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Written (or nothing to write).
    Yes,
    /// Counted, but the reader has gone away (a closed pipe): a normal,
    /// quiet end for a command whose output was its purpose.
    ReaderGone,
}

impl<'a> Display<'a> {
    /// A display rendering with `renderer` into `sink` (a `&mut` to a sink
    /// will do).
    pub fn new(renderer: Renderer, sink: impl Sink + 'a) -> Self {
        Display {
            renderer,
            sink: Box::new(sink),
            not_shown: 0,
            open: true,
            hold: None,
            held: VecDeque::new(),
            log: None,
            batch: None,
            coalesce: None,
        }
    }

    /// Shows at most `per_second` datagram lines a second; the datagrams
    /// over that are counted (per sender, and in the summary's
    /// `not_shown`) and shown as one line per sender at the end of each
    /// second: "… 48213 more from 127.0.0.1:5000, 64 B each, not shown".
    /// For a terminal, which a flood would otherwise hold up (and so fill
    /// the socket's buffer) while nobody can read it anyway.
    pub fn coalesce(mut self, per_second: u32) -> Self {
        self.coalesce = Some(Coalescer {
            per_window: per_second.max(1),
            window_end: Instant::now() + COALESCE_WINDOW,
            shown: 0,
            hidden: Vec::new(),
            others: (0, 0),
        });
        self
    }

    /// True when `event` is a datagram counted instead of shown; the
    /// lines for an ended window are written first.
    fn coalesced(&mut self, event: &Event) -> Result<bool, Error> {
        let (Some(coalescer), Event::Datagram(datagram)) = (&mut self.coalesce, event) else {
            return Ok(false);
        };
        let now = Instant::now();
        if now >= coalescer.window_end {
            let lines = coalescer.close_window(now);
            self.write(&lines)?;
        }
        let Some(coalescer) = &mut self.coalesce else {
            return Ok(false);
        };
        if coalescer.shown < coalescer.per_window {
            coalescer.shown += 1;
            return Ok(false);
        }
        coalescer.hide(datagram.from, datagram.len());
        self.not_shown += 1;
        Ok(true)
    }

    /// Writes what the window did not show, if its time has come (`force`:
    /// now, whatever the time).
    fn close_coalesced(&mut self, force: bool) -> Result<Shown, Error> {
        let now = Instant::now();
        let lines = match &mut self.coalesce {
            Some(c) if c.has_hidden() && (force || now >= c.window_end) => c.close_window(now),
            _ => return Ok(Shown::Yes),
        };
        self.write(&lines)
    }

    /// From now on (`on`), lines are gathered and written in one go when
    /// [`Display::flush`] is called or 64 KiB have
    /// gathered, instead of one write per event: for a loop that writes
    /// when its socket has nothing more. Turning it off writes what is
    /// gathered.
    pub fn batch_writes(&mut self, on: bool) -> Result<Shown, Error> {
        let shown = self.flush()?;
        self.batch = on.then(|| String::with_capacity(OUTPUT_BATCH + 4096));
        Ok(shown)
    }

    /// True when lines are gathered and not written yet.
    pub fn has_batched(&self) -> bool {
        self.batch.as_ref().is_some_and(|batch| !batch.is_empty())
    }

    /// Writes the lines gathered so far (see [`Display::batch_writes`]).
    pub fn flush(&mut self) -> Result<Shown, Error> {
        let Some(batch) = self.batch.as_mut().filter(|batch| !batch.is_empty()) else {
            return Ok(if self.open {
                Shown::Yes
            } else {
                Shown::ReaderGone
            });
        };
        let text = std::mem::take(batch);
        let written = self.sink.write_text(&text);
        // The buffer is kept, with its capacity, for the next batch.
        let mut text = text;
        text.clear();
        self.batch = Some(text);
        self.written(written)
    }

    /// Also appends every message received and sent, and every final
    /// state, to `file` (the `--log` at `path`, opened for appending) as
    /// JSON lines.
    pub fn log_to(mut self, file: File, path: &Path) -> Self {
        let whole = file.metadata().map_or(0, |meta| meta.len());
        self.log = Some(Log {
            path: path.to_path_buf(),
            file,
            whole,
        });
        self
    }

    fn write_log(&mut self, event: &Event) -> Result<(), Error> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let logged = match event {
            Event::Message(message) => !message.duplicate,
            // What a chat receives from plain peers are their messages.
            Event::Datagram(_) => true,
            Event::Sent {
                kind: SentKind::Message { attempt, .. },
                ..
            } => *attempt == 1,
            Event::Sent {
                kind: SentKind::Text { .. },
                ..
            } => true,
            Event::Receipt(_) | Event::Gap { .. } => true,
            _ => false,
        };
        if !logged {
            return Ok(());
        }
        let mut line = super::json::to_line(event);
        line.push('\n');
        match log.file.write_all(line.as_bytes()) {
            Ok(()) => {
                log.whole += line.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Whatever part of the line went in is taken out again
                // (the error that stops the chat says why).
                let _ = log.file.set_len(log.whole);
                Err(Error::WriteLog {
                    path: log.path.clone(),
                    source,
                })
            }
        }
    }

    /// Holds the line of each chat message sent for up to `hold`, waiting
    /// for its receipt: a delivered message then reads as one line with its
    /// round trip, and a calm conversation does not get a receipt line per
    /// message. Lines keep their order; anything else to show first shows
    /// what is held.
    pub fn hold_sent_lines(mut self, hold: Duration) -> Self {
        self.hold = Some(hold);
        self
    }

    /// When a held line is due to be shown anyway, if one is held.
    pub fn next_flush(&self) -> Option<Instant> {
        let held = self.held.front().map(|held| held.deadline);
        let coalesced = self
            .coalesce
            .as_ref()
            .filter(|c| c.has_hidden())
            .map(|c| c.window_end);
        match (held, coalesced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shows the held lines that are due (and those behind them that are
    /// settled).
    pub fn flush_due(&mut self) -> Result<Shown, Error> {
        self.close_coalesced(false)?;
        let now = Instant::now();
        let mut lines = Vec::new();
        while let Some(front) = self.held.front() {
            if front.mark.is_none() && front.deadline > now {
                break;
            }
            lines.push(held_line(self.held.pop_front().expect("front exists")));
        }
        self.write(&lines)
    }

    /// Shows every held line now.
    pub fn flush_held(&mut self) -> Result<Shown, Error> {
        self.close_coalesced(true)?;
        let lines: Vec<String> = self.held.drain(..).map(held_line).collect();
        self.write(&lines)
    }

    /// Holds or settles the line of a sent message; true when `event` was
    /// taken care of that way.
    fn hold_line(&mut self, event: &Event, lines: &[String]) -> bool {
        let Some(hold) = self.hold else {
            return false;
        };
        match event {
            Event::Sent {
                to,
                kind: SentKind::Message {
                    seq, attempt: 1, ..
                },
                ..
            } => {
                self.held.push_back(Held {
                    to: *to,
                    seq: *seq,
                    line: lines.concat(),
                    mark: None,
                    deadline: Instant::now() + hold,
                });
                true
            }
            Event::GroupReceipt(receipt) => {
                match self
                    .held
                    .iter_mut()
                    .find(|h| h.to == receipt.group && h.seq == receipt.seq)
                {
                    Some(held) => {
                        held.mark = Some(group_mark(receipt));
                        true
                    }
                    None => false,
                }
            }
            Event::Receipt(receipt) if receipt.outcome == Outcome::Delivered => {
                match self
                    .held
                    .iter_mut()
                    .find(|h| h.to == receipt.to && h.seq == receipt.seq)
                {
                    Some(held) => {
                        held.mark = Some(delivered_mark(receipt));
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// Writes from now on to `sink` (and reopens the display), returning
    /// the sink used so far.
    pub fn redirect(&mut self, sink: impl Sink + 'a) -> Box<dyn Sink + 'a> {
        self.open = true;
        std::mem::replace(&mut self.sink, Box::new(sink))
    }

    /// Shows one event, and the peer `transitions` it caused (counted
    /// elsewhere: [`crate::model::Tally::record`]).
    pub fn show(&mut self, event: &Event, transitions: &[Transition]) -> Result<Shown, Error> {
        self.write_log(event)?;
        if !self.open {
            return Ok(Shown::ReaderGone);
        }
        if transitions.is_empty() && self.coalesced(event)? {
            return Ok(Shown::Yes);
        }
        if let Some(batch) = &mut self.batch
            && self.held.is_empty()
            && (self.hold.is_none()
                || !matches!(
                    event,
                    Event::Sent { .. } | Event::Receipt(_) | Event::GroupReceipt(_)
                ))
        {
            // Nothing to hold or settle: straight into the batch.
            self.renderer.render_into(event, transitions, batch);
            if batch.len() < OUTPUT_BATCH {
                return Ok(Shown::Yes);
            }
            return self.flush();
        }
        let lines = self.renderer.render(event, transitions);
        if self.hold_line(event, &lines) {
            return self.flush_due();
        }
        if !lines.is_empty() && !self.held.is_empty() {
            self.flush_held()?;
        }
        self.write(&lines)
    }

    /// Writes lines that are not events (a banner, a notice).
    pub fn write(&mut self, lines: &[String]) -> Result<Shown, Error> {
        if !self.open {
            return Ok(Shown::ReaderGone);
        }
        if lines.is_empty() {
            return Ok(Shown::Yes);
        }
        if let Some(batch) = &mut self.batch {
            for line in lines {
                batch.push_str(line);
                batch.push('\n');
            }
            if batch.len() < OUTPUT_BATCH {
                return Ok(Shown::Yes);
            }
            return self.flush();
        }
        let written = self.sink.write_lines(lines);
        self.written(written)
    }

    /// What a write's result means for the display.
    fn written(&mut self, result: io::Result<()>) -> Result<Shown, Error> {
        match result {
            Ok(()) => Ok(Shown::Yes),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.open = false;
                Ok(Shown::ReaderGone)
            }
            Err(source) => Err(Error::WriteOutput { source }),
        }
    }

    /// Datagrams counted instead of shown so far.
    pub fn not_shown(&self) -> u64 {
        self.not_shown
    }

    /// False once the reader has gone away.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Looks, without writing, whether the reader has gone away (see
    /// [`Sink::reader_gone`]); true once it has.
    pub fn reader_gone(&mut self) -> bool {
        if self.open && self.sink.reader_gone() {
            self.open = false;
        }
        !self.open
    }
}

/// A held line as shown: with its delivery mark, or marked as still
/// waiting.
fn held_line(held: Held) -> String {
    let mark = held.mark.as_deref().unwrap_or(NO_RECEIPT_YET);
    format!("{}{mark}", held.line)
}

#[cfg(test)]
mod tests {
    use crate::model::Tally;
    use crate::runtime::{report, report_summary};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::{ChatMessage, Settled};
    use crate::output::sink::MemorySink;
    use crate::output::{Format, Renderer};

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    fn sent(seq: u64) -> Event {
        Event::Sent {
            to: addr(),
            len: 20,
            kind: SentKind::Message {
                seq,
                attempt: 1,
                payload: Arc::from(format!("m{seq}").as_bytes()),
                name: None,
            },
            relay: None,
        }
    }

    fn delivered(seq: u64) -> Event {
        Event::Receipt(Settled {
            to: addr(),
            name: None,
            seq,
            outcome: Outcome::Delivered,
            rtt: Some(Duration::from_millis(2)),
            tries: 1,
            payload: Arc::from(&b""[..]),
            ended: false,
            refused: false,
            wire_len: Some(13),
            group: None,
        })
    }

    /// A flood shown coalesced: at most the window's number of datagram
    /// lines, then one line per sender with the count not shown (the
    /// senders past the cap together), and the counts add up: lines shown
    /// plus datagrams counted in the "more" lines equal the datagrams
    /// received, and the summary's `not_shown` is the difference.
    #[test]
    fn coalesced_counts_add_up() {
        let out = MemorySink::new();
        let mut display = Display::new(Renderer::new(Format::Human), out.clone()).coalesce(100);
        let tally = Tally::default();
        let mut total = 0u64;
        for i in 0..30_000u32 {
            // Three busy senders, then a crowd of 20 one-off senders.
            let port = if i < 29_980 {
                5000 + (i % 3) as u16
            } else {
                6000 + (i % 20) as u16
            };
            let event = Event::Datagram(crate::model::Datagram {
                at: SystemTime::now(),
                from: SocketAddr::from(([127, 0, 0, 1], port)),
                payload: vec![b'x'; 10 + (i % 7) as usize],
                truncated: false,
                original_len: None,
            });
            report(&tally, &mut display, &event).unwrap();
            total += 1;
        }
        display.flush_held().unwrap();
        let lines = out.lines();
        let more: Vec<&String> = lines.iter().filter(|l| l.starts_with("… ")).collect();
        let shown = (lines.len() - more.len()) as u64;
        let counted: u64 = more
            .iter()
            .map(|l| l[4..].split(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert!((100..1000).contains(&shown), "{shown} lines shown");
        assert_eq!(shown + counted, total, "{more:?}");
        let summary = report_summary(&tally, &mut display).unwrap();
        assert_eq!(summary.received, total);
        assert_eq!(summary.not_shown, counted);
        assert!(
            more.iter()
                .any(|l| l.contains("from 127.0.0.1:5000, 10 to 16 B")),
            "{more:?}"
        );
        assert!(
            more.iter().any(|l| l.contains("from other senders")),
            "{more:?}"
        );
        assert!(
            out.lines()
                .last()
                .unwrap()
                .contains(&format!("not shown one by one {counted}"))
        );
    }

    /// A sent message's line waits for its receipt and then reads as one
    /// line with it; lines keep their order (a later message settled first
    /// waits for the earlier one); anything else to show first shows what
    /// is held, marked as still waiting.
    #[test]
    fn sent_lines_wait_for_their_receipts_in_order() {
        let out = MemorySink::new();
        let mut display = Display::new(Renderer::new(Format::Human), out.clone())
            .hold_sent_lines(Duration::from_secs(600));
        let tally = Tally::default();
        report(&tally, &mut display, &sent(1)).unwrap();
        report(&tally, &mut display, &sent(2)).unwrap();
        report(&tally, &mut display, &delivered(2)).unwrap();
        assert!(out.lines().is_empty(), "{:?}", out.lines());
        report(&tally, &mut display, &delivered(1)).unwrap();
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("#1  \"m1\"  ok 2.00 ms"), "{lines:?}");
        assert!(lines[1].ends_with("#2  \"m2\"  ok 2.00 ms"), "{lines:?}");

        report(&tally, &mut display, &sent(3)).unwrap();
        report(
            &tally,
            &mut display,
            &Event::Message(Box::new(ChatMessage {
                at: SystemTime::now(),
                from: addr(),
                name: "bob".into(),
                session: crate::proto::SessionId([0; 8]),
                seq: 1,
                attempt: 1,
                payload: b"hi".to_vec(),
                duplicate: false,
                duplicates: 0,
                reordered: false,
                filled_gap: false,
                wire_len: 20,
            })),
        )
        .unwrap();
        let lines = out.lines();
        assert!(
            lines[2].ends_with("#3  \"m3\"  (no receipt yet)"),
            "{lines:?}"
        );
        assert!(
            lines[3].ends_with("bob (127.0.0.1:9)  #1  \"hi\""),
            "{lines:?}"
        );
        // Its receipt, once its line is out, is a line of its own.
        report(&tally, &mut display, &delivered(3)).unwrap();
        assert!(out.lines()[4].starts_with("ok #3 to 127.0.0.1:9 delivered"));
        assert_eq!(display.next_flush(), None);
    }
}
