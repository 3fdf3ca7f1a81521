//! Payloads users ask for: the `--size` pattern, and lines of input (one
//! datagram each), read without ever holding more than one datagram's worth
//! of a line.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::thread;

use crossbeam_channel::{Receiver, bounded};

use crate::Error;
use crate::model::Event;
use crate::net::limits::{MAX_PAYLOAD, payload_limit};

/// A payload of `len` bytes for `--size`: a readable repeating pattern
/// (`0123456789` …) so that a truncated copy shows where it was cut.
/// Callers check `len` against the limits first (see
/// [`parse::payload_size`](super::parse::payload_size)).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'0' + (i % 10) as u8).collect()
}

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its number, from 1.
    pub number: u64,
    /// Its length in bytes, line ending removed.
    pub len: u64,
    /// Its bytes; `None` when it is longer than any datagram can be (the
    /// rest was read past, not kept).
    pub bytes: Option<Vec<u8>>,
}

impl Line {
    /// The line as a payload for `to`, or, when it does not fit in one
    /// datagram there, the `line_skipped` event that reports it.
    pub fn payload_for(self, to: &SocketAddr) -> Result<Vec<u8>, Box<Event>> {
        let limit = payload_limit(to).bytes;
        match self.bytes {
            Some(bytes) if bytes.len() <= limit => Ok(bytes),
            _ => Err(Box::new(Event::LineSkipped {
                line: self.number,
                len: self.len,
                limit,
            })),
        }
    }
}

/// Reads lines: `\n` or `\r\n` ends a line (and is removed); an empty line
/// is an empty payload; the last line needs no ending. A line longer than
/// [`MAX_PAYLOAD`] is measured but not kept, so a huge line costs no memory.
#[derive(Debug)]
pub struct LineReader<R> {
    input: R,
    number: u64,
    /// The end of input was read (a last line without its ending): a
    /// terminal's Ctrl-D is read once, and reading again would wait for
    /// another one.
    ended: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of `input`.
    pub fn new(input: R) -> Self {
        LineReader {
            input,
            number: 0,
            ended: false,
        }
    }

    /// The next line, or `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        if self.ended {
            return Ok(None);
        }
        // Room for the largest payload and a "\r" that may end the line.
        const KEEP: usize = MAX_PAYLOAD + 1;
        let mut kept = Vec::new();
        let mut len: u64 = 0;
        let mut ended = false;
        let mut any = false;
        let mut last = None;
        while !ended {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.ended = true;
                break;
            }
            any = true;
            let (body, used) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    ended = true;
                    (&chunk[..at], at + 1)
                }
                None => (chunk, chunk.len()),
            };
            if let Some(&byte) = body.last() {
                last = Some(byte);
            }
            let room = KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&body[..body.len().min(room)]);
            len += body.len() as u64;
            self.input.consume(used);
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if ended && last == Some(b'\r') {
            len -= 1;
            kept.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        }
        let bytes = (len <= MAX_PAYLOAD as u64).then_some(kept);
        Ok(Some(Line {
            number: self.number,
            len,
            bytes,
        }))
    }
}

/// Reads `input` on its own thread (`dgram-input-reader`) and hands over
/// its lines; the channel disconnects at the end of input. A reader blocked
/// on a terminal cannot be woken, so the thread is left behind when the
/// command ends first; nothing waits for it.
pub fn spawn_line_reader(
    input: Box<dyn BufRead + Send>,
) -> Result<Receiver<io::Result<Line>>, Error> {
    let (tx, rx) = bounded(64);
    thread::Builder::new()
        .name("dgram-input-reader".into())
        .spawn(move || {
            let mut lines = LineReader::new(input);
            loop {
                let next = lines.next_line();
                let last = !matches!(next, Ok(Some(_)));
                let item = match next {
                    Ok(Some(line)) => Ok(line),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                if tx.send(item).is_err() || last {
                    break;
                }
            }
        })
        .map_err(|source| Error::SpawnThread {
            name: "input reader",
            source,
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Line> {
        let mut reader = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    fn line(number: u64, bytes: &[u8]) -> Line {
        Line {
            number,
            len: bytes.len() as u64,
            bytes: Some(bytes.to_vec()),
        }
    }

    /// One payload per line: `\n` and `\r\n` end lines, an empty line is an
    /// empty payload, the last line needs no ending, a lone `\r` inside a
    /// line stays.
    #[test]
    fn one_payload_per_line() {
        assert_eq!(
            lines(b"a\n\nb\r\nc\rd\nlast"),
            [
                line(1, b"a"),
                line(2, b""),
                line(3, b"b"),
                line(4, b"c\rd"),
                line(5, b"last")
            ]
        );
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n"), [line(1, b"")]);
    }

    /// Reads as a terminal does: each read returns what one Enter or Ctrl-D
    /// released, an empty read is a Ctrl-D on an empty line, and reading
    /// goes on after it.
    struct Terminal(std::collections::VecDeque<&'static [u8]>);

    impl io::Read for Terminal {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let chunk = self.0.pop_front().expect("read after the last Ctrl-D");
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    /// `half` then Ctrl-D twice (the first releases `half`, the second
    /// ends the input) is the last line: the input ends there, as it does
    /// for `cat`, without waiting for a third Ctrl-D (which it used to).
    #[test]
    fn a_last_line_ended_by_ctrl_d_ends_the_input() {
        let terminal = Terminal(vec![&b"one\n"[..], b"half", b"", b"more\n"].into());
        let mut reader = LineReader::new(io::BufReader::new(terminal));
        assert_eq!(reader.next_line().unwrap(), Some(line(1, b"one")));
        assert_eq!(reader.next_line().unwrap(), Some(line(2, b"half")));
        assert_eq!(reader.next_line().unwrap(), None);
        assert_eq!(reader.next_line().unwrap(), None);
    }

    /// A line longer than any datagram is measured, not kept, and the lines
    /// around it are untouched.
    #[test]
    fn huge_lines_are_measured_not_kept() {
        let mut input = b"before\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 200_000));
        input.extend_from_slice(b"\r\nafter\n");
        let got = lines(&input);
        assert_eq!(got[0], line(1, b"before"));
        assert_eq!(got[1].number, 2);
        assert_eq!(got[1].len, 200_000);
        assert_eq!(got[1].bytes, None);
        assert_eq!(got[2], line(3, b"after"));
        // Exactly the limit is kept; one more byte is not.
        let at_limit = vec![b'y'; MAX_PAYLOAD];
        assert_eq!(lines(&at_limit)[0].bytes.as_deref(), Some(&at_limit[..]));
        let over = vec![b'y'; MAX_PAYLOAD + 1];
        assert_eq!(lines(&over)[0].bytes, None);
    }

    #[test]
    fn pattern_counts() {
        assert_eq!(pattern(12), b"012345678901");
    }
}
