//! Escaping of whatever a peer sent, before it reaches a terminal.
//!
//! A payload is shown as quoted text when it mostly is text, with every
//! character that could drive or fool a terminal written as an escape:
//! control characters (escape sequences included), format characters
//! (bidirectional overrides, zero-width characters, tag characters), private
//! use and unassigned code points, line and paragraph separators, and every
//! Default_Ignorable_Code_Point (the Hangul fillers, variation selectors, …).
//! The classes come from the Unicode Character Database through
//! `icu_properties`, not from a hand-kept list. Bytes that are not UTF-8 are
//! written `\xNN`. A payload that is mostly not text is shown as hex.
//!
//! Quoting keeps a text apart from the markers: the text `<empty>` is shown
//! `"<empty>"`, never `<empty>`.

use std::fmt::Write as _;

use super::fast::plain_run;

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Payload bytes shown on a terminal line; the rest is counted, not shown.
/// JSON output always carries the whole payload.
pub const PREVIEW_BYTES: usize = 1024;

/// A payload is shown as text when at least this share (in percent) of its
/// bytes are characters other than control codes.
const TEXT_SHARE: usize = 75;

/// True for a character that must not reach a terminal as it is: it is
/// invisible, moves the cursor, reorders text, or has no meaning yet.
pub fn is_hidden(c: char) -> bool {
    if matches!(c, ' '..='~') {
        return false;
    }
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    matches!(
        category,
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// Appends `c` to `out` as it may be shown between double quotes.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '"' => out.push_str("\\\""),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Escapes text so that it can be shown between double quotes on a
/// terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// Escapes text shown as it is, outside quotes (a path, a message that
/// holds what a user typed): line breaks and every other hidden character
/// are written as [`escape`] writes them (`\n`, `\u{1b}`), and the rest,
/// backslashes and quotes included, is left as it is, so that a path
/// reads as typed and escaping twice changes nothing more.
///
/// ```
/// use dgram::output::escape::escape_line;
///
/// assert_eq!(escape_line("/tmp/\x1b[31mred\n"), r"/tmp/\u{1b}[31mred\n");
/// assert_eq!(escape_line(r#"C:\"key""#), r#"C:\"key""#);
/// ```
pub fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// One piece of a payload: a character, or a byte that is not part of any.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Char(char),
    Byte(u8),
}

impl Piece {
    fn len(self) -> usize {
        match self {
            Piece::Char(c) => c.len_utf8(),
            Piece::Byte(_) => 1,
        }
    }

    /// Part of a text: any character but the control codes (ordinary
    /// whitespace included). Invisible format characters count as text
    /// (they are escaped, not a sign of binary data); control codes and
    /// bytes that are not UTF-8 are what binary data is made of.
    fn is_text(self) -> bool {
        match self {
            Piece::Char(c) => matches!(c, '\n' | '\r' | '\t') || !c.is_control(),
            Piece::Byte(_) => false,
        }
    }
}

fn pieces(bytes: &[u8]) -> impl Iterator<Item = Piece> + '_ {
    bytes.utf8_chunks().flat_map(|chunk| {
        chunk
            .valid()
            .chars()
            .map(Piece::Char)
            .chain(chunk.invalid().iter().map(|&b| Piece::Byte(b)))
    })
}

/// True when `payload` reads as text: most of its bytes are characters
/// other than control codes (invalid bytes and controls are the rest). A
/// character cut short at the very end (a datagram truncated by
/// `--max-size`) does not count against it.
pub fn looks_like_text(payload: &[u8]) -> bool {
    let body = &payload[..payload.len() - incomplete_tail(payload)];
    let text: usize = pieces(body).filter(|p| p.is_text()).map(Piece::len).sum();
    !body.is_empty() && text * 100 >= body.len() * TEXT_SHARE
}

/// The length of an incomplete UTF-8 character at the end of `bytes`: the
/// start of a multi-byte character whose last bytes are missing.
fn incomplete_tail(bytes: &[u8]) -> usize {
    let tail_start = bytes.len().saturating_sub(3);
    for start in (tail_start..bytes.len()).rev() {
        let lead = bytes[start];
        if lead & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: the lead is further back
        }
        let needed = match lead {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            _ => return 0,
        };
        let have = bytes.len() - start;
        return if have < needed { have } else { 0 };
    }
    0
}

/// A payload as it reads on a terminal: `<empty>`, quoted escaped text, or
/// `hex …`; at most [`PREVIEW_BYTES`] of it, cut between characters, with
/// the number of bytes not shown.
///
/// ```
/// use dgram::output::escape::preview;
///
/// assert_eq!(preview(b""), "<empty>");
/// assert_eq!(preview(b"<empty>"), "\"<empty>\"");
/// assert_eq!(preview(b"hi\x1b[2J\n"), r#""hi\u{1b}[2J\n""#);
/// assert_eq!(preview(b"caf\xc3\xa9 \xff"), r#""café \xff""#);
/// assert_eq!(preview(&[0, 0xff]), "hex 00ff");
/// ```
pub fn preview(payload: &[u8]) -> String {
    let mut out = String::new();
    preview_into(&mut out, payload);
    out
}

/// Appends [`preview`]`(payload)` to `out`. Runs of printable ASCII (the
/// usual payload) are copied in bulk; the rest goes character by
/// character.
pub fn preview_into(out: &mut String, payload: &[u8]) {
    if payload.is_empty() {
        out.push_str("<empty>");
        return;
    }
    let limit = payload.len().min(PREVIEW_BYTES);
    let all_plain = plain_run(payload) == payload.len();
    let shown = if all_plain || looks_like_text(payload) {
        out.push('"');
        let mut at = 0;
        while at < limit {
            let run = plain_run(&payload[at..limit]);
            // Plain bytes are ASCII: always a whole string.
            out.push_str(std::str::from_utf8(&payload[at..at + run]).unwrap_or_default());
            at += run;
            if at >= limit {
                break;
            }
            let piece = piece_at(&payload[at..]);
            if at + piece.len() > limit {
                break;
            }
            at += piece.len();
            match piece {
                Piece::Char(c) => push_escaped(out, c),
                Piece::Byte(b) => {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
        out.push('"');
        at
    } else {
        out.push_str("hex ");
        out.push_str(&to_hex(&payload[..limit]));
        limit
    };
    if shown < payload.len() {
        let _ = write!(out, "… (+{} B)", payload.len() - shown);
    }
}

/// The piece `bytes` starts with: a whole character, or one byte that does
/// not start one (as [`pieces`] splits them).
fn piece_at(bytes: &[u8]) -> Piece {
    let window = &bytes[..bytes.len().min(4)];
    match window.utf8_chunks().next() {
        Some(chunk) => match chunk.valid().chars().next() {
            Some(c) => Piece::Char(c),
            None => Piece::Byte(bytes[0]),
        },
        None => Piece::Byte(bytes[0]),
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The preview as written before its bulk path: piece by piece.
    fn reference_preview(payload: &[u8]) -> String {
        if payload.is_empty() {
            return "<empty>".to_string();
        }
        let (mut out, shown) = if looks_like_text(payload) {
            let mut out = String::from("\"");
            let mut shown = 0;
            for piece in pieces(payload) {
                if shown + piece.len() > PREVIEW_BYTES {
                    break;
                }
                shown += piece.len();
                match piece {
                    Piece::Char(c) => push_escaped(&mut out, c),
                    Piece::Byte(b) => {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
            }
            out.push('"');
            (out, shown)
        } else {
            let shown = payload.len().min(PREVIEW_BYTES);
            (format!("hex {}", to_hex(&payload[..shown])), shown)
        };
        if shown < payload.len() {
            let _ = write!(out, "… (+{} B)", payload.len() - shown);
        }
        out
    }

    proptest! {
        /// The bulk path writes exactly what the piece-by-piece preview
        /// writes: for any bytes, for text with escapes and accents, and
        /// across the preview's limit.
        #[test]
        fn preview_matches_the_piece_by_piece_reference(
            bytes in proptest::collection::vec(any::<u8>(), 0..1100),
            text in "[ -~\\n\\t\\x1b\\x7f\u{e9}\u{202e}\u{2028}\u{200b}]{0,1100}",
        ) {
            prop_assert_eq!(preview(&bytes), reference_preview(&bytes));
            prop_assert_eq!(preview(text.as_bytes()), reference_preview(text.as_bytes()));
            let mut long = text.into_bytes();
            long.extend_from_slice(&bytes);
            prop_assert_eq!(preview(&long), reference_preview(&long));
        }
    }

    /// Escape sequences, backslashes, quotes and line breaks cannot reach
    /// the terminal raw; ordinary text, accents and symbols are kept.
    #[test]
    fn escapes_what_could_drive_a_terminal() {
        assert_eq!(escape("hi\n"), "hi\\n");
        assert_eq!(escape("\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(escape("a\\b\"c"), "a\\\\b\\\"c");
        assert_eq!(escape("\u{202e}abc"), "\\u{202e}abc");
        assert_eq!(escape("héllo ✓ 你好"), "héllo ✓ 你好");
        assert_eq!(escape("\u{85}"), "\\u{85}", "C1 control NEL");
    }

    /// The invisible characters found getting through: tag characters,
    /// Hangul fillers, variation selectors, zero-width joiners, line and
    /// paragraph separators, private use and unassigned code points.
    #[test]
    fn escapes_invisible_characters_by_category() {
        for (c, name) in [
            ('\u{e0041}', "TAG LATIN CAPITAL LETTER A"),
            ('\u{e0001}', "LANGUAGE TAG"),
            ('\u{3164}', "HANGUL FILLER"),
            ('\u{115f}', "HANGUL CHOSEONG FILLER"),
            ('\u{1160}', "HANGUL JUNGSEONG FILLER"),
            ('\u{ffa0}', "HALFWIDTH HANGUL FILLER"),
            ('\u{fe0f}', "VARIATION SELECTOR-16"),
            ('\u{e0100}', "VARIATION SELECTOR-17"),
            ('\u{180b}', "MONGOLIAN FREE VARIATION SELECTOR ONE"),
            ('\u{200b}', "ZERO WIDTH SPACE"),
            ('\u{200d}', "ZERO WIDTH JOINER"),
            ('\u{2028}', "LINE SEPARATOR"),
            ('\u{2029}', "PARAGRAPH SEPARATOR"),
            ('\u{e000}', "a private use character"),
            ('\u{10ffff}', "a noncharacter"),
            ('\u{0378}', "an unassigned code point"),
            ('\u{feff}', "ZERO WIDTH NO-BREAK SPACE"),
            ('\u{61c}', "ARABIC LETTER MARK"),
        ] {
            assert!(is_hidden(c), "{name} (U+{:04X}) must be escaped", c as u32);
            assert_eq!(escape(&c.to_string()), format!("\\u{{{:x}}}", c as u32));
        }
        for c in ['a', 'é', '你', '✓', '😀', 'ß', '\u{301}'] {
            assert!(!is_hidden(c), "{c:?} is visible");
        }
    }

    /// Text shown outside quotes (paths, error lines) has every
    /// character that could drive a terminal escaped, backslashes and
    /// quotes kept, and escaping it again changes nothing.
    #[test]
    fn lines_escape_what_could_drive_a_terminal() {
        let typed = "k\x1b]0;t\x07\u{9b}2J\u{202e}ab\x08\r\n\\\"";
        let line = escape_line(typed);
        assert_eq!(line, r#"k\u{1b}]0;t\u{7}\u{9b}2J\u{202e}ab\u{8}\r\n\""#);
        assert!(!line.chars().any(is_hidden), "{line}");
        assert_eq!(escape_line(&line), line, "escaping twice changes nothing");
    }

    /// Text is quoted, so that a text which reads like a marker cannot
    /// pass for one.
    #[test]
    fn markers_and_texts_cannot_be_confused() {
        assert_eq!(preview(b""), "<empty>");
        assert_eq!(preview(b"<empty>"), "\"<empty>\"");
        assert_eq!(preview(&[0, 0xff]), "hex 00ff");
        assert_eq!(preview(b"hex 00ff"), "\"hex 00ff\"");
        assert_eq!(preview(b"x\ty"), "\"x\\ty\"");
    }

    /// One invalid byte in a text leaves it text, with the byte escaped;
    /// a payload that is mostly bytes is hex.
    #[test]
    fn mostly_text_stays_text() {
        assert_eq!(preview(b"hello\xffworld"), "\"hello\\xffworld\"");
        assert_eq!(preview(b"caf\xc3"), "\"caf\\xc3\"", "cut mid-character");
        assert_eq!(preview(&"ab你".as_bytes()[..4]), "\"ab\\xe4\\xbd\"");
        assert_eq!(preview(b"\xe4"), "hex e4", "nothing but a cut character");
        assert_eq!(preview(&[1, 2, 3, b'a']), "hex 01020361");
        assert_eq!(
            preview("a\u{e0041}\u{e0042}b".as_bytes()),
            "\"a\\u{e0041}\\u{e0042}b\"",
            "invisible characters are text, escaped"
        );
        let binary: Vec<u8> = (0..=255).collect();
        assert!(preview(&binary).starts_with("hex 000102"));
    }

    /// The preview is cut between characters, never through one, and says
    /// how many bytes were not shown.
    #[test]
    fn preview_cuts_between_characters() {
        // 你 is 3 bytes: 341 of them are 1023 bytes, the 342nd would cross.
        let text = "你".repeat(400);
        let shown = preview(text.as_bytes());
        assert_eq!(
            shown,
            format!("\"{}\"… (+{} B)", "你".repeat(341), 1200 - 1023)
        );
        assert!(!shown.contains('\u{fffd}'));
        let long = vec![b'a'; PREVIEW_BYTES + 10];
        assert!(preview(&long).ends_with("\"… (+10 B)"));
        let bytes = vec![0u8; PREVIEW_BYTES + 1];
        assert!(preview(&bytes).ends_with("00… (+1 B)"));
    }

    #[test]
    fn hex_is_lower_case_pairs() {
        assert_eq!(to_hex(&[0, 0xff, 0x10]), "00ff10");
    }
}
