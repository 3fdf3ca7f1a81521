//! A received datagram, validated, and how its payload reads.

use std::net::SocketAddr;
use std::time::SystemTime;

/// One datagram as the rest of dgram sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// When it was received.
    pub at: SystemTime,
    /// Who sent it (IPv4-mapped addresses already written as IPv4).
    pub from: SocketAddr,
    /// The bytes delivered: the whole datagram, or its first `--max-size`
    /// bytes when `truncated`.
    pub payload: Vec<u8>,
    /// The kernel cut the datagram to fit the application's buffer.
    pub truncated: bool,
    /// The datagram's true length when truncated, where the platform tells.
    pub original_len: Option<usize>,
}

/// How a payload reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// No bytes at all: an empty datagram, a message in its own right.
    Empty,
    /// Valid UTF-8.
    Text(&'a str),
    /// Anything else.
    Binary(&'a [u8]),
}

impl Datagram {
    /// The number of bytes delivered.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// True for a datagram with no payload.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload as text, bytes or nothing.
    pub fn payload(&self) -> Payload<'_> {
        classify(&self.payload)
    }

    /// Bytes the truncation cost, where the true length is known.
    pub fn lost_bytes(&self) -> Option<usize> {
        self.original_len
            .map(|n| n.saturating_sub(self.payload.len()))
    }
}

/// Sorts bytes into empty, UTF-8 text, or binary.
pub fn classify(bytes: &[u8]) -> Payload<'_> {
    if bytes.is_empty() {
        return Payload::Empty;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Payload::Text(text),
        Err(_) => Payload::Binary(bytes),
    }
}

/// Lower-case hex, two digits per byte, no separators.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// A payload of `len` bytes for `--size`: a readable repeating pattern
/// (`0123456789` …) so that a truncated copy shows where it was cut.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'0' + (i % 10) as u8).collect()
}

/// Reads `input` as datagram payloads, one per line (the newline removed;
/// an empty line is an empty payload), and hands each to `send`, stopping
/// at end of input or at the first error.
pub fn for_each_line<E>(
    mut input: impl std::io::BufRead,
    mut send: impl FnMut(&[u8]) -> Result<(), E>,
    read_failed: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(&read_failed)? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        send(&line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_kinds() {
        assert_eq!(classify(b""), Payload::Empty);
        assert_eq!(classify(b"hi\n"), Payload::Text("hi\n"));
        assert_eq!(classify(&[0xff, 0]), Payload::Binary(&[0xff, 0]));
        assert_eq!(to_hex(&[0, 0xff, 0x10]), "00ff10");
        assert_eq!(pattern(12), b"012345678901");
    }

    #[test]
    fn one_payload_per_line() {
        let mut seen = Vec::new();
        let result: Result<(), ()> = for_each_line(
            &b"a\n\nb\nlast"[..],
            |line| {
                seen.push(line.to_vec());
                Ok(())
            },
            |_| (),
        );
        assert!(result.is_ok());
        assert_eq!(seen, [&b"a"[..], b"", b"b", b"last"]);
    }
}
