//! Parsing of what users type, on the command line and at the chat prompt:
//! socket addresses, byte sizes and hex payloads.
//!
//! Each parser returns a message that says what is wrong and what to type
//! instead. Sizes are checked against their limits here, before anything is
//! allocated.

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
    if let Ok(index) = scope.parse::<u32>() {
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

fn parse_port(port: &str) -> Result<u16, String> {
    let number: u64 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number: {EXAMPLE}"))?;
    u16::try_from(number)
        .map_err(|_| format!("port {number} is out of range: ports go from 0 to 65535"))
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

/// Parses a number of seconds (`3`, `0.5`): positive, at most a day.
pub fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds (such as 3 or 0.5)"))?;
    if !(value > 0.0 && value <= 86_400.0) {
        return Err(format!(
            "'{text}': give more than 0 and at most 86400 seconds"
        ));
    }
    Ok(value)
}

/// Parses a rate in datagrams per second: `5000`, `10k`, `1.5M` (decimal
/// units).
pub fn rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, scale) = match lower.strip_suffix('k') {
        Some(number) => (number, 1e3),
        None => match lower.strip_suffix('m') {
            Some(number) => (number, 1e6),
            None => (lower.as_str(), 1.0),
        },
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("'{text}' is not a rate: use datagrams per second such as 5000, 10k or 1.5M")
    })?;
    let rate = (value * scale).round();
    if !(1.0..=1e9).contains(&rate) {
        return Err(format!(
            "'{text}': give at least 1 and at most 1G datagrams per second"
        ));
    }
    Ok(rate as u64)
}

/// Parses a byte count: `4096`, `4k`, `4KiB`, `2m`, `1MiB`, `1G` (binary
/// units).
pub fn byte_count(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let scale: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': use a number of bytes, or k/M/G"
            ));
        }
    };
    if digits.is_empty() {
        return Err(format!(
            "'{text}' is not a byte count: use a number such as 4096 or 64k"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is far too large"))?;
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is far too large"))
}

/// Parses a payload size (`--size`, `/size`, `/burst`): at most 65527
/// bytes, the largest UDP payload of any family. (Over IPv4 the limit is
/// 65507; that is checked once the destination is known.)
pub fn payload_size(text: &str) -> Result<usize, String> {
    let size = byte_count(text)?;
    if size > MAX_PAYLOAD as u64 {
        return Err(format!(
            "{size} bytes do not fit in one datagram: UDP carries at most {MAX_PAYLOAD_V4} bytes over IPv4 and {MAX_PAYLOAD} over IPv6"
        ));
    }
    Ok(size as usize)
}

/// Parses a `SO_RCVBUF`/`SO_SNDBUF` request: 1 byte to 1 GiB.
pub fn buffer_size(text: &str) -> Result<usize, String> {
    let size = byte_count(text)?;
    if size == 0 {
        return Err("a buffer of 0 bytes cannot hold a datagram: ask for at least 1 (the kernel rounds up to its minimum)".to_string());
    }
    if size > MAX_BUFFER as u64 {
        return Err(format!(
            "{size} bytes is beyond reason for a socket buffer: ask for at most 1G (Linux caps it at net.core.rmem_max anyway)"
        ));
    }
    Ok(size as usize)
}

/// Parses `--max-size`: the application's receive buffer, 1 to 65535 bytes.
pub fn recv_size(text: &str) -> Result<usize, String> {
    let size = byte_count(text)?;
    if size == 0 {
        return Err(
            "a 0-byte receive buffer would truncate every datagram: use 1 to 65535".to_string(),
        );
    }
    if size > MAX_RECV_SIZE as u64 {
        return Err(format!(
            "no UDP datagram is longer than {MAX_RECV_SIZE} bytes, so {size} is pointless: use 1 to {MAX_RECV_SIZE}"
        ));
    }
    Ok(size as usize)
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
        if digits.is_empty() || !digits.len().is_multiple_of(2) {
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
                .contains("far too large")
        );
        assert!(byte_count("k").unwrap_err().contains("not a byte count"));
        assert!(buffer_size("0").is_err());
        assert!(buffer_size("2G").is_err());
        assert!(recv_size("0").is_err());
        assert!(recv_size("65536").is_err());
        assert!(recv_size("64k").unwrap_err().contains("65535"));
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
