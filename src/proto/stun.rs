//! STUN Binding (RFC 8489), without input or output: decoding a message,
//! encoding Binding requests, success responses and the 420 error a server
//! owes a request it cannot understand.
//!
//! ```text
//! 0                   1                   2                   3
//! 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |0 0|     STUN Message Type     |         Message Length        |
//! |                 Magic Cookie (0x2112A442)                     |
//! |                 Transaction ID (96 bits)                      |
//! attributes: type(16) length(16) value, padded to 4 bytes
//! ```
//!
//! What a service without credentials needs and no more: USERNAME and
//! MESSAGE-INTEGRITY are parsed past, not verified (there is no password
//! to check them with); FINGERPRINT is checked when present, and a message
//! whose FINGERPRINT is wrong is not STUN (RFC 8489, section 7.3).
//! Checked against the test vectors of RFC 5769 (section 2.1 to 2.3) in
//! the tests below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The magic cookie every RFC 5389/8489 message carries at offset 4.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// The fixed header: type, length, cookie, transaction id.
pub const HEADER_LEN: usize = 20;

/// The message type of a Binding request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// The message type of a Binding success response.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// The message type of a Binding error response.
pub const BINDING_ERROR: u16 = 0x0111;

/// XOR-MAPPED-ADDRESS (RFC 8489, 14.2).
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// MAPPED-ADDRESS (RFC 8489, 14.1): the address unobfuscated, for RFC
/// 3489 clients.
pub const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
/// ERROR-CODE (RFC 8489, 14.8).
pub const ATTR_ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (RFC 8489, 14.9).
pub const ATTR_UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// MESSAGE-INTEGRITY (RFC 8489, 14.5).
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// MESSAGE-INTEGRITY-SHA256 (RFC 8489, 14.6).
pub const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// PADDING (RFC 5780, 7.6): lets a client make its request as large as
/// the response it wants.
pub const ATTR_PADDING: u16 = 0x0026;
/// SOFTWARE (RFC 8489, 14.14).
pub const ATTR_SOFTWARE: u16 = 0x8022;
/// FINGERPRINT (RFC 8489, 14.7).
pub const ATTR_FINGERPRINT: u16 = 0x8028;
/// OTHER-ADDRESS (RFC 5780, 7.4): where else the server answers, so that a
/// client can see whether its NAT maps per destination. Comprehension
/// optional; encoded as MAPPED-ADDRESS is (not XORed).
pub const ATTR_OTHER_ADDRESS: u16 = 0x802C;

/// What FINGERPRINT's CRC-32 is XORed with ("STUN").
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// The comprehension-required attributes (types below 0x8000) this
/// service understands: those of RFC 8489 (the credential ones are
/// understood as "not checked here") and RFC 5780's PADDING. Any other one
/// in a request gets a 420 (RFC 8489, 6.3.1).
const UNDERSTOOD: [u16; 12] = [
    ATTR_MAPPED_ADDRESS,
    0x0006, // USERNAME
    ATTR_MESSAGE_INTEGRITY,
    ATTR_ERROR_CODE,
    ATTR_UNKNOWN_ATTRIBUTES,
    0x0014, // REALM
    0x0015, // NONCE
    ATTR_MESSAGE_INTEGRITY_SHA256,
    0x001D, // PASSWORD-ALGORITHM
    0x001E, // USERHASH
    ATTR_XOR_MAPPED_ADDRESS,
    ATTR_PADDING,
];

/// Why bytes are not a STUN message (or not one this module reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStun {
    /// Shorter than the 20-byte header.
    Short,
    /// The two top bits are not zero.
    TopBits,
    /// The magic cookie is not 0x2112A442 (RFC 3489 or not STUN).
    Cookie,
    /// The header's length is not a multiple of 4, or is not what follows
    /// the header.
    Length,
    /// An attribute runs past the end of the message.
    Attribute,
    /// FINGERPRINT is not the last attribute, or its CRC is wrong.
    Fingerprint,
}

/// A decoded STUN message: what a Binding service needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message type (method and class), e.g. [`BINDING_REQUEST`].
    pub kind: u16,
    /// The 96-bit transaction id.
    pub transaction: [u8; 12],
    /// XOR-MAPPED-ADDRESS, decoded (responses).
    pub mapped: Option<SocketAddr>,
    /// OTHER-ADDRESS, decoded (responses of a server with a second
    /// address).
    pub other: Option<SocketAddr>,
    /// SOFTWARE, as sent (not escaped: escape before showing it).
    pub software: Option<Vec<u8>>,
    /// Whether a FINGERPRINT was present (it was checked: a wrong one is
    /// [`NotStun::Fingerprint`]).
    pub fingerprint: bool,
    /// The comprehension-required attributes not understood, in order.
    pub unknown_required: Vec<u16>,
    /// The length of the whole message, header included.
    pub len: usize,
}

/// True when `datagram` looks like STUN at a glance: first byte `0x00` or
/// `0x01` (the top two bits zero, and a method below 0x100) and the magic
/// cookie. How one port tells STUN from dgram's envelopes (`0xF5`).
pub fn looks_like_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] <= 1 && datagram[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// Decodes a STUN message (RFC 8489, section 5 and 14).
pub fn decode(datagram: &[u8]) -> Result<Message, NotStun> {
    if datagram.len() < HEADER_LEN {
        return Err(NotStun::Short);
    }
    let kind = u16::from_be_bytes([datagram[0], datagram[1]]);
    if kind & 0xC000 != 0 {
        return Err(NotStun::TopBits);
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if datagram[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(NotStun::Cookie);
    }
    if length % 4 != 0 || HEADER_LEN + length != datagram.len() {
        return Err(NotStun::Length);
    }
    let mut transaction = [0u8; 12];
    transaction.copy_from_slice(&datagram[8..20]);
    let mut message = Message {
        kind,
        transaction,
        mapped: None,
        other: None,
        software: None,
        fingerprint: false,
        unknown_required: Vec::new(),
        len: datagram.len(),
    };
    let mut at = HEADER_LEN;
    // After MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and
    // FINGERPRINT count; anything else there is ignored (RFC 8489, 14.5).
    let mut after_integrity = false;
    while at < datagram.len() {
        let header = datagram.get(at..at + 4).ok_or(NotStun::Attribute)?;
        let attr = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = datagram
            .get(at + 4..at + 4 + len)
            .ok_or(NotStun::Attribute)?;
        let next = at + 4 + len.next_multiple_of(4);
        if next > datagram.len() {
            return Err(NotStun::Attribute);
        }
        if message.fingerprint {
            // Something after FINGERPRINT.
            return Err(NotStun::Fingerprint);
        }
        match attr {
            ATTR_FINGERPRINT => {
                let expected = crc32(&datagram[..at]) ^ FINGERPRINT_XOR;
                if value != expected.to_be_bytes() {
                    return Err(NotStun::Fingerprint);
                }
                message.fingerprint = true;
            }
            _ if after_integrity => {}
            ATTR_MESSAGE_INTEGRITY | ATTR_MESSAGE_INTEGRITY_SHA256 => after_integrity = true,
            ATTR_XOR_MAPPED_ADDRESS => {
                message.mapped = Some(xor_address(value, &transaction).ok_or(NotStun::Attribute)?);
            }
            ATTR_SOFTWARE => message.software = Some(value.to_vec()),
            ATTR_OTHER_ADDRESS => message.other = plain_address(value),
            _ if attr < 0x8000 && !UNDERSTOOD.contains(&attr) => {
                message.unknown_required.push(attr);
            }
            _ => {}
        }
        at = next;
    }
    Ok(message)
}

/// Decodes a MAPPED-ADDRESS-shaped value (RFC 8489, 14.1): reserved byte,
/// family, port, address, none of it XORed.
fn plain_address(value: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    match (value.first()?, value.get(1)?, value.len()) {
        (0, 1, 8) => {
            let ip: [u8; 4] = value[4..8].try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (0, 2, 20) => {
            let ip: [u8; 16] = value[4..20].try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// The value of a MAPPED-ADDRESS-shaped attribute for `addr`.
fn plain_address_value(addr: SocketAddr) -> Vec<u8> {
    let mut value = Vec::with_capacity(20);
    match addr.ip() {
        IpAddr::V4(v4) => {
            value.extend_from_slice(&[0, 1]);
            value.extend_from_slice(&addr.port().to_be_bytes());
            value.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            value.extend_from_slice(&[0, 2]);
            value.extend_from_slice(&addr.port().to_be_bytes());
            value.extend_from_slice(&v6.octets());
        }
    }
    value
}

/// XORs a MAPPED-ADDRESS-shaped value in place with what RFC 8489 (14.2)
/// keys it with: the port with the cookie's high 16 bits, the address
/// with the cookie (and, for IPv6, the transaction id after it). Its own
/// inverse.
fn xor_value(value: &mut [u8], transaction: &[u8; 12]) {
    let key: Vec<u8> = MAGIC_COOKIE
        .to_be_bytes()
        .into_iter()
        .chain(*transaction)
        .collect();
    // Only the 20 bytes an IPv6 value has: a longer one is malformed and
    // refused by its decoder anyway.
    for (i, byte) in value.iter_mut().enumerate().take(20).skip(2) {
        *byte ^= if i < 4 { key[i - 2] } else { key[i - 4] };
    }
}

/// Decodes an XOR-MAPPED-ADDRESS value (RFC 8489, 14.2).
fn xor_address(value: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let mut plain = value.to_vec();
    xor_value(&mut plain, transaction);
    plain_address(&plain)
}

/// The value of an XOR-MAPPED-ADDRESS for `addr`. An IPv4-mapped IPv6
/// source (a dual-stack socket) is given as the IPv4 address it is.
fn xor_address_value(addr: SocketAddr, transaction: &[u8; 12]) -> Vec<u8> {
    let addr = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(addr, |v4| SocketAddr::new(v4.into(), addr.port())),
        IpAddr::V4(_) => addr,
    };
    let mut value = plain_address_value(addr);
    xor_value(&mut value, transaction);
    value
}

/// Builds messages attribute by attribute; [`Builder::finish`] sets the
/// header's length.
struct Builder(Vec<u8>);

impl Builder {
    fn new(kind: u16, transaction: &[u8; 12]) -> Builder {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(transaction);
        Builder(bytes)
    }

    fn attribute(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(value.len()).expect("attribute values here are short");
        self.0.extend_from_slice(&kind.to_be_bytes());
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self.set_length();
    }

    fn set_length(&mut self) {
        let len = u16::try_from(self.0.len() - HEADER_LEN).expect("messages here are short");
        self.0[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends FINGERPRINT: the CRC covers the header with its length
    /// already counting the FINGERPRINT attribute (RFC 8489, 14.7).
    fn fingerprint(&mut self) {
        let len = u16::try_from(self.0.len() - HEADER_LEN + 8).expect("messages here are short");
        self.0[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32(&self.0) ^ FINGERPRINT_XOR;
        self.attribute(ATTR_FINGERPRINT, &crc.to_be_bytes());
    }

    fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// A Binding request with transaction id `transaction`: PADDING (RFC
/// 5780) up to `pad_to` bytes in all when that is more than the bare
/// request, then FINGERPRINT.
pub fn binding_request(transaction: &[u8; 12], pad_to: usize) -> Vec<u8> {
    let mut builder = Builder::new(BINDING_REQUEST, transaction);
    // Bare header plus FINGERPRINT is 28 bytes; a PADDING attribute adds
    // 4 bytes of its own plus its value.
    let bare = HEADER_LEN + 8;
    if pad_to >= bare + 4 {
        let value = (pad_to - bare - 4) / 4 * 4;
        builder.attribute(ATTR_PADDING, &vec![0; value]);
    }
    builder.fingerprint();
    builder.finish()
}

/// The success response to a Binding request from `source`:
/// XOR-MAPPED-ADDRESS and FINGERPRINT, at most `budget` bytes (the
/// request's length). FINGERPRINT is left out when only that makes it fit;
/// `None` when even the bare address does not (32 bytes for IPv4, 44 for
/// IPv6).
pub fn binding_success(
    transaction: &[u8; 12],
    source: SocketAddr,
    budget: usize,
) -> Option<Vec<u8>> {
    binding_success_other(transaction, source, None, budget)
}

/// [`binding_success`] from a server that also answers at `other`:
/// OTHER-ADDRESS (RFC 5780) goes in only when it fits with FINGERPRINT
/// (a request padded to 52 bytes for IPv4, 76 for IPv6, or more).
pub fn binding_success_other(
    transaction: &[u8; 12],
    source: SocketAddr,
    other: Option<SocketAddr>,
    budget: usize,
) -> Option<Vec<u8>> {
    let mut builder = Builder::new(BINDING_SUCCESS, transaction);
    builder.attribute(
        ATTR_XOR_MAPPED_ADDRESS,
        &xor_address_value(source, transaction),
    );
    let bare = builder.0.len();
    if bare > budget {
        return None;
    }
    if let Some(other) = other {
        let value = plain_address_value(other);
        if bare + 4 + value.len() + 8 <= budget {
            builder.attribute(ATTR_OTHER_ADDRESS, &value);
        }
    }
    if builder.0.len() + 8 <= budget {
        builder.fingerprint();
    }
    Some(builder.finish())
}

/// The 420 (Unknown Attribute) error response to a Binding request that
/// carried comprehension-required attributes this service does not
/// understand (RFC 8489, 6.3.1.1): ERROR-CODE, UNKNOWN-ATTRIBUTES and
/// FINGERPRINT, at most `budget` bytes. The reason phrase, then
/// FINGERPRINT, are left out when that makes it fit; `None` when nothing
/// does (then no answer is sent).
pub fn unknown_attributes(
    transaction: &[u8; 12],
    unknown: &[u16],
    budget: usize,
) -> Option<Vec<u8>> {
    let list: Vec<u8> = unknown.iter().flat_map(|a| a.to_be_bytes()).collect();
    for (reason, fingerprint) in [
        (&b"Unknown Attribute"[..], true),
        (&b""[..], true),
        (&b""[..], false),
    ] {
        let mut builder = Builder::new(BINDING_ERROR, transaction);
        let mut code = vec![0, 0, 4, 20];
        code.extend_from_slice(reason);
        builder.attribute(ATTR_ERROR_CODE, &code);
        builder.attribute(ATTR_UNKNOWN_ATTRIBUTES, &list);
        if fingerprint {
            builder.fingerprint();
        }
        if builder.0.len() <= budget {
            return Some(builder.finish());
        }
    }
    None
}

/// The ERROR-CODE of an error response: class × 100 + number.
pub fn error_code(datagram: &[u8]) -> Option<u16> {
    let mut at = HEADER_LEN;
    while let Some(header) = datagram.get(at..at + 4) {
        let attr = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if attr == ATTR_ERROR_CODE {
            let value = datagram.get(at + 4..at + 4 + len)?;
            return Some(u16::from(*value.get(2)? & 7) * 100 + u16::from(*value.get(3)?));
        }
        at += 4 + len.next_multiple_of(4);
    }
    None
}

/// The attributes of a message [`decode`] accepted, as (type, value) in
/// order; the padding is skipped. Stops at the first attribute that runs
/// past the end (which [`decode`] would have refused). For TURN
/// ([`super::turn`]), which reads attributes this module does not.
pub fn attributes(message: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = HEADER_LEN;
    std::iter::from_fn(move || {
        let header = message.get(at..at + 4)?;
        let attr = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = message.get(at + 4..at + 4 + len)?;
        at += 4 + len.next_multiple_of(4);
        Some((attr, value))
    })
}

/// Decodes the value of any XOR-…-ADDRESS attribute (XOR-MAPPED-ADDRESS,
/// TURN's XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS share the layout).
pub fn decode_xor_address(value: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    xor_address(value, transaction)
}

/// The value of an XOR-…-ADDRESS attribute for `addr` (an IPv4-mapped
/// IPv6 address is written as the IPv4 address it is).
pub fn encode_xor_address(addr: SocketAddr, transaction: &[u8; 12]) -> Vec<u8> {
    xor_address_value(addr, transaction)
}

/// CRC-32 (ISO-HDLC, as zlib and RFC 1952), the one FINGERPRINT uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = CRC_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

/// The byte-at-a-time table of the reflected polynomial 0xEDB88320.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769, 2.1: the sample request (SOFTWARE, PRIORITY,
    /// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
    const SAMPLE_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];

    /// RFC 5769, 2.2: the sample IPv4 response, 192.0.2.1 port 32853.
    const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769, 2.3: the sample IPv6 response,
    /// 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
    const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01,
        0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9,
        0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    const TRANSACTION: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn rfc5769_sample_request() {
        let message = decode(&SAMPLE_REQUEST).expect("the sample request decodes");
        assert_eq!(message.kind, BINDING_REQUEST);
        assert_eq!(message.transaction, TRANSACTION);
        assert_eq!(message.software.as_deref(), Some(&b"STUN test client"[..]));
        assert!(message.fingerprint);
        // PRIORITY is ICE's, not a Binding service's; ICE-CONTROLLED
        // (0x8029) is comprehension-optional and ignored.
        assert_eq!(message.unknown_required, vec![0x0024]);
        assert!(looks_like_stun(&SAMPLE_REQUEST));
    }

    #[test]
    fn rfc5769_sample_ipv4_response() {
        let message = decode(&SAMPLE_IPV4_RESPONSE).expect("the IPv4 response decodes");
        assert_eq!(message.kind, BINDING_SUCCESS);
        assert_eq!(message.mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert_eq!(message.software.as_deref(), Some(&b"test vector"[..]));
        assert!(message.fingerprint);
        assert!(message.unknown_required.is_empty());
    }

    #[test]
    fn rfc5769_sample_ipv6_response() {
        let message = decode(&SAMPLE_IPV6_RESPONSE).expect("the IPv6 response decodes");
        assert_eq!(
            message.mapped,
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
        assert!(message.fingerprint);
    }

    /// The XOR-MAPPED-ADDRESS values this module writes are the vectors'
    /// bytes, for both families.
    #[test]
    fn encodes_the_vectors_addresses() {
        let v4 = xor_address_value("192.0.2.1:32853".parse().unwrap(), &TRANSACTION);
        assert_eq!(v4, SAMPLE_IPV4_RESPONSE[40..48]);
        let v6 = xor_address_value(
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap(),
            &TRANSACTION,
        );
        assert_eq!(v6, SAMPLE_IPV6_RESPONSE[40..60]);
    }

    /// Any changed byte before FINGERPRINT breaks its CRC, and the message
    /// is then not taken for STUN.
    #[test]
    fn a_wrong_fingerprint_is_not_stun() {
        for at in [1, 9, 30, 60] {
            let mut bytes = SAMPLE_IPV4_RESPONSE;
            bytes[at] ^= 0x10;
            assert!(decode(&bytes).is_err(), "byte {at} changed");
        }
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[79] ^= 1;
        assert_eq!(decode(&bytes), Err(NotStun::Fingerprint));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(decode(&SAMPLE_REQUEST[..19]), Err(NotStun::Short));
        assert_eq!(decode(&SAMPLE_REQUEST[..104]), Err(NotStun::Length));
        let mut bytes = SAMPLE_REQUEST;
        bytes[0] = 0x40;
        assert_eq!(decode(&bytes), Err(NotStun::TopBits));
        let mut bytes = SAMPLE_REQUEST;
        bytes[5] = 0;
        assert_eq!(decode(&bytes), Err(NotStun::Cookie));
        // An attribute length running past the end.
        let mut bytes = SAMPLE_IPV4_RESPONSE;
        bytes[23] = 0xF0;
        assert_eq!(decode(&bytes), Err(NotStun::Attribute));
    }

    #[test]
    fn requests_round_trip_with_padding() {
        for pad_to in [0, 28, 31, 32, 40, 64, 100] {
            let request = binding_request(&TRANSACTION, pad_to);
            let message = decode(&request).expect("our request decodes");
            assert_eq!(message.kind, BINDING_REQUEST);
            assert!(message.fingerprint);
            assert!(message.unknown_required.is_empty());
            assert!(
                request.len() <= pad_to.max(28),
                "{pad_to}: {}",
                request.len()
            );
            assert!(
                request.len() + 4 > pad_to.max(28),
                "{pad_to}: {}",
                request.len()
            );
        }
    }

    #[test]
    fn success_fits_its_budget() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:9".parse().unwrap();
        assert_eq!(binding_success(&TRANSACTION, v4, 31), None);
        let bare = binding_success(&TRANSACTION, v4, 32).unwrap();
        assert_eq!(bare.len(), 32);
        assert!(!decode(&bare).unwrap().fingerprint);
        let full = binding_success(&TRANSACTION, v4, 40).unwrap();
        let message = decode(&full).unwrap();
        assert_eq!((message.mapped, message.fingerprint), (Some(v4), true));
        assert_eq!(binding_success(&TRANSACTION, v6, 43), None);
        let message = decode(&binding_success(&TRANSACTION, v6, 52).unwrap()).unwrap();
        assert_eq!((message.mapped, message.len), (Some(v6), 52));
        // A dual-stack socket's IPv4-mapped source is answered as IPv4.
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:32853".parse().unwrap();
        let message = decode(&binding_success(&TRANSACTION, mapped, 40).unwrap()).unwrap();
        assert_eq!(message.mapped, Some(v4));
    }

    #[test]
    fn unknown_attribute_error() {
        let full = unknown_attributes(&TRANSACTION, &[0x0024], 108).unwrap();
        let message = decode(&full).unwrap();
        assert_eq!(message.kind, BINDING_ERROR);
        assert_eq!(error_code(&full), Some(420));
        assert!(message.fingerprint);
        assert_eq!(full.len(), 20 + 28 + 8 + 8);
        // Shrinks to fit: no reason phrase, then no FINGERPRINT, then none.
        assert_eq!(
            unknown_attributes(&TRANSACTION, &[0x0024], 44)
                .unwrap()
                .len(),
            36 + 8
        );
        assert_eq!(
            unknown_attributes(&TRANSACTION, &[0x0024], 43)
                .unwrap()
                .len(),
            36
        );
        assert_eq!(
            unknown_attributes(&TRANSACTION, &[0x0024], 36)
                .unwrap()
                .len(),
            36
        );
        assert_eq!(unknown_attributes(&TRANSACTION, &[0x0024], 35), None);
    }

    /// OTHER-ADDRESS goes into a Binding response only with room for it
    /// and FINGERPRINT (52 bytes for IPv4, 76 for IPv6), decodes to the
    /// address given, and never makes the answer larger than the request.
    #[test]
    fn other_address_only_when_it_fits() {
        let transaction = [7u8; 12];
        let source: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        let other: SocketAddr = "203.0.113.10:3479".parse().unwrap();
        for budget in [32usize, 40, 48, 52, 64, 80] {
            let answer = binding_success_other(&transaction, source, Some(other), budget).unwrap();
            assert!(answer.len() <= budget, "{budget}: {}", answer.len());
            let message = decode(&answer).unwrap();
            assert_eq!(message.mapped, Some(source));
            assert_eq!(message.other, (budget >= 52).then_some(other), "{budget}");
        }
        let v6: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let other6: SocketAddr = "[2001:db8::10]:3479".parse().unwrap();
        let answer = binding_success_other(&transaction, v6, Some(other6), 76).unwrap();
        assert_eq!(decode(&answer).unwrap().other, Some(other6));
        let answer = binding_success_other(&transaction, v6, Some(other6), 75).unwrap();
        assert_eq!(decode(&answer).unwrap().other, None);
    }
}
