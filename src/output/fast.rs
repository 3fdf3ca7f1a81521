//! The pieces of a line formatted straight into the output buffer, for the
//! events that come by the hundred thousand a second (datagrams): numbers
//! and IPv4 addresses without `fmt` machinery, the time of day formatted
//! once per second, and JSON strings escaped with a bulk path for
//! printable ASCII.
//!
//! Each piece writes exactly what its slower counterpart writes (chrono,
//! `SocketAddr`'s `Display`, serde_json with [`super::json`]'s escaping);
//! the tests hold them to it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local, SecondsFormat, Utc};

use super::escape::is_hidden;

/// Appends `n` in decimal.
pub fn push_uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// Appends `n` in decimal with at least `width` digits (leading zeros).
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut len = 1;
    let mut rest = n / 10;
    while rest > 0 {
        len += 1;
        rest /= 10;
    }
    for _ in len..width {
        out.push('0');
    }
    push_uint(out, n);
}

/// Appends `addr` as its `Display` writes it: `1.2.3.4:5` without the
/// formatting machinery for IPv4, through `Display` for IPv6 (rarer, and
/// with compression rules not worth repeating).
pub fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_uint(out, u64::from(octet));
            }
            out.push(':');
            push_uint(out, u64::from(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

/// An address as people read it: an IPv6 scope by its interface's name
/// (`[fe80::1%eth0]:9`, as `ip` and `ping` write it, and as `--peer`
/// takes it) rather than its number; otherwise as `Display` writes it.
/// The `--json` stream keeps the numeric form, which `SocketAddr` parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownAddr(pub SocketAddr);

/// `addr` as people read it ([`ShownAddr`]).
pub fn shown(addr: SocketAddr) -> ShownAddr {
    ShownAddr(addr)
}

impl std::fmt::Display for ShownAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => {
                match crate::net::addr::interface_name(v6.scope_id()) {
                    Some(name) => write!(
                        f,
                        "[{}%{}]:{}",
                        v6.ip(),
                        super::escape::escape(&name),
                        v6.port()
                    ),
                    None => write!(f, "{}", self.0),
                }
            }
            addr => write!(f, "{addr}"),
        }
    }
}

/// Appends `addr` as people read it ([`ShownAddr`]): IPv4 as
/// [`push_addr`] writes it.
pub fn push_shown_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(_) => push_addr(out, addr),
        SocketAddr::V6(_) => {
            let _ = write!(out, "{}", ShownAddr(addr));
        }
    }
}

/// Times of day, formatted by chrono once per second and reused for every
/// datagram within it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    local: Cached,
    utc: Cached,
}

/// The text of one whole second, and which second it is.
#[derive(Debug, Clone, Default)]
struct Cached {
    second: Option<u64>,
    text: String,
}

impl Cached {
    /// The text for `second` (seconds since the epoch), made by `make`
    /// when the second changed.
    fn get(&mut self, second: u64, make: impl FnOnce() -> String) -> &str {
        if self.second != Some(second) {
            self.text = make();
            self.second = Some(second);
        }
        &self.text
    }
}

impl Clock {
    /// Appends `at` as local `HH:MM:SS.mmm` (what chrono's
    /// `%H:%M:%S%.3f` writes).
    pub fn push_local_millis(&mut self, out: &mut String, at: SystemTime) {
        let Ok(since) = at.duration_since(UNIX_EPOCH) else {
            let _ = write!(
                out,
                "{}",
                DateTime::<Local>::from(at).format("%H:%M:%S%.3f")
            );
            return;
        };
        let second = since.as_secs();
        let whole = UNIX_EPOCH + std::time::Duration::from_secs(second);
        out.push_str(self.local.get(second, || {
            DateTime::<Local>::from(whole)
                .format("%H:%M:%S")
                .to_string()
        }));
        out.push('.');
        push_padded(out, u64::from(since.subsec_millis()), 3);
    }

    /// Appends `at` as RFC 3339 UTC with microseconds
    /// (`2026-11-18T11:06:40.123456Z`, what chrono's `to_rfc3339_opts`
    /// writes).
    pub fn push_utc_micros(&mut self, out: &mut String, at: SystemTime) {
        let Ok(since) = at.duration_since(UNIX_EPOCH) else {
            out.push_str(&DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Micros, true));
            return;
        };
        let second = since.as_secs();
        let whole = UNIX_EPOCH + std::time::Duration::from_secs(second);
        out.push_str(self.utc.get(second, || {
            DateTime::<Utc>::from(whole)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        }));
        out.push('.');
        push_padded(out, u64::from(since.subsec_micros()), 6);
        out.push('Z');
    }
}

/// A byte that stands for itself in a JSON string and on a terminal.
fn is_plain(byte: u8) -> bool {
    matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\'
}

/// The length of the run of plain bytes at the start of `bytes`.
pub fn plain_run(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| !is_plain(b))
        .unwrap_or(bytes.len())
}

/// Appends `text` as the body of a JSON string (no quotes), escaped as
/// serde_json escapes it, plus every character [`is_hidden`] as `\uXXXX`
/// (UTF-16 units): what [`super::json`] writes.
/// Writes `\uXXXX` (lower-case hex) for one UTF-16 unit, without the
/// formatting machinery: a binary payload is mostly such escapes.
fn push_unicode_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

pub fn push_json_str(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let run = plain_run(&bytes[at..]);
        out.push_str(&text[at..at + run]);
        at += run;
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || is_hidden(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
            c => out.push(c),
        }
        at += c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, UNIX_EPOCH};

    use chrono::{DateTime, Local, SecondsFormat, Utc};
    use proptest::prelude::*;

    use super::*;

    /// An IPv6 scope reads as its interface's name for people (the
    /// loopback interface here); a number no interface has stays a
    /// number; addresses without a scope read as `Display` writes them,
    /// and the in-place form is the same.
    #[cfg(unix)]
    #[test]
    fn scopes_read_as_interface_names() {
        let lo = nix::net::if_::if_nametoindex("lo").expect("a loopback interface");
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9,
            0,
            lo,
        ));
        assert_eq!(shown(scoped).to_string(), "[fe80::1%lo]:9");
        let unknown = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9,
            0,
            999_999,
        ));
        assert_eq!(shown(unknown).to_string(), "[fe80::1%999999]:9");
        for addr in [
            scoped,
            unknown,
            "[::1]:9".parse().unwrap(),
            "10.0.0.1:5".parse().unwrap(),
        ] {
            let mut out = String::new();
            push_shown_addr(&mut out, addr);
            assert_eq!(out, shown(addr).to_string());
        }
        assert_eq!(shown("[::1]:9".parse().unwrap()).to_string(), "[::1]:9");
    }

    /// Numbers and addresses read as `Display` writes them.
    #[test]
    fn numbers_and_addresses_match_display() {
        for n in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
            let mut out = String::new();
            push_uint(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for addr in [
            "0.0.0.0:0",
            "127.0.0.1:9",
            "255.255.255.255:65535",
            "[::1]:5000",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut out = String::new();
            push_addr(&mut out, addr);
            assert_eq!(out, addr.to_string());
        }
    }

    proptest! {
        /// The cached clock writes what chrono writes, for any instant,
        /// including several within one second.
        #[test]
        fn clock_matches_chrono(micros in 0u64..4_102_444_800_000_000, later in 0u64..999_999) {
            let mut clock = Clock::default();
            let at = UNIX_EPOCH + Duration::from_micros(micros);
            let again = at + Duration::from_micros(later % (1_000_000 - micros % 1_000_000));
            for at in [at, again] {
                let mut local = String::new();
                clock.push_local_millis(&mut local, at);
                prop_assert_eq!(local, DateTime::<Local>::from(at).format("%H:%M:%S%.3f").to_string());
                let mut utc = String::new();
                clock.push_utc_micros(&mut utc, at);
                prop_assert_eq!(utc, DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Micros, true));
            }
        }

        /// JSON strings escape exactly as serde_json with dgram's
        /// formatter does.
        #[test]
        fn json_strings_match_serde(text in any::<String>(), ascii in "[ -~\\x00-\\x1f\\x7f]{0,40}") {
            for text in [text, ascii] {
                let mut fast = String::from("\"");
                push_json_str(&mut fast, &text);
                fast.push('"');
                prop_assert_eq!(fast, crate::output::json::string_literal(&text));
            }
        }
    }

    /// Before the epoch, chrono does the work.
    #[test]
    fn clock_handles_times_before_the_epoch() {
        let at = UNIX_EPOCH - Duration::from_millis(1500);
        let mut out = String::new();
        Clock::default().push_utc_micros(&mut out, at);
        assert_eq!(out, "1969-12-31T23:59:58.500000Z");
    }
}
