//! Parsing of what users type: socket addresses, byte sizes and hex payloads.
//!
//! Each parser returns a message that says what is wrong and what to type
//! instead; clap puts it on the one line it prints for a usage error.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The largest buffer size dgram will ask the kernel for (1 GiB). Linux caps
/// requests far below this anyway; anything larger is a typo.
pub const MAX_BUFFER: usize = 1 << 30;

/// The largest UDP payload over IPv4: 65535 - 20 (IPv4 header) - 8 (UDP header).
pub const MAX_PAYLOAD_V4: usize = 65507;

/// The largest UDP payload over IPv6 (without jumbograms): 65535 - 8.
pub const MAX_PAYLOAD_V6: usize = 65527;

/// The largest application receive buffer worth having: no UDP datagram is
/// longer than this.
pub const MAX_RECV_SIZE: usize = 65535;

/// Parses `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (resolved, first address).
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let example = "expected IP:PORT such as 127.0.0.1:9000 or [::1]:9000";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("'{text}' has no port: {example}"));
    };
    let port: u32 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number: {example}"))?;
    let port = u16::try_from(port)
        .map_err(|_| format!("port {port} is out of range: ports go from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{text}' has no host: {example}"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.contains(':') || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("'{host}' is not an IP address: {example}"));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("'{host}' has no address: {example}")),
        Err(_) => Err(format!("cannot resolve host '{host}': {example}")),
    }
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

/// Parses a byte count: `4096`, `4k`, `4KiB`, `2m`, `1MiB` (binary units).
pub fn byte_count(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let scale: usize = match unit.trim() {
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
    let value: usize = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a byte count: use a number such as 4096 or 64k"))?;
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is far too large"))
}

/// Parses a `SO_RCVBUF`/`SO_SNDBUF` request: 1 byte to [`MAX_BUFFER`].
pub fn buffer_size(text: &str) -> Result<usize, String> {
    let size = byte_count(text)?;
    if size == 0 {
        return Err("a buffer of 0 bytes cannot hold a datagram: ask for at least 1 (the kernel rounds up to its minimum)".to_string());
    }
    if size > MAX_BUFFER {
        return Err(format!(
            "{size} bytes is beyond reason for a socket buffer: ask for at most 1G (Linux caps it at net.core.rmem_max anyway)"
        ));
    }
    Ok(size)
}

/// Parses `--max-size`: the application's receive buffer, 1 to 65535 bytes.
pub fn recv_size(text: &str) -> Result<usize, String> {
    let size = byte_count(text)?;
    if size == 0 {
        return Err(
            "a 0-byte receive buffer would truncate every datagram: use 1 to 65535".to_string(),
        );
    }
    if size > MAX_RECV_SIZE {
        return Err(format!(
            "no UDP datagram is longer than 65535 bytes, so {size} is pointless: use 1 to 65535"
        ));
    }
    Ok(size)
}

/// Parses raw bytes written as hex: `00ff10`, `00 ff 10`, `00:ff:10`, `0x00ff`.
pub fn hex(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: Vec<u8> = body
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'-' | b'\t'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "'{text}' has an odd number of hex digits: write two per byte, such as 00ff"
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(pair, 16)
                .map_err(|_| format!("'{pair}' in '{text}' is not a hex byte: use 0-9 and a-f"))
        })
        .collect()
}

/// The largest UDP payload that can be sent to `addr`.
pub fn payload_limit(addr: &SocketAddr) -> (usize, &'static str) {
    match addr {
        SocketAddr::V4(_) => (MAX_PAYLOAD_V4, "IPv4"),
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => (MAX_PAYLOAD_V4, "IPv4"),
        SocketAddr::V6(_) => (MAX_PAYLOAD_V6, "IPv6"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_addr("127.0.0.1:9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(socket_addr("[::]:0").unwrap(), "[::]:0".parse().unwrap());
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
        assert!(socket_addr("localhost:9000").is_ok());
        assert!(peer_addr("127.0.0.1:0").unwrap_err().contains("port 0"));
        assert!(
            peer_addr("0.0.0.0:9")
                .unwrap_err()
                .contains("peer's address")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(byte_count("4096").unwrap(), 4096);
        assert_eq!(byte_count("4k").unwrap(), 4096);
        assert_eq!(byte_count("2MiB").unwrap(), 2 << 20);
        assert!(byte_count("4q").is_err());
        assert!(buffer_size("0").is_err());
        assert!(buffer_size("2G").is_err());
        assert!(recv_size("0").is_err());
        assert!(recv_size("65536").is_err());
        assert!(recv_size("64k").unwrap_err().contains("65535"));
    }

    #[test]
    fn hex_payloads() {
        assert_eq!(hex("00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(hex("0x00 FF:10").unwrap(), vec![0, 255, 16]);
        assert_eq!(hex("").unwrap(), Vec::<u8>::new());
        assert!(hex("abc").is_err());
        assert!(hex("zz").is_err());
    }
}
