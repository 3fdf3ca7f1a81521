//! Parsing of what users type, on the command line and at the chat prompt:
//! socket addresses and ports, numbers (sizes, rates, counts, durations: one
//! grammar for all) and hex payloads.
//!
//! Each parser returns a message that says what is wrong and what to type
//! instead. Sizes are checked against their limits here, before anything is
//! allocated; every number has a maximum, named in its message.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};

use crate::net::addr::canonical;
use crate::net::limits::{MAX_BUFFER, MAX_PAYLOAD, MAX_PAYLOAD_V4, MAX_RECV_SIZE};

const EXAMPLE: &str = "expected IP:PORT such as 127.0.0.1:9000, [::1]:9000 or localhost:9000";

/// Parses `IP:PORT`, `[IPv6]:PORT`, `[IPv6%SCOPE]:PORT` (a scope is an
/// interface name or number) or `HOST:PORT` (resolved; an IPv4 address is
/// preferred when the host has both).
///
/// An IPv6 address must be in brackets: `fe80::1:9000` could be the
/// address `fe80::1` with port 9000 or the address `fe80::1:9000` with no
/// port, so it is refused with the bracketed form to type instead.
///
/// ```
/// use dgram::cmd::parse::socket_addr;
///
/// assert_eq!(socket_addr("[::1]:9000").unwrap().to_string(), "[::1]:9000");
/// assert_eq!(socket_addr("localhost:9000").unwrap().to_string(), "127.0.0.1:9000");
/// let refused = socket_addr("fe80::1:9000").unwrap_err();
/// assert!(refused.contains("[fe80::1]:9000"));
/// ```
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    // An IPv4-mapped address ([::ffff:127.0.0.1]:9) is the IPv4 address it
    // maps, and is shown so: replies and errors come from it.
    parse_socket_addr(text).map(canonical)
}

/// [`socket_addr`] without name resolution: a host name is refused, never
/// looked up (for fuzzing, which must not send DNS queries).
pub fn socket_addr_offline(text: &str) -> Result<SocketAddr, String> {
    parse_socket_addr_with(text, |host, _| {
        Err(format!("'{host}' is a host name, not resolved here"))
    })
    .map(canonical)
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    parse_socket_addr_with(text, resolve)
}

fn parse_socket_addr_with(
    text: &str,
    resolve: impl Fn(&str, u16) -> Result<SocketAddr, String>,
) -> Result<SocketAddr, String> {
    if let Some(rest) = text.strip_prefix('[') {
        return bracketed(text, rest);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("'{text}' has no port: {EXAMPLE}"));
    };
    if host.contains(':') {
        let mut message = format!(
            "'{text}' is ambiguous: write an IPv6 address in brackets, as in [{host}]:{port}"
        );
        if text.parse::<Ipv6Addr>().is_ok() {
            message.push_str(&format!(" (or [{text}]:PORT if all of it is the address)"));
        }
        return Err(message);
    }
    let port = parse_port(port)?;
    if host.is_empty() {
        return Err(format!("'{text}' has no host: {EXAMPLE}"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("'{host}' is not an IP address: {EXAMPLE}"));
    }
    resolve(host, port)
}

/// `[IPv6]:PORT` or `[IPv6%SCOPE]:PORT`; `rest` follows the `[`.
fn bracketed(text: &str, rest: &str) -> Result<SocketAddr, String> {
    let Some((inside, after)) = rest.split_once(']') else {
        return Err(format!("'{text}' has no closing ']': {EXAMPLE}"));
    };
    let Some(port) = after.strip_prefix(':') else {
        return Err(format!("'{text}' has no port after ']': {EXAMPLE}"));
    };
    let port = parse_port(port)?;
    let (ip, scope) = match inside.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (inside, None),
    };
    let ip: Ipv6Addr = ip.parse().map_err(|_| {
        if ip.parse::<std::net::Ipv4Addr>().is_ok() {
            format!("'{ip}' is an IPv4 address: write it without brackets, as in {ip}:{port}")
        } else {
            format!("'{ip}' is not an IPv6 address: {EXAMPLE}")
        }
    })?;
    let scope_id = match scope {
        None => 0,
        Some(scope) => scope_id(scope)?,
    };
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope_id)))
}

/// An IPv6 scope: an interface number, or an interface name.
fn scope_id(scope: &str) -> Result<u32, String> {
    if scope.is_empty() {
        return Err(
            "an empty scope after '%': name an interface, as in [fe80::1%eth0]:9000".into(),
        );
    }
    if scope.bytes().all(|b| b.is_ascii_digit())
        && let Ok(index) = scope.parse::<u32>()
    {
        return interface_number(index);
    }
    interface_index(scope)
}

#[cfg(unix)]
fn interface_index(name: &str) -> Result<u32, String> {
    nix::net::if_::if_nametoindex(name)
        .map_err(|_| format!("there is no network interface named '{name}' (see `ip link`)"))
}

#[cfg(unix)]
fn interface_number(index: u32) -> Result<u32, String> {
    let known = nix::net::if_::if_nameindex()
        .map(|interfaces| interfaces.iter().any(|i| i.index() == index))
        .unwrap_or(true);
    if known {
        Ok(index)
    } else {
        Err(format!(
            "there is no network interface number {index} (see `ip link`)"
        ))
    }
}

#[cfg(not(unix))]
fn interface_index(name: &str) -> Result<u32, String> {
    Err(format!(
        "interface names such as '{name}' are not known here: give the interface number"
    ))
}

#[cfg(not(unix))]
fn interface_number(index: u32) -> Result<u32, String> {
    Ok(index)
}

/// A port: ASCII digits only (`str::parse` would take `+5`), 0 to 65535.
fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{port}' is not a port number: a port is 0 to 65535, digits only; {EXAMPLE}"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("port {port} is out of range: ports go from 0 to 65535"))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| format!("cannot resolve host '{host}': {EXAMPLE}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("'{host}' has no address: {EXAMPLE}"))
}

/// Parses a destination: like [`socket_addr`], but port 0 and an unspecified
/// IP (`0.0.0.0`, `[::]`) cannot be sent to.
pub fn peer_addr(text: &str) -> Result<SocketAddr, String> {
    let addr = socket_addr(text)?;
    if addr.port() == 0 {
        return Err(format!(
            "cannot send to port 0 in '{text}': give the port the peer listens on"
        ));
    }
    if addr.ip().is_unspecified() {
        return Err(format!(
            "cannot send to {} in '{text}': give the peer's address, such as 127.0.0.1",
            addr.ip()
        ));
    }
    Ok(addr)
}

// One grammar for every number a user types, on the command line and at
// the chat prompt: ASCII digits, maybe a fraction (`1.5`), maybe a unit
// (`k`, `M`, `s`, …). No sign, no `+`, no exponent, no other script's
// digits: `str::parse` takes some of those (`+5`, `1e3`, `inf`) and its
// messages ("invalid digit found in string") say nothing a user can act on.
// A fraction is taken when the result is whole in the quantity's smallest
// unit (`1.5k` bytes is 1536, `1.5s` is 1500 ms); every quantity has a
// named maximum.

/// A unit a number may carry, and what it multiplies by.
type Unit = (&'static str, u128);

/// Byte units (binary, as socket buffers and `ss` count them).
const BYTE_UNITS: &[Unit] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
];

/// Units of counts and rates (decimal: `10k` datagrams is ten thousand).
const COUNT_UNITS: &[Unit] = &[
    ("", 1),
    ("k", 1_000),
    ("m", 1_000_000),
    ("g", 1_000_000_000),
];

/// Durations, in milliseconds, for options given in milliseconds.
const MS_UNITS: &[Unit] = &[("", 1), ("ms", 1), ("s", 1_000), ("min", 60_000)];

/// Durations, in milliseconds, for options given in seconds.
const SECOND_UNITS: &[Unit] = &[("", 1_000), ("s", 1_000), ("ms", 1), ("min", 60_000)];

/// What a quantity is called in messages, with examples of its grammar.
struct Quantity {
    /// "a whole number of bytes"
    what: &'static str,
    /// "1500, 64k or 1.5M"
    examples: &'static str,
    units: &'static [Unit],
}

const BYTES: Quantity = Quantity {
    what: "a whole number of bytes",
    examples: "1500, 64k or 1.5M",
    units: BYTE_UNITS,
};

/// Why a typed number was not taken.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// Not digits, a fraction and a unit.
    NotANumber,
    /// A number with a unit this quantity does not have.
    UnknownUnit(String),
    /// A fraction of the smallest unit (`1.5` bytes).
    NotWhole,
    /// Beyond any maximum.
    TooLarge,
}

/// Reads `text` in the grammar, with `units`, as a whole number of the
/// smallest unit.
fn amount(text: &str, units: &[Unit]) -> Result<u128, Refused> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    let (fraction, unit) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(
            after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len()),
        ),
        None => ("", rest),
    };
    let dotted = rest.starts_with('.');
    if digits.is_empty() || (dotted && fraction.is_empty()) {
        return Err(Refused::NotANumber);
    }
    if !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(Refused::NotANumber);
    }
    let lower = unit.to_ascii_lowercase();
    let Some(&(_, scale)) = units.iter().find(|(name, _)| *name == lower) else {
        return Err(Refused::UnknownUnit(unit.to_string()));
    };
    let digits = digits.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    // 20 digits and 18 decimals keep every product below u128::MAX; no
    // maximum here is near 20 digits.
    if digits.len() > 20 {
        return Err(Refused::TooLarge);
    }
    if fraction.len() > 18 {
        return Err(Refused::NotWhole);
    }
    let whole: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| Refused::NotANumber)?
    };
    let tenths: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| Refused::NotANumber)?
    };
    let denominator = 10u128.pow(fraction.len() as u32);
    let numerator = (whole * denominator + tenths)
        .checked_mul(scale)
        .ok_or(Refused::TooLarge)?;
    if numerator % denominator != 0 {
        return Err(Refused::NotWhole);
    }
    Ok(numerator / denominator)
}

/// Reads a `quantity` from `min` to `max`; the messages say what is
/// accepted and name the bound.
fn bounded(text: &str, quantity: &Quantity, min: u64, max: u64) -> Result<u64, String> {
    let Quantity { what, examples, .. } = quantity;
    let range = if min == 0 {
        format!("at most {max}")
    } else {
        format!("from {min} to {max}")
    };
    match amount(text, quantity.units) {
        Ok(value) if value < u128::from(min) => {
            Err(format!("'{text}' is too small: expected {what} {range}"))
        }
        Ok(value) if value > u128::from(max) => {
            Err(format!("'{text}' is too large: expected {what} {range}"))
        }
        Ok(value) => Ok(value as u64),
        Err(Refused::TooLarge) => Err(format!(
            "'{text}' is far too large: expected {what} {range}"
        )),
        Err(Refused::UnknownUnit(unit)) => Err(format!(
            "unknown unit '{unit}' in '{text}': expected {what} such as {examples}"
        )),
        Err(Refused::NotWhole) => Err(format!(
            "'{text}' is not whole: expected {what} such as {examples}"
        )),
        Err(Refused::NotANumber) => Err(format!(
            "'{text}' is not a number: expected {what} such as {examples} (digits 0-9, no sign)"
        )),
    }
}

/// The longest wait, interval, timeout or linger: an hour, in ms.
pub const MAX_WAIT_MS: u64 = 3_600_000;

/// The largest count (`--count`, `-c`): a million million.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// The fastest rate (`--rate`): a billion datagrams per second.
pub const MAX_RATE: u64 = 1_000_000_000;

/// The longest bench (`--duration`): a day.
pub const MAX_SECONDS: u64 = 86_400;

/// Parses a number of seconds (`3`, `0.5`, `1500ms`, `2min`): more than
/// 0, at most a day, to the millisecond.
pub fn seconds(text: &str) -> Result<f64, String> {
    const SECONDS: Quantity = Quantity {
        what: "a number of seconds",
        examples: "3, 0.5, 1500ms or 2min",
        units: SECOND_UNITS,
    };
    let ms = bounded(text, &SECONDS, 1, MAX_SECONDS * 1000).map_err(|message| {
        // The bounds are counted in ms; the message says them in seconds.
        // A fraction of a second is fine: what is not whole is the count
        // of milliseconds.
        message
            .replace(
                &format!("from 1 to {}", MAX_SECONDS * 1000),
                &format!("from 0.001 to {MAX_SECONDS}"),
            )
            .replace("' is not whole:", "' is finer than a millisecond:")
    })?;
    Ok(ms as f64 / 1000.0)
}

/// A parser for a duration option given in milliseconds (`250`, `1.5s`,
/// `2min`), from `min` to `max` ms.
pub fn millis(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync {
    move |text| {
        const MS: Quantity = Quantity {
            what: "a whole number of milliseconds",
            examples: "250, 1.5s or 2min",
            units: MS_UNITS,
        };
        bounded(text, &MS, min, max)
    }
}

/// A parser for a count (`100`, `10k`, `1.5M`) from `min` to `max`, as
/// the integer type of its option.
pub fn count<T: TryFrom<u64>>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync {
    move |text| {
        const COUNT: Quantity = Quantity {
            what: "a whole number",
            examples: "100, 10k or 1.5M",
            units: COUNT_UNITS,
        };
        let value = bounded(text, &COUNT, min, max)?;
        T::try_from(value).map_err(|_| format!("'{text}' is too large: at most {max}"))
    }
}

/// Parses a rate in datagrams per second: `5000`, `10k`, `1.5M` (decimal
/// units), 1 to 1G.
pub fn rate(text: &str) -> Result<u64, String> {
    const RATE: Quantity = Quantity {
        what: "a whole number of datagrams per second",
        examples: "5000, 10k or 1.5M",
        units: COUNT_UNITS,
    };
    bounded(text, &RATE, 1, MAX_RATE)
}

/// Parses a byte count: `4096`, `4k`, `4KiB`, `1.5M`, `1MiB`, `1G`
/// (binary units), as large as a u64.
pub fn byte_count(text: &str) -> Result<u64, String> {
    bounded(text, &BYTES, 0, u64::MAX)
}

/// Parses a payload size (`--size`, `/size`, `/burst`): at most 65527
/// bytes, the largest UDP payload of any family. (Over IPv4 the limit is
/// 65507; that is checked once the destination is known.)
pub fn payload_size(text: &str) -> Result<usize, String> {
    size(text, 0, MAX_PAYLOAD, |size| {
        format!(
            "{size} bytes do not fit in one datagram: UDP carries at most {MAX_PAYLOAD_V4} bytes over IPv4 and {MAX_PAYLOAD} over IPv6"
        )
    })
}

/// Parses a `SO_RCVBUF`/`SO_SNDBUF` request: 1 byte to 1 GiB.
pub fn buffer_size(text: &str) -> Result<usize, String> {
    if let Ok(0) = amount(text, BYTE_UNITS) {
        return Err("a buffer of 0 bytes cannot hold a datagram: ask for at least 1 (the kernel rounds up to its minimum)".to_string());
    }
    size(text, 1, MAX_BUFFER, |size| {
        format!(
            "{size} bytes is beyond reason for a socket buffer: ask for at most 1G (Linux caps it at net.core.rmem_max, or wmem_max for SO_SNDBUF, anyway)"
        )
    })
}

/// Parses `--max-size`: the application's receive buffer, 1 to 65535 bytes.
pub fn recv_size(text: &str) -> Result<usize, String> {
    if let Ok(0) = amount(text, BYTE_UNITS) {
        return Err(
            "a 0-byte receive buffer would truncate every datagram: use 1 to 65535".to_string(),
        );
    }
    size(text, 1, MAX_RECV_SIZE, |size| {
        format!(
            "no UDP datagram is longer than {MAX_RECV_SIZE} bytes, so {size} is pointless: use 1 to {MAX_RECV_SIZE}"
        )
    })
}

/// A size in bytes from `min` to `max`; over `max`, the message `over`
/// makes for the size (its number of bytes, or the text as typed when it
/// is too long to count).
fn size(
    text: &str,
    min: usize,
    max: usize,
    over: impl Fn(&str) -> String,
) -> Result<usize, String> {
    match amount(text, BYTE_UNITS) {
        Ok(value) if value > max as u128 => Err(over(&value.to_string())),
        Err(Refused::TooLarge) => Err(over(text.trim())),
        _ => bounded(text, &BYTES, min as u64, max as u64).map(|size| size as usize),
    }
}

/// What separates the bytes of a hex payload: spaces, tabs, `:` and `-`.
const HEX_SEPARATORS: [char; 4] = [' ', '\t', ':', '-'];

/// Parses raw bytes written as hex (`--hex`, `/hex`): `00ff10`,
/// `00 ff 10`, `00:ff:10`, `00-ff-10`, `0x00ff`.
///
/// Spaces, tabs, `:` and `-` separate groups (a run of them is one
/// separator); each group may start with `0x` and holds two hex digits per
/// byte, so `deadbeef` is four bytes and `de:ad be-ef` the same four. A
/// group with an odd number of digits is refused, named: `1:2` is not the
/// byte 0x12, nor `0:0` one zero byte.
///
/// ```
/// use dgram::cmd::parse::hex;
///
/// assert_eq!(hex("de:ad beef").unwrap(), vec![0xde, 0xad, 0xbe, 0xef]);
/// assert!(hex("1:2").unwrap_err().contains("'1'"));
/// ```
pub fn hex(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for group in text.split(HEX_SEPARATORS).filter(|g| !g.is_empty()) {
        let digits = group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
            .unwrap_or(group);
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!(
                "'{}' in '{text}' is not hex: use 0-9 and a-f, two digits per byte (such as 00ff10 or 00:ff:10)",
                if digits.is_empty() {
                    group.to_string()
                } else {
                    bad.to_string()
                }
            ));
        }
        if digits.is_empty() {
            // Only the prefix: there is no digit to pad into an example.
            return Err(format!(
                "'{group}' in '{text}' has no hex digits after its 0x: write two per byte after it, such as 0x00ff10"
            ));
        }
        if !digits.len().is_multiple_of(2) {
            return Err(format!(
                "'{group}' in '{text}' has an odd number of hex digits: write two per byte, such as 0{digits} (spaces, ':' and '-' separate bytes)"
            ));
        }
        for pair in digits.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).expect("ASCII hex digits");
            bytes.push(u8::from_str_radix(pair, 16).expect("two hex digits"));
        }
    }
    Ok(bytes)
}

/// A chat name (`--name`): 1 to 64 bytes of UTF-8, not only spaces, no
/// control characters. The error shows the name escaped (clap would print
/// a rejected value raw, escape sequences and all), so the value is taken
/// as it is here and checked by [`check_chat_name`].
pub fn chat_name(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

/// Checks a `--name`; the error quotes it escaped.
pub fn check_chat_name(name: &str) -> Result<(), String> {
    if crate::proto::envelope::valid_name(name) && !name.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "invalid value \"{}\" for --name: a name is 1 to {} bytes of text, not only spaces, without control characters",
            crate::output::escape::escape(name),
            crate::proto::envelope::MAX_NAME
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// IPv4, bracketed IPv6, hostnames; bad ports and hosts say why.
    #[test]
    fn addresses() {
        assert_eq!(
            socket_addr("127.0.0.1:9000").unwrap(),
            addr("127.0.0.1:9000")
        );
        assert_eq!(socket_addr("[::]:0").unwrap(), addr("[::]:0"));
        assert_eq!(socket_addr("[::1]:9201").unwrap(), addr("[::1]:9201"));
        assert!(
            socket_addr("127.0.0.1:70000")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(socket_addr("127.0.0.1").unwrap_err().contains("no port"));
        assert!(
            socket_addr("300.1.1.1:80")
                .unwrap_err()
                .contains("not an IP")
        );
        assert_eq!(
            socket_addr("localhost:9000").unwrap(),
            addr("127.0.0.1:9000")
        );
        assert!(peer_addr("127.0.0.1:0").unwrap_err().contains("port 0"));
        assert!(
            peer_addr("0.0.0.0:9")
                .unwrap_err()
                .contains("peer's address")
        );
        assert!(
            socket_addr("[127.0.0.1]:9")
                .unwrap_err()
                .contains("without brackets")
        );
        assert_eq!(
            peer_addr("[::ffff:127.0.0.1]:9").unwrap(),
            addr("127.0.0.1:9"),
            "a mapped address is the IPv4 address it maps"
        );
    }

    /// An IPv6 address without brackets is refused, never guessed at, and
    /// the message shows the bracketed form.
    #[test]
    fn ipv6_needs_brackets() {
        let err = socket_addr("fe80::1:9000").unwrap_err();
        assert!(err.contains("[fe80::1]:9000"), "{err}");
        assert!(err.contains("[fe80::1:9000]:PORT"), "{err}");
        let err = socket_addr("::1:9201").unwrap_err();
        assert!(err.contains("[::1]:9201"), "{err}");
        assert!(peer_addr("::1:9120").is_err());
    }

    /// Scope ids: an interface number or name, which must exist.
    #[test]
    fn scope_ids() {
        #[cfg(unix)]
        {
            let lo = nix::net::if_::if_nametoindex("lo").unwrap();
            let numeric = socket_addr(&format!("[fe80::1%{lo}]:9000")).unwrap();
            assert!(matches!(numeric, SocketAddr::V6(v6) if v6.scope_id() == lo));
            let err = socket_addr("[fe80::1%999999]:9000").unwrap_err();
            assert!(err.contains("no network interface number 999999"), "{err}");
            let named = socket_addr("[fe80::1%lo]:9000").unwrap();
            assert!(matches!(named, SocketAddr::V6(v6) if v6.scope_id() == lo));
            let err = socket_addr("[fe80::1%nosuch0]:9000").unwrap_err();
            assert!(
                err.contains("no network interface named 'nosuch0'"),
                "{err}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(byte_count("4096").unwrap(), 4096);
        assert_eq!(byte_count("4k").unwrap(), 4096);
        assert_eq!(byte_count("2MiB").unwrap(), 2 << 20);
        assert!(byte_count("4q").is_err());
        assert!(
            byte_count("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            byte_count("999999999999999999999999")
                .unwrap_err()
                .contains("far too large")
        );
        assert!(byte_count("k").unwrap_err().contains("not a number"));
        assert!(buffer_size("0").is_err());
        assert!(buffer_size("2G").is_err());
        assert!(recv_size("0").is_err());
        assert!(recv_size("65536").is_err());
        assert!(recv_size("64k").unwrap_err().contains("65535"));
    }

    /// One grammar: digits, maybe a fraction, maybe a unit; a fraction is
    /// taken when the result is whole. Signs, `+`, exponents, `inf` and
    /// other scripts' digits are not numbers here, and the message says
    /// what is, never Rust's words.
    #[test]
    fn one_number_grammar() {
        assert_eq!(byte_count("1.5k").unwrap(), 1536);
        assert_eq!(byte_count("1.5M").unwrap(), 1536 << 10);
        assert_eq!(byte_count("64KiB").unwrap(), 65536);
        assert_eq!(byte_count("007").unwrap(), 7);
        assert_eq!(payload_size("1.5k").unwrap(), 1536);
        assert_eq!(rate("1.5M").unwrap(), 1_500_000);
        assert_eq!(count::<u64>(1, 100)("2").unwrap(), 2);
        assert_eq!(count::<u64>(1, 100_000)("1.5k").unwrap(), 1500);
        assert_eq!(millis(0, 60_000)("1.5s").unwrap(), 1500);
        assert_eq!(millis(0, 600_000)("2min").unwrap(), 120_000);
        assert_eq!(millis(0, 60_000)("250ms").unwrap(), 250);
        assert_eq!(seconds("0.5").unwrap(), 0.5);
        assert_eq!(seconds("1500ms").unwrap(), 1.5);
        for bad in [
            "-1", "+5", "abc", "\u{663}", "1e3", "inf", "NaN", "1.", ".5", "", "1,5",
        ] {
            let err = byte_count(bad).unwrap_err();
            assert!(
                err.contains("not a number")
                    && err.contains("expected a whole number of bytes such as 1500, 64k or 1.5M"),
                "{bad}: {err}"
            );
        }
        let err = payload_size("1.5").unwrap_err();
        assert!(err.contains("not whole"), "{err}");
        assert!(byte_count("4q").unwrap_err().contains("unknown unit 'q'"));
        assert!(millis(0, 1000)("0.5").unwrap_err().contains("not whole"));
        assert!(millis(0, 1000)("3q").unwrap_err().contains("unknown unit"));
        for err in [
            count::<u8>(0, 20)("300").unwrap_err(),
            count::<u8>(0, 20)("99999999999999999999999").unwrap_err(),
            payload_size("-1").unwrap_err(),
            rate("x").unwrap_err(),
        ] {
            assert!(
                !err.contains("invalid digit") && !err.contains("fit in target type"),
                "{err}"
            );
        }
    }

    /// Every quantity has a maximum, named in its message.
    #[test]
    fn maxima_are_named() {
        let err = millis(0, MAX_WAIT_MS)("18446744073709551615").unwrap_err();
        assert!(err.contains("at most 3600000"), "{err}");
        let err = millis(0, MAX_WAIT_MS)("99999999999999999999999").unwrap_err();
        assert!(err.contains("at most 3600000"), "{err}");
        let err = count::<u8>(0, 20)("21").unwrap_err();
        assert!(err.contains("at most 20"), "{err}");
        let err = count::<u64>(1, 10)("0").unwrap_err();
        assert!(err.contains("from 1 to 10"), "{err}");
        let err = rate("2G").unwrap_err();
        assert!(err.contains("1000000000"), "{err}");
        let err = seconds("86401").unwrap_err();
        assert!(err.contains("86400"), "{err}");
        assert!(seconds("0").unwrap_err().contains("too small"));
    }

    /// A port is ASCII digits, 0 to 65535: `+5` and other scripts' digits
    /// are not port 5.
    #[test]
    fn ports_are_digits_only() {
        for bad in [
            "127.0.0.1:+5",
            "127.0.0.1:\u{665}",
            "127.0.0.1:5a",
            "[::1]:+5",
            "127.0.0.1: 5",
        ] {
            let err = socket_addr(bad).unwrap_err();
            assert!(err.contains("digits only"), "{bad}: {err}");
        }
        assert_eq!(socket_addr("127.0.0.1:65535").unwrap().port(), 65535);
        assert!(
            socket_addr("127.0.0.1:0065536")
                .unwrap_err()
                .contains("out of range")
        );
    }

    /// Payload sizes are checked before anything is allocated: a terabyte
    /// is refused by the parser, with both families' limits.
    #[test]
    fn payload_sizes_are_bounded() {
        assert_eq!(payload_size("65527").unwrap(), 65527);
        assert_eq!(payload_size("0").unwrap(), 0);
        for huge in ["65528", "1000000000000", "4G", "64k"] {
            let err = payload_size(huge).unwrap_err();
            assert!(err.contains("65507") && err.contains("65527"), "{err}");
        }
    }

    #[test]
    fn hex_payloads() {
        assert_eq!(hex("00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(hex("0x00 FF:10").unwrap(), vec![0, 255, 16]);
        assert_eq!(hex("00-ff\t10").unwrap(), vec![0, 255, 16]);
        assert_eq!(hex("0x01 0x02").unwrap(), vec![1, 2]);
        assert_eq!(hex(" de:ad  beef ").unwrap(), vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(hex("").unwrap(), Vec::<u8>::new());
        assert!(hex("abc").unwrap_err().contains("'abc'"));
        assert!(hex("zz").unwrap_err().contains("'z'"));
        assert!(hex("0x").unwrap_err().contains("'0x'"));
    }

    /// Seconds take fractions: one finer than a millisecond is said to be
    /// so, not "not whole" (which `0.5` is not either).
    #[test]
    fn seconds_finer_than_a_millisecond_say_so() {
        assert_eq!(seconds("0.5").unwrap(), 0.5);
        let err = seconds("0.0001").unwrap_err();
        assert!(
            err.starts_with("'0.0001' is finer than a millisecond: expected a number of seconds"),
            "{err}"
        );
    }

    /// A bare `0x` (or `0x` then a separator) says there are no digits
    /// after it, with a real example; it used to call it an odd number of
    /// digits and suggest "such as 0".
    #[test]
    fn bare_hex_prefix_says_no_digits() {
        for text in ["0x", "0X", "00 0x", "0x ff"] {
            let err = hex(text).unwrap_err();
            assert!(
                err.contains("has no hex digits after its 0x") && err.contains("such as 0x00ff10"),
                "{text}: {err}"
            );
            assert!(!err.contains("odd"), "{text}: {err}");
        }
        assert!(hex("0x0").unwrap_err().contains("such as 00"));
    }

    /// Separators separate bytes: a group of one digit is refused and
    /// named, never merged with its neighbour.
    #[test]
    fn hex_separators_separate_bytes() {
        let err = hex("1:2").unwrap_err();
        assert!(err.contains("'1' in '1:2'") && err.contains("odd"), "{err}");
        assert!(hex("0:0:0:0").unwrap_err().contains("'0' in"));
        let err = hex("00 ff 1 10").unwrap_err();
        assert!(err.contains("'1' in"), "{err}");
        assert_eq!(hex("01:02").unwrap(), vec![1, 2]);
    }
}
