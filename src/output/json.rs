//! The `--json` event stream: its wire shapes, kept apart from the
//! validated [`Event`] so that the field names other tools rely on are
//! written down here, once, and pinned by the golden tests below.
//!
//! One JSON object per line; `event` names the kind. Strings are escaped as
//! JSON requires, and further: every character that must not reach a
//! terminal raw (C1 controls such as U+009B, DEL, bidirectional overrides,
//! invisible characters; see [`is_hidden`]) is written as a `\uXXXX`
//! escape, so that `--json` on a terminal is as safe as the human lines.
//! The decoded strings are unchanged.

use std::io;
use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::escape::{is_hidden, to_hex};
use super::fast::{Clock, push_addr, push_json_str, push_uint};
use crate::model::SecureEvent;
use crate::model::chat::MemberChange;
use crate::model::pacing::PacingReport;
use crate::model::{
    ChatMessage, Datagram, EchoSkip, Event, Outcome, PeerSummary, SentKind, Summary,
};
use crate::net::addr::PortState;
use crate::net::group::GroupKind;
use crate::net::{BufferSize, Capabilities};
use crate::proto::code::verification_words;
use crate::proto::seal::Rejection;
use crate::proto::traverse::TraverseEvent;

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Wire<'a> {
    Listening {
        local: SocketAddr,
        rcvbuf: WireBuffer,
        sndbuf: WireBuffer,
        max_size: usize,
        capabilities: WireCapabilities,
        security: &'static str,
    },
    Datagram {
        time: String,
        from: SocketAddr,
        len: usize,
        truncated: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        original_len: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
    },
    Sent {
        to: SocketAddr,
        len: usize,
        echo: bool,
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(rename = "try", skip_serializing_if = "Option::is_none")]
        attempt: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        /// Through this side's TURN relay: the server and the wrapped
        /// length, as a capture shows the datagram.
        #[serde(skip_serializing_if = "Option::is_none")]
        relay: Option<RelayHop>,
    },
    Message {
        time: String,
        from: SocketAddr,
        name: &'a str,
        session: String,
        seq: u64,
        #[serde(rename = "try")]
        attempt: u8,
        len: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        duplicate: bool,
        duplicates: u64,
        reordered: bool,
    },
    Gap {
        from: SocketAddr,
        name: &'a str,
        first: u64,
        last: u64,
        count: u64,
    },
    Receipt {
        to: SocketAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        seq: u64,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        rtt_ms: Option<f64>,
        tries: u8,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ended: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        refused: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<SocketAddr>,
    },
    Joined {
        group: SocketAddr,
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        iface: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iface_addr: Option<std::net::Ipv4Addr>,
        ttl: u32,
        loopback: bool,
    },
    Member {
        group: SocketAddr,
        member: SocketAddr,
        name: &'a str,
        change: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        silent_ms: Option<f64>,
        members: usize,
    },
    GroupReceipt {
        group: SocketAddr,
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        delivered: Vec<WireMember<'a>>,
        missing: Vec<WireMember<'a>>,
    },
    Presence {
        from: SocketAddr,
        name: &'a str,
        kind: &'static str,
        len: usize,
    },
    Rejected {
        time: String,
        from: SocketAddr,
        reason: &'static str,
        len: usize,
    },
    Malformed {
        time: String,
        from: SocketAddr,
        len: usize,
        truncated: bool,
        hex: String,
        reason: &'a str,
    },
    PeerKind {
        peer: SocketAddr,
        speaks: &'static str,
    },
    CopyWithheld {
        peer: SocketAddr,
        len: usize,
        credit: usize,
    },
    PeerMoved {
        name: &'a str,
        from: SocketAddr,
        to: SocketAddr,
    },
    RendezvousWaiting {
        time: String,
    },
    NatMapped {
        time: String,
        server: SocketAddr,
        mapped: SocketAddr,
    },
    Nat {
        time: String,
        kind: &'static str,
    },
    RendezvousPaired {
        time: String,
        first: bool,
        candidates: &'a [SocketAddr],
    },
    PathSearch {
        time: String,
        hard: bool,
    },
    Relay {
        time: String,
        server: SocketAddr,
        relayed: Option<SocketAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    PathFound {
        time: String,
        path: &'static str,
        description: String,
        peer: SocketAddr,
        took_ms: f64,
        controlling: bool,
        own_relay: bool,
        search_sockets: usize,
        search_probes: usize,
        tried: Vec<WireTried>,
    },
    PathFailed {
        time: String,
        reason: String,
    },
    PathDirect {
        time: String,
        to: SocketAddr,
    },
    PathTraffic {
        sent: u64,
        sent_bytes: u64,
        received: u64,
        received_bytes: u64,
    },
    PeerNotFollowed {
        name: &'a str,
        at: SocketAddr,
        heard: SocketAddr,
    },
    HandshakeBegan {
        peer: SocketAddr,
        method: &'static str,
    },
    WaitingForSession {
        peer: SocketAddr,
        seq: u64,
        len: usize,
    },
    SessionOpened {
        peer: SocketAddr,
        session_id: String,
        peer_session: String,
        method: &'static str,
        verify: String,
        initiator: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        handshake_ms: Option<f64>,
    },
    WrongCode {
        peer: SocketAddr,
    },
    PathChallenged {
        peer: SocketAddr,
        seen: SocketAddr,
    },
    Control {
        from: SocketAddr,
        what: &'static str,
        len: usize,
    },
    HandshakeFailed {
        peer: SocketAddr,
        method: &'static str,
        tries: u8,
    },
    StrayReceipt {
        from: SocketAddr,
        seq: u64,
        len: usize,
    },
    SentBatch {
        to: SocketAddr,
        count: u64,
        bytes: u64,
    },
    EchoSkipped {
        peer: SocketAddr,
        len: usize,
        reason: &'static str,
    },
    LineSkipped {
        line: u64,
        len: u64,
        limit: usize,
    },
    Dropped {
        count: u64,
        total: u64,
    },
    Unreachable {
        peer: SocketAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        port_in_use: Option<bool>,
    },
    PeerError {
        peer: SocketAddr,
        error: &'a str,
    },
    Summary(WireSummary),
}

#[derive(Serialize)]
struct WireBuffer {
    requested: Option<usize>,
    effective: usize,
    clamped: bool,
}

impl From<BufferSize> for WireBuffer {
    fn from(size: BufferSize) -> Self {
        WireBuffer {
            requested: size.requested,
            effective: size.effective,
            clamped: size.clamped(),
        }
    }
}

#[derive(Serialize)]
struct WireCapabilities {
    true_length: bool,
    drop_count: bool,
    icmp_errors: bool,
    kernel_timestamps: bool,
}

impl From<Capabilities> for WireCapabilities {
    fn from(c: Capabilities) -> Self {
        WireCapabilities {
            true_length: c.true_length,
            drop_count: c.drop_count,
            icmp_errors: c.icmp_errors,
            kernel_timestamps: c.kernel_timestamps,
        }
    }
}

/// A member named in a group receipt.
#[derive(Serialize)]
struct WireMember<'a> {
    member: SocketAddr,
    name: &'a str,
}

fn members(list: &[(SocketAddr, String)]) -> Vec<WireMember<'_>> {
    list.iter()
        .map(|(member, name)| WireMember {
            member: *member,
            name,
        })
        .collect()
}

#[derive(Serialize)]
struct WireSummary {
    received: u64,
    bytes: u64,
    empty: u64,
    truncated: u64,
    dropped: u64,
    unreachable: u64,
    sent: u64,
    sent_bytes: u64,
    echo_skipped: u64,
    skipped_lines: u64,
    messages: u64,
    duplicates: u64,
    reordered: u64,
    lost: u64,
    malformed: u64,
    messages_sent: u64,
    delivered: u64,
    failed: u64,
    late: u64,
    retransmissions: u64,
    receipts: u64,
    #[serde(skip_serializing_if = "is_zero")]
    peers_forgotten: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<std::collections::BTreeMap<&'static str, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pacing: Option<PacingReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<WirePeer>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One peer's message counts in the summary.
#[derive(Serialize)]
struct WirePeer {
    peer: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    messages: u64,
    duplicates: u64,
    reordered: u64,
    lost: u64,
    messages_sent: u64,
    delivered: u64,
    failed: u64,
    late: u64,
    retransmissions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    srtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_rtt_ms: Option<f64>,
}

impl From<&PeerSummary> for WirePeer {
    fn from(p: &PeerSummary) -> Self {
        WirePeer {
            peer: p.addr,
            name: p.name.clone(),
            messages: p.inbound.messages,
            duplicates: p.inbound.duplicates,
            reordered: p.inbound.reordered,
            lost: p.inbound.missing,
            messages_sent: p.outbound.messages,
            delivered: p.outbound.delivered,
            failed: p.outbound.failed,
            late: p.outbound.late,
            retransmissions: p.outbound.retransmissions,
            srtt_ms: p.outbound.rtt.srtt().map(millis),
            min_rtt_ms: p.outbound.rtt.min().map(millis),
        }
    }
}

/// A duration in milliseconds, to the microsecond.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl From<Summary> for WireSummary {
    fn from(s: Summary) -> Self {
        WireSummary {
            received: s.received,
            bytes: s.bytes,
            empty: s.empty,
            truncated: s.truncated,
            dropped: s.dropped,
            unreachable: s.unreachable,
            sent: s.sent,
            sent_bytes: s.sent_bytes,
            echo_skipped: s.echo_skipped,
            skipped_lines: s.skipped_lines,
            messages: s.inbound.messages,
            duplicates: s.inbound.duplicates,
            reordered: s.inbound.reordered,
            lost: s.inbound.missing,
            malformed: s.malformed,
            messages_sent: s.messages_sent,
            delivered: s.delivered,
            failed: s.failed,
            late: s.late,
            retransmissions: s.retransmissions,
            receipts: s.receipts,
            peers_forgotten: s.peers_forgotten,
            rejected: (s.rejected.total() > 0).then(|| {
                Rejection::ALL
                    .iter()
                    .map(|r| (r.name(), s.rejected.get(*r)))
                    .collect()
            }),
            pacing: s.pacing,
            peers: Vec::new(),
        }
    }
}

/// The event as one line of JSON (without the newline).
pub fn to_line(event: &Event) -> String {
    let wire = match event {
        Event::Listening {
            local,
            buffers,
            max_size,
            capabilities,
            security,
        } => Wire::Listening {
            local: *local,
            rcvbuf: buffers.rcvbuf.into(),
            sndbuf: buffers.sndbuf.into(),
            max_size: *max_size,
            capabilities: (*capabilities).into(),
            security: security.name(),
        },
        Event::Datagram(datagram) => {
            let (text, hex) = text_or_hex(&datagram.payload);
            Wire::Datagram {
                time: time(datagram.at),
                from: datagram.from,
                len: datagram.len(),
                truncated: datagram.truncated,
                original_len: datagram.original_len,
                text,
                hex,
            }
        }
        Event::Sent {
            to,
            len,
            kind,
            relay,
        } => {
            let (name, seq, attempt) = match kind {
                SentKind::Datagram => ("datagram", None, None),
                SentKind::Echo => ("echo", None, None),
                SentKind::Message { seq, attempt, .. } => ("message", Some(*seq), Some(*attempt)),
                SentKind::Receipt { seq, attempt } => ("receipt", Some(*seq), Some(*attempt)),
                SentKind::Text { .. } => ("text", None, None),
                SentKind::Presence { bye: false } => ("hello", None, None),
                SentKind::Presence { bye: true } => ("bye", None, None),
                SentKind::Control => ("control", None, None),
            };
            let (text, hex) = match kind {
                SentKind::Message { payload, .. } | SentKind::Text { payload } => {
                    text_or_hex(payload)
                }
                _ => (None, None),
            };
            Wire::Sent {
                to: *to,
                len: *len,
                echo: *kind == SentKind::Echo,
                kind: name,
                seq,
                attempt,
                text,
                hex,
                relay: relay.map(|hop| RelayHop {
                    server: hop.server,
                    len: hop.len,
                }),
            }
        }
        Event::Message(message) => message_wire(message),
        Event::Gap {
            from,
            name,
            first,
            last,
        } => Wire::Gap {
            from: *from,
            name,
            first: *first,
            last: *last,
            count: last - first + 1,
        },
        Event::Receipt(receipt) => Wire::Receipt {
            to: receipt.to,
            name: receipt.name.as_deref(),
            seq: receipt.seq,
            status: match receipt.outcome {
                Outcome::Delivered => "delivered",
                Outcome::Failed => "failed",
                Outcome::Late => "late",
            },
            rtt_ms: receipt
                .rtt
                .map(|rtt| (rtt.as_secs_f64() * 1e6).round() / 1e3),
            tries: receipt.tries,
            ended: receipt.ended,
            refused: receipt.refused,
            group: receipt.group,
        },
        Event::Joined(info) => Wire::Joined {
            group: info.addr,
            kind: match info.kind {
                GroupKind::Multicast => "multicast",
                GroupKind::Broadcast => "broadcast",
            },
            iface: info.iface.as_ref().map(|i| i.name.as_str()),
            iface_addr: info
                .iface
                .as_ref()
                .and_then(|i| i.v4)
                .filter(|_| info.addr.is_ipv4()),
            ttl: info.ttl,
            loopback: info.loopback,
        },
        Event::Member(member) => Wire::Member {
            group: member.group,
            member: member.addr,
            name: &member.name,
            change: match member.change {
                MemberChange::Joined => "joined",
                MemberChange::Restarted => "restarted",
                MemberChange::Left => "left",
                MemberChange::Silent(_) => "silent",
                MemberChange::NotKept => "not_kept",
            },
            silent_ms: match member.change {
                MemberChange::Silent(d) => Some(millis(d)),
                _ => None,
            },
            members: member.members,
        },
        Event::GroupReceipt(receipt) => {
            let (text, hex) = text_or_hex(&receipt.payload);
            Wire::GroupReceipt {
                group: receipt.group,
                seq: receipt.seq,
                text,
                hex,
                delivered: members(&receipt.delivered),
                missing: members(&receipt.missing),
            }
        }
        Event::Rejected {
            at,
            from,
            reason,
            len,
            ..
        } => Wire::Rejected {
            time: time(*at),
            from: *from,
            reason: reason.name(),
            len: *len,
        },
        Event::Presence {
            from,
            name,
            bye,
            len,
        } => Wire::Presence {
            from: *from,
            name,
            kind: if *bye { "bye" } else { "hello" },
            len: *len,
        },
        Event::Malformed { datagram, reason } => malformed_wire(datagram, reason),
        Event::SentBatch { to, count, bytes } => Wire::SentBatch {
            to: *to,
            count: *count,
            bytes: *bytes,
        },
        Event::StrayReceipt { from, seq, len } => Wire::StrayReceipt {
            from: *from,
            seq: *seq,
            len: *len,
        },
        Event::PeerKind { peer, plain } => Wire::PeerKind {
            peer: *peer,
            speaks: if *plain { "plain" } else { "dgram" },
        },
        Event::CopyWithheld { peer, len, credit } => Wire::CopyWithheld {
            peer: *peer,
            len: *len,
            credit: *credit,
        },
        Event::PeerMoved { name, from, to } => Wire::PeerMoved {
            name,
            from: *from,
            to: *to,
        },
        Event::Path { at, event } => match path_wire(*at, event) {
            Some(wire) => wire,
            None => return String::new(),
        },
        Event::SearchTraffic(traffic) => Wire::PathTraffic {
            sent: traffic.sent,
            sent_bytes: traffic.sent_bytes,
            received: traffic.received,
            received_bytes: traffic.received_bytes,
        },
        Event::PeerNotFollowed { name, at, heard } => Wire::PeerNotFollowed {
            name,
            at: *at,
            heard: *heard,
        },
        Event::Secure(secure) => match secure {
            SecureEvent::Began { peer, method } => Wire::HandshakeBegan {
                peer: *peer,
                method: method.name(),
            },
            SecureEvent::Waiting { peer, seq, payload } => Wire::WaitingForSession {
                peer: *peer,
                seq: *seq,
                len: payload.len(),
            },
            SecureEvent::Opened {
                peer,
                id,
                peer_session,
                method,
                verify,
                initiator,
                took,
            } => Wire::SessionOpened {
                peer: *peer,
                session_id: id.to_string(),
                peer_session: peer_session.to_string(),
                method: method.name(),
                verify: verification_words(verify),
                initiator: *initiator,
                handshake_ms: took.map(millis),
            },
            SecureEvent::WrongCode { peer } => Wire::WrongCode { peer: *peer },
            SecureEvent::Control { from, what, len } => Wire::Control {
                from: *from,
                what,
                len: *len,
            },
            SecureEvent::Challenged { peer, seen } => Wire::PathChallenged {
                peer: *peer,
                seen: *seen,
            },
            SecureEvent::NoAnswer {
                peer,
                method,
                tries,
            } => Wire::HandshakeFailed {
                peer: *peer,
                method: method.name(),
                tries: *tries,
            },
        },
        Event::EchoSkipped { peer, len, reason } => Wire::EchoSkipped {
            peer: *peer,
            len: *len,
            reason: match reason {
                EchoSkip::RateLimited => "rate_limited",
                EchoSkip::OwnAddress => "own_address",
                EchoSkip::Truncated => "truncated",
            },
        },
        Event::LineSkipped { line, len, limit } => Wire::LineSkipped {
            line: *line,
            len: *len,
            limit: *limit,
        },
        Event::Dropped { count, total } => Wire::Dropped {
            count: *count,
            total: *total,
        },
        Event::Unreachable { peer, port } => Wire::Unreachable {
            peer: *peer,
            port_in_use: match port {
                PortState::Free => Some(false),
                PortState::InUse => Some(true),
                PortState::Unknown => None,
            },
        },
        Event::PeerError { peer, error } => Wire::PeerError { peer: *peer, error },
        Event::Summary { totals, peers } => {
            let mut summary = WireSummary::from(**totals);
            summary.peers = peers.iter().map(WirePeer::from).collect();
            Wire::Summary(summary)
        }
    };
    let mut line = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, TerminalSafe);
    // Serialising these plain structs into memory cannot fail: no maps with
    // non-string keys, no failing Serialize impls.
    wire.serialize(&mut serializer)
        .expect("event serialises to JSON");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// Appends the `datagram` event's line (without the newline) to `out`:
/// the same text as [`to_line`], written straight from the datagram.
pub fn push_datagram(out: &mut String, datagram: &Datagram, clock: &mut Clock) {
    out.push_str(r#"{"event":"datagram","time":""#);
    clock.push_utc_micros(out, datagram.at);
    out.push_str(r#"","from":""#);
    push_addr(out, datagram.from);
    out.push_str(r#"","len":"#);
    push_uint(out, datagram.len() as u64);
    out.push_str(if datagram.truncated {
        r#","truncated":true"#
    } else {
        r#","truncated":false"#
    });
    if let Some(original) = datagram.original_len {
        out.push_str(r#","original_len":"#);
        push_uint(out, original as u64);
    }
    match std::str::from_utf8(&datagram.payload) {
        Ok(text) => {
            out.push_str(r#","text":""#);
            push_json_str(out, text);
        }
        Err(_) => {
            out.push_str(r#","hex":""#);
            out.push_str(&to_hex(&datagram.payload));
        }
    }
    out.push_str("\"}");
}

/// `text` as a JSON string literal, escaped as every line is.
#[cfg(test)]
pub(crate) fn string_literal(text: &str) -> String {
    let mut line = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, TerminalSafe);
    text.serialize(&mut serializer)
        .expect("a string serialises");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// A `sent` datagram's hop through this side's TURN relay.
#[derive(Serialize)]
struct RelayHop {
    server: SocketAddr,
    len: usize,
}

/// A candidate of the path search in `path_found`.
#[derive(Serialize)]
struct WireTried {
    addr: SocketAddr,
    origin: &'static str,
    probes: u32,
    answered_ms: Option<f64>,
    heard: u32,
    chosen: bool,
}

/// The path search's events; `None` for what is not shown.
fn path_wire(at: std::time::SystemTime, event: &TraverseEvent) -> Option<Wire<'_>> {
    let time = time(at);
    Some(match event {
        TraverseEvent::Waiting => Wire::RendezvousWaiting { time },
        TraverseEvent::Mapped { server, mapped } => Wire::NatMapped {
            time,
            server: *server,
            mapped: *mapped,
        },
        TraverseEvent::Nat(kind) => Wire::Nat {
            time,
            kind: kind.name(),
        },
        TraverseEvent::Paired { first, candidates } => Wire::RendezvousPaired {
            time,
            first: *first,
            candidates,
        },
        TraverseEvent::OpenSockets(_) => return None,
        TraverseEvent::Relay { server, relayed } => Wire::Relay {
            time,
            server: *server,
            relayed: relayed.as_ref().ok().copied(),
            error: relayed.as_ref().err().cloned(),
        },
        TraverseEvent::Searching { hard } => Wire::PathSearch { time, hard: *hard },
        TraverseEvent::Found(found) => Wire::PathFound {
            time,
            path: found.kind.name(),
            description: found.kind.describe(),
            peer: found.peer,
            took_ms: millis(found.took),
            controlling: found.controlling,
            own_relay: found.own_relay,
            search_sockets: found.search.map_or(0, |s| s.sockets),
            search_probes: found.search.map_or(0, |s| s.probes),
            tried: found
                .tried
                .iter()
                .map(|t| WireTried {
                    addr: t.addr,
                    origin: t.origin.name(),
                    probes: t.probes,
                    answered_ms: t.answered.map(millis),
                    heard: t.heard,
                    chosen: t.chosen,
                })
                .collect(),
        },
        TraverseEvent::DirectAgain { to } => Wire::PathDirect { time, to: *to },
        TraverseEvent::Failed(failure) => Wire::PathFailed {
            time,
            reason: failure.describe(),
        },
    })
}

fn time(at: std::time::SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A payload as `text` when it is UTF-8, else as `hex`.
fn text_or_hex(payload: &[u8]) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(payload) {
        Ok(text) => (Some(text), None),
        Err(_) => (None, Some(to_hex(payload))),
    }
}

fn message_wire(message: &ChatMessage) -> Wire<'_> {
    let (text, hex) = text_or_hex(&message.payload);
    Wire::Message {
        time: time(message.at),
        from: message.from,
        name: &message.name,
        session: message.session.to_string(),
        seq: message.seq,
        attempt: message.attempt,
        len: message.payload.len(),
        text,
        hex,
        duplicate: message.duplicate,
        duplicates: message.duplicates,
        reordered: message.reordered,
    }
}

fn malformed_wire<'a>(datagram: &Datagram, reason: &'a str) -> Wire<'a> {
    Wire::Malformed {
        time: time(datagram.at),
        from: datagram.from,
        len: datagram.len(),
        truncated: datagram.truncated,
        hex: to_hex(&datagram.payload),
        reason,
    }
}

/// serde_json's compact format, with hidden characters escaped too.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Nothing below DEL is hidden here: serde_json escapes the
        // control codes itself.
        let ascii = fragment
            .bytes()
            .position(|b| b >= 0x7f)
            .unwrap_or(fragment.len());
        writer.write_all(&fragment.as_bytes()[..ascii])?;
        let fragment = &fragment[ascii..];
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_hidden(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    //! Golden tests: one per event kind, pinning every field name, type
    //! and the order they are written in.

    use crate::model::Security;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::net::Buffers;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456)
    }

    #[test]
    fn listening() {
        let event = Event::Listening {
            local: addr("127.0.0.1:9000"),
            buffers: Buffers {
                rcvbuf: BufferSize {
                    requested: Some(4096),
                    effective: 8192,
                },
                sndbuf: BufferSize {
                    requested: None,
                    effective: 212992,
                },
            },
            max_size: 65535,
            capabilities: Capabilities {
                true_length: true,
                drop_count: true,
                icmp_errors: false,
                kernel_timestamps: true,
            },
            security: Security::KeyFile,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"listening","local":"127.0.0.1:9000","rcvbuf":{"requested":4096,"effective":8192,"clamped":false},"sndbuf":{"requested":null,"effective":212992,"clamped":false},"max_size":65535,"capabilities":{"true_length":true,"drop_count":true,"icmp_errors":false,"kernel_timestamps":true},"security":"key_file"}"#
        );
    }

    #[test]
    fn datagram_text_hex_empty_truncated() {
        let datagram = |payload: &[u8], truncated, original_len| {
            Event::Datagram(Datagram {
                at: at(),
                from: addr("[::1]:5000"),
                payload: payload.to_vec(),
                truncated,
                original_len,
            })
        };
        assert_eq!(
            to_line(&datagram(b"hi\n\"x\"", false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":6,"truncated":false,"text":"hi\n\"x\""}"#
        );
        assert_eq!(
            to_line(&datagram(&[0, 0xff], false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":2,"truncated":false,"hex":"00ff"}"#
        );
        assert_eq!(
            to_line(&datagram(b"", false, None)),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":0,"truncated":false,"text":""}"#
        );
        assert_eq!(
            to_line(&datagram(b"0123", true, Some(2000))),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":4,"truncated":true,"original_len":2000,"text":"0123"}"#
        );
        // Characters that could drive or fool a terminal are \u escapes
        // (C1 CSI, DEL, RIGHT-TO-LEFT OVERRIDE, a tag character); the text
        // decodes to the same string.
        let sneaky = "a\u{9b}2J\u{7f}\u{202e}b\u{e0041}é";
        let line = to_line(&datagram(sneaky.as_bytes(), false, None));
        assert_eq!(
            line,
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":16,"truncated":false,"text":"a\u009b2J\u007f\u202eb\udb40\udc41é"}"#
        );
        let decoded: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(decoded["text"], sneaky);
        // Cut through a character: not valid UTF-8, so hex.
        assert_eq!(
            to_line(&datagram(&"你".as_bytes()[..2], true, Some(3))),
            r#"{"event":"datagram","time":"2026-11-18T11:06:40.123456Z","from":"[::1]:5000","len":2,"truncated":true,"original_len":3,"hex":"e4bd"}"#
        );
    }

    #[test]
    fn sent() {
        let event = |kind| Event::Sent {
            to: addr("127.0.0.1:9"),
            len: 5,
            kind,
            relay: None,
        };
        assert_eq!(
            to_line(&event(SentKind::Echo)),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":true,"kind":"echo"}"#
        );
        assert_eq!(
            to_line(&event(SentKind::Datagram)),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":false,"kind":"datagram"}"#
        );
        let message = SentKind::Message {
            seq: 3,
            attempt: 2,
            payload: std::sync::Arc::from(&b"hi"[..]),
            name: None,
        };
        assert_eq!(
            to_line(&event(message)),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":false,"kind":"message","seq":3,"try":2,"text":"hi"}"#
        );
        assert_eq!(
            to_line(&event(SentKind::Text {
                payload: std::sync::Arc::from(&b"hi"[..])
            })),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":false,"kind":"text","text":"hi"}"#
        );
        assert_eq!(
            to_line(&event(SentKind::Receipt { seq: 3, attempt: 2 })),
            r#"{"event":"sent","to":"127.0.0.1:9","len":5,"echo":false,"kind":"receipt","seq":3,"try":2}"#
        );
    }

    #[test]
    fn echo_skipped() {
        let event = |reason| Event::EchoSkipped {
            peer: addr("127.0.0.1:9"),
            len: 3,
            reason,
        };
        assert_eq!(
            to_line(&event(EchoSkip::RateLimited)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"rate_limited"}"#
        );
        assert_eq!(
            to_line(&event(EchoSkip::OwnAddress)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"own_address"}"#
        );
        assert_eq!(
            to_line(&event(EchoSkip::Truncated)),
            r#"{"event":"echo_skipped","peer":"127.0.0.1:9","len":3,"reason":"truncated"}"#
        );
    }

    #[test]
    fn line_skipped() {
        let event = Event::LineSkipped {
            line: 2,
            len: 70000,
            limit: 65507,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"line_skipped","line":2,"len":70000,"limit":65507}"#
        );
    }

    #[test]
    fn sent_through_the_relay() {
        let event = Event::Sent {
            to: addr("198.51.100.7:41000"),
            len: 40,
            kind: SentKind::Control,
            relay: Some(crate::model::Wrapped {
                server: addr("203.0.113.5:3478"),
                len: 44,
            }),
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"sent","to":"198.51.100.7:41000","len":40,"echo":false,"kind":"control","relay":{"server":"203.0.113.5:3478","len":44}}"#
        );
    }

    #[test]
    fn path_traffic() {
        let event = Event::SearchTraffic(crate::model::Traffic {
            sent: 14,
            sent_bytes: 530,
            received: 9,
            received_bytes: 402,
        });
        assert_eq!(
            to_line(&event),
            r#"{"event":"path_traffic","sent":14,"sent_bytes":530,"received":9,"received_bytes":402}"#
        );
    }

    #[test]
    fn dropped() {
        let event = Event::Dropped {
            count: 997,
            total: 1000,
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"dropped","count":997,"total":1000}"#
        );
    }

    #[test]
    fn unreachable_and_peer_error() {
        let unreachable = |port| Event::Unreachable {
            peer: addr("127.0.0.1:9"),
            port,
        };
        assert_eq!(
            to_line(&unreachable(PortState::Free)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9","port_in_use":false}"#
        );
        assert_eq!(
            to_line(&unreachable(PortState::InUse)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9","port_in_use":true}"#
        );
        assert_eq!(
            to_line(&unreachable(PortState::Unknown)),
            r#"{"event":"unreachable","peer":"127.0.0.1:9"}"#
        );
        assert_eq!(
            to_line(&Event::PeerError {
                peer: addr("127.0.0.1:9"),
                error: "No route to host".into()
            }),
            r#"{"event":"peer_error","peer":"127.0.0.1:9","error":"No route to host"}"#
        );
    }

    #[test]
    fn summary() {
        let totals = Summary {
            received: 4,
            bytes: 1031,
            empty: 1,
            truncated: 1,
            dropped: 997,
            unreachable: 2,
            sent: 3,
            sent_bytes: 15,
            echo_skipped: 6,
            skipped_lines: 1,
            inbound: crate::model::peers::InboundCounts {
                messages: 20,
                duplicates: 3,
                reordered: 2,
                missing: 1,
            },
            malformed: 5,
            messages_sent: 30,
            delivered: 27,
            failed: 3,
            late: 1,
            retransmissions: 9,
            receipts: 28,
            skipped_limit: Some(65507),
            peers_forgotten: 12,
            not_shown: 0,
            rejected: Default::default(),
            pacing: None,
        };
        let event = Event::Summary {
            totals: Box::new(totals),
            peers: Vec::new(),
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"summary","received":4,"bytes":1031,"empty":1,"truncated":1,"dropped":997,"unreachable":2,"sent":3,"sent_bytes":15,"echo_skipped":6,"skipped_lines":1,"messages":20,"duplicates":3,"reordered":2,"lost":1,"malformed":5,"messages_sent":30,"delivered":27,"failed":3,"late":1,"retransmissions":9,"receipts":28,"peers_forgotten":12}"#
        );
        // Refusals (a keyed side), all reasons once there is one.
        let mut totals = totals;
        totals.rejected.count(Rejection::BadTag);
        totals.rejected.count(Rejection::BadTag);
        totals.rejected.count(Rejection::Replay);
        let line = to_line(&Event::Summary {
            totals: Box::new(totals),
            peers: Vec::new(),
        });
        assert!(
            line.ends_with(r#""peers_forgotten":12,"rejected":{"bad_tag":2,"code_spent":0,"malformed":0,"other_method":0,"plain":0,"reflected":0,"replay":1,"too_old":0,"unexpected":0,"unknown_session":0,"unknown_version":0,"unsealed":0}}"#),
            "{line}"
        );
    }

    /// The summary of a paced `send` carries how the sends kept their
    /// schedule.
    #[test]
    fn summary_with_pacing() {
        let totals = Summary {
            sent: 10_000,
            sent_bytes: 1_000_000,
            pacing: Some(PacingReport {
                rate: 10_000,
                datagrams: 10_000,
                late: 1,
                slipped_ns: 150_000,
                p50_ns: 2_100,
                p99_ns: 38_250,
                max_ns: 150_000,
                elapsed_ns: 1_000_050_000,
            }),
            ..Summary::default()
        };
        assert_eq!(
            to_line(&Event::Summary {
                totals: Box::new(totals),
                peers: Vec::new(),
            }),
            r#"{"event":"summary","received":0,"bytes":0,"empty":0,"truncated":0,"dropped":0,"unreachable":0,"sent":10000,"sent_bytes":1000000,"echo_skipped":0,"skipped_lines":0,"messages":0,"duplicates":0,"reordered":0,"lost":0,"malformed":0,"messages_sent":0,"delivered":0,"failed":0,"late":0,"retransmissions":0,"receipts":0,"pacing":{"rate":10000,"datagrams":10000,"late":1,"slipped_us":150.0,"deviation_p50_us":2.1,"deviation_p99_us":38.25,"deviation_max_us":150.0,"elapsed_s":1.00005,"achieved_rate":9998.5}}"#
        );
    }

    /// The summary of a chat carries each peer's message counts.
    #[test]
    fn summary_with_peers() {
        let mut outbound = crate::model::peers::OutboundCounts {
            messages: 200,
            delivered: 197,
            failed: 3,
            late: 1,
            retransmissions: 155,
            ..Default::default()
        };
        outbound.rtt.sample(Duration::from_micros(250));
        let event = Event::Summary {
            totals: Box::default(),
            peers: vec![PeerSummary {
                addr: addr("10.77.0.2:9000"),
                name: Some("bob".into()),
                inbound: crate::model::peers::InboundCounts {
                    messages: 200,
                    duplicates: 78,
                    reordered: 38,
                    missing: 0,
                },
                outbound,
            }],
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"summary","received":0,"bytes":0,"empty":0,"truncated":0,"dropped":0,"unreachable":0,"sent":0,"sent_bytes":0,"echo_skipped":0,"skipped_lines":0,"messages":0,"duplicates":0,"reordered":0,"lost":0,"malformed":0,"messages_sent":0,"delivered":0,"failed":0,"late":0,"retransmissions":0,"receipts":0,"peers":[{"peer":"10.77.0.2:9000","name":"bob","messages":200,"duplicates":78,"reordered":38,"lost":0,"messages_sent":200,"delivered":197,"failed":3,"late":1,"retransmissions":155,"srtt_ms":0.25,"min_rtt_ms":0.25}]}"#
        );
    }

    #[test]
    fn message() {
        let message = |payload: &[u8], duplicate, reordered| {
            Event::Message(Box::new(ChatMessage {
                at: at(),
                from: addr("127.0.0.1:9001"),
                name: "alice".into(),
                session: crate::proto::SessionId([0, 1, 2, 3, 0xfc, 0xfd, 0xfe, 0xff]),
                seq: 12,
                attempt: 2,
                payload: payload.to_vec(),
                duplicate,
                duplicates: u64::from(duplicate),
                reordered,
                filled_gap: reordered,
                wire_len: 30,
            }))
        };
        assert_eq!(
            to_line(&message(b"hi", false, true)),
            r#"{"event":"message","time":"2026-11-18T11:06:40.123456Z","from":"127.0.0.1:9001","name":"alice","session":"00010203fcfdfeff","seq":12,"try":2,"len":2,"text":"hi","duplicate":false,"duplicates":0,"reordered":true}"#
        );
        assert_eq!(
            to_line(&message(&[0xff], true, false)),
            r#"{"event":"message","time":"2026-11-18T11:06:40.123456Z","from":"127.0.0.1:9001","name":"alice","session":"00010203fcfdfeff","seq":12,"try":2,"len":1,"hex":"ff","duplicate":true,"duplicates":1,"reordered":false}"#
        );
    }

    #[test]
    fn gap_receipt_malformed_peer_kind() {
        let gap = Event::Gap {
            from: addr("127.0.0.1:9001"),
            name: "alice".into(),
            first: 4,
            last: 6,
        };
        assert_eq!(
            to_line(&gap),
            r#"{"event":"gap","from":"127.0.0.1:9001","name":"alice","first":4,"last":6,"count":3}"#
        );
        let receipt = |outcome, rtt, ended| {
            Event::Receipt(crate::model::Settled {
                to: addr("127.0.0.1:9001"),
                name: Some("bob".into()),
                seq: 7,
                outcome,
                rtt,
                tries: 3,
                payload: std::sync::Arc::from(&b"hi"[..]),
                ended,
                refused: false,
                wire_len: rtt.map(|_| 14),
                group: None,
            })
        };
        assert_eq!(
            to_line(&receipt(
                Outcome::Delivered,
                Some(Duration::from_micros(1234)),
                false
            )),
            r#"{"event":"receipt","to":"127.0.0.1:9001","name":"bob","seq":7,"status":"delivered","rtt_ms":1.234,"tries":3}"#
        );
        assert_eq!(
            to_line(&receipt(Outcome::Failed, None, false)),
            r#"{"event":"receipt","to":"127.0.0.1:9001","name":"bob","seq":7,"status":"failed","tries":3}"#
        );
        assert_eq!(
            to_line(&receipt(Outcome::Failed, None, true)),
            r#"{"event":"receipt","to":"127.0.0.1:9001","name":"bob","seq":7,"status":"failed","tries":3,"ended":true}"#
        );
        let mut refused = receipt(Outcome::Failed, None, false);
        if let Event::Receipt(r) = &mut refused {
            r.refused = true;
        }
        assert_eq!(
            to_line(&refused),
            r#"{"event":"receipt","to":"127.0.0.1:9001","name":"bob","seq":7,"status":"failed","tries":3,"refused":true}"#
        );
        assert_eq!(
            to_line(&receipt(
                Outcome::Late,
                Some(Duration::from_secs(12)),
                false
            )),
            r#"{"event":"receipt","to":"127.0.0.1:9001","name":"bob","seq":7,"status":"late","rtt_ms":12000.0,"tries":3}"#
        );
        let malformed = Event::Malformed {
            datagram: Datagram {
                at: at(),
                from: addr("127.0.0.1:9001"),
                payload: vec![0xf5, 9, 1],
                truncated: false,
                original_len: None,
            },
            reason: "unknown version 9".into(),
        };
        assert_eq!(
            to_line(&malformed),
            r#"{"event":"malformed","time":"2026-11-18T11:06:40.123456Z","from":"127.0.0.1:9001","len":3,"truncated":false,"hex":"f50901","reason":"unknown version 9"}"#
        );
        assert_eq!(
            to_line(&Event::PeerKind {
                peer: addr("127.0.0.1:9001"),
                plain: true
            }),
            r#"{"event":"peer_kind","peer":"127.0.0.1:9001","speaks":"plain"}"#
        );
        assert_eq!(
            to_line(&Event::PeerMoved {
                name: "bob".into(),
                from: addr("127.0.0.1:9001"),
                to: addr("127.0.0.1:9002"),
            }),
            r#"{"event":"peer_moved","name":"bob","from":"127.0.0.1:9001","to":"127.0.0.1:9002"}"#
        );
        assert_eq!(
            to_line(&Event::CopyWithheld {
                peer: addr("127.0.0.1:9001"),
                len: 40,
                credit: 12,
            }),
            r#"{"event":"copy_withheld","peer":"127.0.0.1:9001","len":40,"credit":12}"#
        );
        assert_eq!(
            to_line(&Event::StrayReceipt {
                from: addr("127.0.0.1:9001"),
                seq: 4,
                len: 14
            }),
            r#"{"event":"stray_receipt","from":"127.0.0.1:9001","seq":4,"len":14}"#
        );
        assert_eq!(
            to_line(&Event::SentBatch {
                to: addr("127.0.0.1:9001"),
                count: 4096,
                bytes: 262144
            }),
            r#"{"event":"sent_batch","to":"127.0.0.1:9001","count":4096,"bytes":262144}"#
        );
    }

    /// The group events, pinned: joined, member changes, a group receipt,
    /// hellos and byes received and sent, a member's receipt naming its
    /// group.
    #[test]
    fn group_events() {
        use crate::model::chat::{GroupReceipt, MemberChange, MemberEvent};
        use crate::net::group::{GroupInfo, GroupKind, Interface};
        let info = GroupInfo {
            addr: addr("239.1.2.3:5000"),
            kind: GroupKind::Multicast,
            iface: Some(Interface {
                name: "eth0".into(),
                index: 3,
                v4: Some("10.77.0.1".parse().unwrap()),
                v6: Vec::new(),
                broadcast: None,
            }),
            ttl: 1,
            loopback: true,
        };
        assert_eq!(
            to_line(&Event::Joined(Box::new(info))),
            r#"{"event":"joined","group":"239.1.2.3:5000","kind":"multicast","iface":"eth0","iface_addr":"10.77.0.1","ttl":1,"loopback":true}"#
        );
        let member = |change| {
            to_line(&Event::Member(MemberEvent {
                group: addr("239.1.2.3:5000"),
                addr: addr("10.77.0.3:41383"),
                name: "cat".into(),
                change,
                members: 2,
            }))
        };
        assert_eq!(
            member(MemberChange::Joined),
            r#"{"event":"member","group":"239.1.2.3:5000","member":"10.77.0.3:41383","name":"cat","change":"joined","members":2}"#
        );
        assert_eq!(
            member(MemberChange::Silent(Duration::from_millis(3500))),
            r#"{"event":"member","group":"239.1.2.3:5000","member":"10.77.0.3:41383","name":"cat","change":"silent","silent_ms":3500.0,"members":2}"#
        );
        assert_eq!(
            to_line(&Event::GroupReceipt(Box::new(GroupReceipt {
                group: addr("239.1.2.3:5000"),
                seq: 2,
                payload: std::sync::Arc::from(&b"hi"[..]),
                delivered: vec![(addr("10.77.0.1:53644"), "ann".into())],
                missing: vec![(addr("10.77.0.3:41383"), "cat".into())],
            }))),
            r#"{"event":"group_receipt","group":"239.1.2.3:5000","seq":2,"text":"hi","delivered":[{"member":"10.77.0.1:53644","name":"ann"}],"missing":[{"member":"10.77.0.3:41383","name":"cat"}]}"#
        );
        assert_eq!(
            to_line(&Event::Presence {
                from: addr("10.77.0.3:41383"),
                name: "cat".into(),
                bye: false,
                len: 15,
            }),
            r#"{"event":"presence","from":"10.77.0.3:41383","name":"cat","kind":"hello","len":15}"#
        );
        assert_eq!(
            to_line(&Event::Sent {
                to: addr("239.1.2.3:5000"),
                len: 15,
                kind: SentKind::Presence { bye: true },
                relay: None,
            }),
            r#"{"event":"sent","to":"239.1.2.3:5000","len":15,"echo":false,"kind":"bye"}"#
        );
    }

    /// Secure sessions: every event of a handshake, pinned.
    #[test]
    fn secure_events() {
        use crate::proto::secure::Method;
        let peer = addr("127.0.0.1:9001");
        let line = |event: SecureEvent| to_line(&Event::Secure(event));
        assert_eq!(
            line(SecureEvent::Began {
                peer,
                method: Method::KeyFile
            }),
            r#"{"event":"handshake_began","peer":"127.0.0.1:9001","method":"key_file"}"#
        );
        assert_eq!(
            line(SecureEvent::Waiting {
                peer,
                seq: 1,
                payload: std::sync::Arc::from(&b"hello"[..]),
            }),
            r#"{"event":"waiting_for_session","peer":"127.0.0.1:9001","seq":1,"len":5}"#
        );
        assert_eq!(
            line(SecureEvent::Opened {
                peer,
                id: crate::proto::SessionId([0x60, 0xf8, 0x3f, 0xc7, 0x64, 0xde, 0x7e, 0x3a]),
                peer_session: crate::proto::SessionId([
                    0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8
                ]),
                method: Method::KeyFile,
                verify: [0xfe, 0x54, 0x52, 0x1f],
                initiator: true,
                took: Some(Duration::from_micros(1234)),
            }),
            r#"{"event":"session_opened","peer":"127.0.0.1:9001","session_id":"60f83fc764de7e3a","peer_session":"a1a2a3a4a5a6a7a8","method":"key_file","verify":"woodlark-equation-dupont-businessman","initiator":true,"handshake_ms":1.234}"#
        );
        assert_eq!(
            line(SecureEvent::Challenged {
                peer,
                seen: addr("10.0.9.7:4000")
            }),
            r#"{"event":"path_challenged","peer":"127.0.0.1:9001","seen":"10.0.9.7:4000"}"#
        );
        assert_eq!(
            line(SecureEvent::Control {
                from: peer,
                what: "init",
                len: 93
            }),
            r#"{"event":"control","from":"127.0.0.1:9001","what":"init","len":93}"#
        );
        assert_eq!(
            line(SecureEvent::WrongCode { peer }),
            r#"{"event":"wrong_code","peer":"127.0.0.1:9001"}"#
        );
        assert_eq!(
            line(SecureEvent::NoAnswer {
                peer,
                method: Method::Code,
                tries: 5
            }),
            r#"{"event":"handshake_failed","peer":"127.0.0.1:9001","method":"code","tries":5}"#
        );
    }

    /// A refusal, pinned.
    #[test]
    fn rejected_event() {
        assert_eq!(
            to_line(&Event::Rejected {
                at: at(),
                from: addr("10.77.0.9:4000"),
                reason: Rejection::BadTag,
                len: 60,
                first: true,
            }),
            r#"{"event":"rejected","time":"2026-11-18T11:06:40.123456Z","from":"10.77.0.9:4000","reason":"bad_tag","len":60}"#
        );
    }
}
