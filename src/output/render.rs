//! How events read on a terminal: one escaped line per event (or none),
//! plus a line for each peer transition.

use std::fmt::Write as _;
use std::net::SocketAddr;

use chrono::{DateTime, Local};

use super::escape::{preview, preview_into};
use super::fast::{Clock, push_shown_addr, push_uint, shown};
use super::json;
use crate::model::SecureEvent;
use crate::model::chat::{GroupReceipt, MemberChange, MemberEvent};
use crate::model::peers::{InboundCounts, OutboundCounts};
use crate::model::{
    ChatMessage, Datagram, EchoSkip, Event, Outcome, SentKind, Settled, Summary, Transition,
};
use crate::net::addr::PortState;
use crate::net::group::{GroupInfo, GroupKind};
use crate::net::{BufferSize, BufferVerdict, Capabilities};
use crate::proto::code::verification_words;
use crate::proto::seal::Rejection;
use crate::proto::secure::Method;
use crate::proto::traverse::{self, Found, PathKind, TraverseEvent};

/// Human-readable lines or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per event for people, escaped.
    Human,
    /// One JSON object per line (`--json`).
    Json,
}

impl Format {
    /// `--json` or not.
    pub fn json(json: bool) -> Format {
        if json { Format::Json } else { Format::Human }
    }
}

/// Turns an event, and the transitions it caused, into lines.
///
/// The renderer keeps no state: what changed for a peer comes from the peer
/// table as [`Transition`]s. On a terminal a refusal is therefore shown once
/// per change of state; the JSON stream carries every event as it is.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: Format,
    /// A peer whose refusal is not shown here (the command reports it
    /// itself, once, as its error).
    quiet_about: Option<SocketAddr>,
    /// The chat is keyed (`--key-file`): a peer that does not answer
    /// cannot be switched to plain UDP.
    keyed: bool,
    /// The time of day, formatted once per second (for datagram lines).
    clock: Clock,
}

impl Renderer {
    /// A renderer for `format`.
    pub fn new(format: Format) -> Self {
        Renderer {
            format,
            quiet_about: None,
            keyed: false,
            clock: Clock::default(),
        }
    }

    /// Words hints for a keyed chat (`--key-file`), where `/plain` and
    /// `--plain` are refused.
    pub fn keyed(mut self, keyed: bool) -> Self {
        self.keyed = keyed;
        self
    }

    /// Leaves out the "nothing is listening" line for `peer` (human format).
    pub fn quiet_about(mut self, peer: SocketAddr) -> Self {
        self.quiet_about = Some(peer);
        self
    }

    /// Appends the lines for `event` to `out`, each ending with a newline:
    /// what [`Renderer::render`] makes, written straight into `out` for a
    /// datagram (the event that comes by the hundred thousand a second).
    pub fn render_into(&mut self, event: &Event, transitions: &[Transition], out: &mut String) {
        let Event::Datagram(datagram) = event else {
            for line in self.render(event, transitions) {
                out.push_str(&line);
                out.push('\n');
            }
            return;
        };
        if self.format == Format::Json {
            json::push_datagram(out, datagram, &mut self.clock);
            out.push('\n');
            return;
        }
        for line in transitions
            .iter()
            .filter_map(|t| self.transition_line(t, event))
        {
            out.push_str(&line);
            out.push('\n');
        }
        self.clock.push_local_millis(out, datagram.at);
        out.push_str("  ");
        push_shown_addr(out, datagram.from);
        out.push_str("  ");
        push_uint(out, datagram.len() as u64);
        out.push_str(" B");
        push_truncation(out, datagram);
        out.push_str("  ");
        preview_into(out, &datagram.payload);
        out.push('\n');
    }

    /// The lines to show for `event`.
    pub fn render(&self, event: &Event, transitions: &[Transition]) -> Vec<String> {
        if self.format == Format::Json {
            // Events with no JSON form (internal steps) come back empty.
            let line = json::to_line(event);
            return if line.is_empty() {
                Vec::new()
            } else {
                vec![line]
            };
        }
        let mut lines: Vec<String> = transitions
            .iter()
            .filter_map(|t| self.transition_line(t, event))
            .collect();
        match event {
            Event::Listening {
                local,
                buffers,
                max_size,
                capabilities,
                ..
            } => {
                lines.push(format!(
                    "listening on {} (UDP), receive buffer {max_size} bytes (--max-size)",
                    shown(*local)
                ));
                lines.push(buffer_line("SO_RCVBUF", &buffers.rcvbuf));
                lines.push(buffer_line("SO_SNDBUF", &buffers.sndbuf));
                lines.push(capabilities_line(capabilities));
            }
            Event::Datagram(datagram) => lines.push(datagram_line(datagram)),
            Event::LineSkipped { line, len, limit } => lines.push(format!(
                "!! line {line} not sent: {len} B is over the {limit}-byte limit of one datagram (skipped)"
            )),
            Event::Dropped { count, total } => lines.push(format!(
                "!! the kernel dropped {count} datagram{} (SO_RCVBUF was full; {total} dropped in all): raise --rcvbuf or read faster",
                plural(*count)
            )),
            Event::PeerError { peer, error } => {
                lines.push(format!("!! {}: {error}", shown(*peer)));
            }
            Event::Summary { totals, peers } => {
                lines.push(summary_line(totals));
                for peer in peers {
                    lines.push(format!("  {}:", label(peer.addr, peer.name.as_deref())));
                    lines.extend(message_counts(&peer.inbound, &peer.outbound));
                }
            }
            Event::Message(message) if !message.duplicate => lines.push(message_line(message)),
            Event::Sent {
                to,
                kind:
                    SentKind::Message {
                        seq,
                        attempt: 1,
                        payload,
                        name,
                    },
                ..
            } => lines.push(format!(
                "{}  -> {}  #{seq}  {}",
                clock(std::time::SystemTime::now()),
                label(*to, name.as_deref()),
                preview(payload)
            )),
            Event::Sent {
                to,
                kind: SentKind::Text { payload },
                ..
            } => lines.push(format!(
                "{}  -> {}  {}  (plain: no receipt)",
                clock(std::time::SystemTime::now()),
                shown(*to),
                preview(payload)
            )),
            Event::Gap {
                from,
                name,
                first,
                last,
            } => {
                let who = label(*from, Some(name));
                lines.push(if first == last {
                    format!("!! {who}: message #{first} missing")
                } else {
                    format!(
                        "!! {who}: messages #{first} to #{last} missing ({})",
                        last - first + 1
                    )
                });
            }
            // A group message's receipts are shown together, in its
            // group receipt; a late one stands alone.
            Event::Receipt(receipt)
                if receipt.group.is_some() && receipt.outcome != Outcome::Late => {}
            Event::Receipt(receipt) => lines.push(receipt_line(receipt)),
            Event::Member(member) => lines.push(member_line(member)),
            Event::Joined(info) => lines.push(joined_line(info)),
            Event::Rejected {
                from,
                reason,
                len,
                first: true,
                ..
            } => lines.push(format!(
                "!! refused {len} B from {}: {}; more from it for this reason are only counted",
                shown(*from),
                reason.describe()
            )),
            Event::Rejected { .. } => {}
            Event::GroupReceipt(receipt) => lines.push(format!(
                "{}  #{}{}  {}",
                clock(std::time::SystemTime::now()),
                receipt.seq,
                group_mark(receipt),
                preview(&receipt.payload)
            )),
            Event::Malformed { datagram, reason } if reason.starts_with("sealed") => {
                lines.push(format!(
                    "{}  [sealed dgram envelope: this side has no --key-file to open it]",
                    datagram_line(datagram)
                ));
            }
            Event::Malformed { datagram, reason } => lines.push(format!(
                "{}  [malformed dgram envelope: {reason}]",
                datagram_line(datagram)
            )),
            Event::CopyWithheld { peer, len, credit } => lines.push(format!(
                "!! {}: a {len} B copy withheld: this plain member has sent {credit} B not yet \
                 matched, and a member that cannot prove its address is sent no more than it sent",
                shown(*peer)
            )),
            Event::Secure(secure) => lines.extend(secure_line(secure)),
            Event::Path { event, .. } => lines.extend(path_line(event)),
            Event::SearchTraffic(traffic) => lines.push(format!(
                "the search sent {} datagrams ({} B) and received {} ({} B), over all its sockets",
                traffic.sent, traffic.sent_bytes, traffic.received, traffic.received_bytes
            )),
            Event::PeerNotFollowed { name, at, heard } => lines.push(format!(
                "!! {}'s session was heard from {}: not followed, since without keys anyone \
                 could forge a move; messages still go to {} (/to {} to follow it, or chat \
                 with --key-file or --code: a secure session follows a peer that moves)",
                label(*at, Some(name).filter(|n| !n.is_empty()).map(String::as_str)),
                shown(*heard),
                shown(*at),
                shown(*heard)
            )),
            Event::PeerMoved { name, from, to } => lines.push(format!(
                "!! {} moved to {}: its session is now heard from there, and what is sent to it goes there",
                label(*from, Some(name).filter(|n| !n.is_empty()).map(String::as_str)),
                shown(*to)
            )),
            // Shown through their transitions, or not at all.
            Event::PeerKind { .. }
            | Event::Sent { .. }
            | Event::SentBatch { .. }
            | Event::StrayReceipt { .. }
            | Event::Message(_)
            | Event::EchoSkipped { .. }
            | Event::Presence { .. }
            | Event::Unreachable { .. } => {}
        }
        lines
    }

    fn transition_line(&self, transition: &Transition, event: &Event) -> Option<String> {
        let peer = shown(transition.peer());
        match *transition {
            Transition::WentDown(addr) if Some(addr) == self.quiet_about => None,
            Transition::WentDown(_) => Some(match event {
                Event::Unreachable {
                    port: PortState::InUse,
                    ..
                } => format!(
                    "!! {peer} refuses datagrams from this socket (ICMP port unreachable), though a program holds that port: it takes one peer only, as nc -u -l does after its first"
                ),
                _ => format!("!! nothing is listening at {peer} (ICMP port unreachable)"),
            }),
            Transition::AnswersAgain(_) => Some(format!("!! {peer} answers again")),
            Transition::Speaks { plain: true, .. } => Some(format!(
                "!! {peer} speaks plain UDP: messages to it go as the bytes typed, without receipts"
            )),
            Transition::Speaks { plain: false, .. } => Some(format!(
                "!! {peer} speaks dgram: messages to it get receipts"
            )),
            // The user's choice, not news from the peer: worded as such.
            Transition::Chosen { plain: true, .. } => Some(format!(
                "treating {peer} as a plain UDP peer (your choice: /plain): messages to it go as the bytes typed, without receipts"
            )),
            Transition::Chosen { plain: false, .. } => Some(format!(
                "treating {peer} as a dgram peer (your choice: /dgram): messages to it go in envelopes and wait for receipts"
            )),
            Transition::MaybePlain(_) if self.keyed => Some(format!(
                "!! no receipt from {peer} yet, and nothing sealed with this key ever came from it: a keyed chat gets receipts only from dgram with the same --key-file (plain UDP programs cannot take part)"
            )),
            Transition::MaybePlain(_) => Some(format!(
                "!! no receipt from {peer} yet, and nothing dgram-shaped ever came from it: if it is a plain UDP program (nc -u -l, socat), it reads envelopes as bytes and never answers; /plain sends it the text as typed (or start with --plain)"
            )),
            Transition::PlainMemberGone(_) => Some(format!(
                "!! nothing is listening at {peer} any more (ICMP port unreachable): that plain member gets no more copies of the group's messages until it sends again"
            )),
            Transition::EchoLimited(_) => Some(match event {
                Event::EchoSkipped {
                    reason: EchoSkip::OwnAddress,
                    ..
                } => format!(
                    "!! not echoing datagrams that claim to come from this socket ({peer}): that would loop (counted, not answered)"
                ),
                Event::EchoSkipped {
                    reason: EchoSkip::Truncated,
                    ..
                } => format!(
                    "!! not echoing datagrams from {peer} cut short by --max-size: the reply would not be the datagram sent (counted, not answered; said once)"
                ),
                _ => format!(
                    "!! echo replies to {peer} held back: it sends faster than --echo-rate (replies over the rate are counted, not sent; said once)"
                ),
            }),
        }
    }
}

/// A time as the lines show it: `HH:MM:SS.mmm`, local.
fn clock(at: std::time::SystemTime) -> impl std::fmt::Display {
    DateTime::<Local>::from(at).format("%H:%M:%S%.3f")
}

/// A peer as the lines name it: `alice (127.0.0.1:9001)` for a dgram peer
/// that told its name, the address alone otherwise.
/// The line for a secure session's handshake, or a message waiting for it
/// (none for each datagram of the handshake: `session_opened` tells it).
/// What `chat --via` says as it looks for its path.
fn path_line(event: &TraverseEvent) -> Option<String> {
    Some(match event {
        TraverseEvent::Waiting => "rendezvous: the code's number is held; waiting for the other \
            side to run the same code (Ctrl-C to stop)"
            .to_string(),
        TraverseEvent::Mapped { server, mapped } => {
            format!("{} sees this side at {}", shown(*server), shown(*mapped))
        }
        TraverseEvent::Nat(kind) => format!("this side is {}", kind.describe()),
        TraverseEvent::Paired { first, candidates } => {
            let mut line = String::from("paired: the rendezvous saw the other side at ");
            let mut all = candidates.iter();
            if let Some(seen) = all.next() {
                line.push_str(&shown(*seen).to_string());
            }
            let reported: Vec<String> = all.map(|c| shown(*c).to_string()).collect();
            if !reported.is_empty() {
                let _ = write!(line, "; it reports {}", reported.join(", "));
            }
            line.push_str(if *first {
                "; probing every candidate (the other side chooses the path)"
            } else {
                "; probing every candidate (this side chooses the path)"
            });
            line
        }
        TraverseEvent::OpenSockets(_) => return None,
        TraverseEvent::Relay {
            server,
            relayed: Ok(relayed),
        } => format!(
            "relay: the TURN server {} gave this side {} (offered to the other side, used only \
             when no direct path is found; it sees only sealed datagrams)",
            shown(*server),
            shown(*relayed)
        ),
        TraverseEvent::Relay {
            server,
            relayed: Err(why),
        } => format!(
            "!! relay: no address from the TURN server {}: {}; looking for a direct path only",
            shown(*server),
            preview(why.as_bytes())
        ),
        TraverseEvent::Searching { hard: true } => format!(
            "port search: this side's NAT takes a new port for every destination, so {} sockets \
             probe the other side, for its probes to random ports to meet one",
            traverse::SEARCH_SOCKETS
        ),
        TraverseEvent::Searching { hard: false } => format!(
            "port search: no probe answered yet; probing random ports of the other side's \
             address ({} every {} ms, at most {}), in case its NAT takes a new port per destination",
            traverse::SEARCH_BURST,
            traverse::SEARCH_EVERY.as_millis(),
            traverse::SEARCH_MAX
        ),
        TraverseEvent::Found(found) => {
            let whose = match &found.kind {
                PathKind::Relayed { via } if *via == found.peer => {
                    " (the other side's TURN relay)".to_string()
                }
                PathKind::Relayed { .. } => {
                    format!(" (this side's TURN relay) to {}", shown(found.peer))
                }
                _ => format!(" to {}", shown(found.peer)),
            };
            let mut line = format!(
                "path: {}{whose}, found {:.1} ms after pairing ({} candidate{} tried",
                found.kind.describe(),
                found.took.as_secs_f64() * 1e3,
                found.tried.len(),
                if found.tried.len() == 1 { "" } else { "s" },
            );
            if let Some(search) = found.search {
                if search.sockets > 0 {
                    let _ = write!(line, "; {} search sockets", search.sockets);
                }
                if search.probes > 0 {
                    let _ = write!(line, "; {} random-port probes", search.probes);
                }
            }
            line.push_str("; /path shows them)");
            line
        }
        // The chat ends with this as its error: said once, there.
        TraverseEvent::Failed(_) => return None,
        TraverseEvent::DirectAgain { to } => format!(
            "path: {} answered directly: the chat leaves the relay (the session checks the new path first)",
            shown(*to)
        ),
    })
}

/// `/path`: the candidates of the path search and what each did.
pub fn path_table(found: &Found) -> Vec<String> {
    let to = match &found.kind {
        PathKind::Relayed { via } if *via == found.peer => {
            " (the other side's TURN relay)".to_string()
        }
        _ => format!(" to {}", shown(found.peer)),
    };
    let mut lines = vec![format!(
        "path: {}{to} ({})",
        found.kind.describe(),
        if found.controlling {
            "this side chose it"
        } else {
            "the other side chose it"
        }
    )];
    for tried in &found.tried {
        let answered = match tried.answered {
            Some(rtt) => format!(
                "answered (first round trip {:.1} ms)",
                rtt.as_secs_f64() * 1e3
            ),
            None => "no answer".to_string(),
        };
        lines.push(format!(
            "  {} {:<24} {:<26} {} probes, {answered}, {} heard from it",
            if tried.chosen { "*" } else { " " },
            shown(tried.addr).to_string(),
            tried.origin.name(),
            tried.probes,
            tried.heard,
        ));
    }
    lines
}

fn secure_line(event: &SecureEvent) -> Option<String> {
    let how = |method: Method| match method {
        Method::KeyFile => "key file",
        Method::Code => "code",
    };
    Some(match event {
        SecureEvent::Control { .. } => return None,
        SecureEvent::Began { peer, method } => format!(
            "-- securing the chat with {} ({}): handshake sent",
            shown(*peer),
            how(*method)
        ),
        SecureEvent::Waiting { peer, seq, .. } => format!(
            ".. #{seq} waits for the secure session with {}: it goes out when the handshake completes",
            shown(*peer)
        ),
        SecureEvent::Opened {
            peer,
            method,
            verify,
            ..
        } => format!(
            "-- secure session with {} ({}, keys of this run only); verify: {} \
             (the other screen shows the same words unless someone sits in between: /verify)",
            shown(*peer),
            how(*method),
            verification_words(verify)
        ),
        SecureEvent::WrongCode { peer } => format!(
            "!! the code does not match {}'s: nothing was sent or shown, and the code is \
             spent; start again with a new code (--code)",
            shown(*peer)
        ),
        SecureEvent::Challenged { peer, seen } => format!(
            "-- {} sees this side at {} now (a new address or NAT mapping) and checked it: the \
             chat goes on there",
            shown(*peer),
            shown(*seen)
        ),
        SecureEvent::NoAnswer {
            peer,
            method,
            tries,
        } => format!(
            "!! no handshake answer from {} after {tries} tries: is dgram running there with \
             the same {}?",
            shown(*peer),
            how(*method)
        ),
    })
}

pub fn label(addr: SocketAddr, name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() => {
            format!("{} ({})", super::escape::escape(name), shown(addr))
        }
        _ => shown(addr).to_string(),
    }
}

/// `HH:MM:SS.mmm  -> ADDR  LEN B  "TEXT"  (plain datagram: no receipt)`: a
/// datagram sent outside the chat protocol (`/empty`, `/size`, `/hex`).
pub fn sent_datagram_line(to: SocketAddr, name: Option<&str>, payload: &[u8]) -> String {
    format!(
        "{}  -> {}  {} B  {}  (plain datagram: no receipt)",
        clock(std::time::SystemTime::now()),
        label(to, name),
        payload.len(),
        preview(payload)
    )
}

/// `HH:MM:SS.mmm  alice (ADDR)  #SEQ  "TEXT"`, marked when it came out of
/// order.
pub fn message_line(message: &ChatMessage) -> String {
    let mut line = format!(
        "{}  {}  #{}  {}",
        clock(message.at),
        label(message.from, Some(&message.name)),
        message.seq,
        preview(&message.payload)
    );
    if message.reordered {
        line.push_str("  [out of order: a later message came first]");
    }
    line
}

/// What a delivered receipt adds to the line of its message:
/// `ok 0.4 ms` (and the tries, when more than one).
pub fn delivered_mark(receipt: &Settled) -> String {
    let mut mark = "  ok".to_string();
    if let Some(rtt) = receipt.rtt {
        let _ = write!(mark, " {}", duration(rtt));
    }
    if receipt.tries > 1 {
        let _ = write!(mark, ", {} tries", receipt.tries);
    }
    mark
}

/// What a group receipt adds to the line of its message: `  ✓ 2/3 (bob,
/// carol; dave missing)`, or that nobody was there to get it.
pub fn group_mark(receipt: &GroupReceipt) -> String {
    let name = |(addr, name): &(SocketAddr, String)| {
        if name.is_empty() {
            shown(*addr).to_string()
        } else {
            super::escape::escape(name)
        }
    };
    let got: Vec<String> = receipt.delivered.iter().map(name).collect();
    let missing: Vec<String> = receipt.missing.iter().map(name).collect();
    let all = got.len() + missing.len();
    if all == 0 {
        return "  (no member has been heard yet: nobody to get it; /why)".to_string();
    }
    let mut names = got.join(", ");
    if !missing.is_empty() {
        if !names.is_empty() {
            names.push_str("; ");
        }
        let _ = write!(names, "{} missing", missing.join(", "));
    }
    let hint = if got.is_empty() {
        "; nobody answered: /why"
    } else {
        ""
    };
    // The count says how complete it is: `✓ 1/2 (bob; cat missing)`.
    format!("  ✓ {}/{all} ({names}){hint}", got.len())
}

/// What joining a group set: `member of 239.1.2.3:5000 (multicast) on
/// eth0 (10.77.0.1), TTL 1, loopback on`.
pub fn joined_line(info: &GroupInfo) -> String {
    let iface = match &info.iface {
        Some(iface) => match (iface.v4, info.addr) {
            (Some(v4), SocketAddr::V4(_)) => format!("on {} ({v4})", iface.name),
            _ => format!("on {} (index {})", iface.name, iface.index),
        },
        None => "on the interface the route to it takes (--iface to choose)".to_string(),
    };
    match info.kind {
        GroupKind::Multicast => format!(
            "member of {} (multicast) {iface}, TTL {}, loopback {}",
            shown(info.addr),
            info.ttl,
            if info.loopback { "on" } else { "off" }
        ),
        GroupKind::Broadcast => {
            format!("member of {} (broadcast) {iface}", shown(info.addr))
        }
    }
}

/// A member joined, left, restarted, or could not be kept.
pub fn member_line(member: &MemberEvent) -> String {
    let who = label(member.addr, Some(&member.name));
    let count = format!(
        "{} member{} now",
        member.members,
        plural(member.members as u64)
    );
    match member.change {
        MemberChange::Joined => format!("++ {who} joined {}; {count}", shown(member.group)),
        MemberChange::Restarted => format!("++ {who} restarted (a new session); {count}"),
        MemberChange::Left => format!("-- {who} left (bye); {count}"),
        MemberChange::Silent(d) => format!("-- {who} left: not heard for {}; {count}", duration(d)),
        MemberChange::NotKept => format!(
            "!! {who} not kept as a member: the member table is full ({} members)",
            member.members
        ),
    }
}

/// A receipt on a line of its own.
pub fn receipt_line(receipt: &Settled) -> String {
    let who = label(receipt.to, receipt.name.as_deref());
    let seq = receipt.seq;
    let text = preview(&receipt.payload);
    let tries = format!(
        "{} tr{}",
        receipt.tries,
        if receipt.tries == 1 { "y" } else { "ies" }
    );
    let rtt = receipt.rtt.map(duration).unwrap_or_default();
    match receipt.outcome {
        Outcome::Delivered => format!("ok #{seq} to {who} delivered: {rtt}, {tries}  {text}"),
        Outcome::Failed if receipt.refused => format!(
            "!! #{seq} to {who} failed: nothing is listening there (ICMP port unreachable; {tries} sent)  {text}"
        ),
        Outcome::Failed if receipt.ended => format!(
            "!! #{seq} to {who} failed: the chat ended before its receipt came ({tries})  {text}"
        ),
        Outcome::Failed => {
            format!("!! #{seq} to {who} failed: no receipt after {tries}  {text}")
        }
        Outcome::Late => format!(
            "ok #{seq} to {who} delivered after all (its receipt came after it was reported failed): {rtt}  {text}"
        ),
    }
}

/// A peer's message counts, one line each way (none for a way without
/// messages): `    messages in 3: lost 0, …` and `    messages out 2: …`.
pub fn message_counts(i: &InboundCounts, o: &OutboundCounts) -> Vec<String> {
    let mut lines = Vec::new();
    if i.messages + i.duplicates > 0 {
        lines.push(format!(
            "    messages in {}: lost {}, reordered {}, duplicates {}",
            i.messages, i.missing, i.reordered, i.duplicates
        ));
    }
    if o.messages > 0 {
        let rtt = match (o.rtt.srtt(), o.rtt.min()) {
            (Some(srtt), Some(min)) => {
                format!(", round trip {} (min {})", duration(srtt), duration(min))
            }
            _ => String::new(),
        };
        lines.push(format!(
            "    messages out {}: delivered {}, failed {}, late {}, waiting {}, retransmissions {}{rtt}",
            o.messages,
            o.delivered,
            o.failed,
            o.late,
            o.pending(),
            o.retransmissions
        ));
    }
    lines
}

/// A round-trip time: `0.42 ms`, `12.3 ms`, `1.24 s`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// `HH:MM:SS.mmm  FROM  LEN B  PAYLOAD`, with the payload escaped.
pub fn datagram_line(datagram: &Datagram) -> String {
    let time = clock(datagram.at);
    let mut line = format!("{time}  {}  {} B", shown(datagram.from), datagram.len());
    push_truncation(&mut line, datagram);
    line.push_str("  ");
    line.push_str(&preview(&datagram.payload));
    line
}

/// ` [truncated: 9000 B sent, 7000 B lost]` for a datagram cut short.
fn push_truncation(line: &mut String, datagram: &Datagram) {
    if datagram.truncated {
        match (datagram.original_len, datagram.lost_bytes()) {
            (Some(original), Some(lost)) => {
                let _ = write!(line, " [truncated: {original} B sent, {lost} B lost]");
            }
            _ => line.push_str(" [truncated]"),
        }
    }
}

/// `SO_RCVBUF: requested 4096, effective 8192 (…)`.
pub fn buffer_line(option: &str, size: &BufferSize) -> String {
    let effective = size.effective;
    let Some(requested) = size.requested else {
        return format!("{option}: {effective} bytes (system default)");
    };
    let why = match size.verdict() {
        BufferVerdict::Doubled => "Linux doubles a request to cover its bookkeeping",
        BufferVerdict::AsRequested | BufferVerdict::Default => "as requested",
        BufferVerdict::Clamped if option == "SO_SNDBUF" => {
            "clamped: Linux takes at most net.core.wmem_max of a request, then doubles it; raise that sysctl for more"
        }
        BufferVerdict::Clamped => {
            "clamped: Linux takes at most net.core.rmem_max of a request, then doubles it; raise that sysctl for more"
        }
        BufferVerdict::Raised => "raised to the kernel's minimum",
    };
    format!("{option}: requested {requested}, effective {effective} ({why})")
}

fn capabilities_line(capabilities: &Capabilities) -> String {
    let mark = |on: bool| if on { "" } else { "no " };
    format!(
        "reports: {}truncated lengths (MSG_TRUNC), {}kernel drops (SO_RXQ_OVFL), {}ICMP errors (IP_RECVERR)",
        mark(capabilities.true_length),
        mark(capabilities.drop_count),
        mark(capabilities.icmp_errors),
    )
}

/// The one-line summary printed at exit.
pub fn summary_line(summary: &Summary) -> String {
    format!("summary: {}", totals(summary))
}

/// The totals of a run: `received 3 datagrams (12 B; …), …`. Counts that
/// only some runs have (held-back echoes, skipped lines) appear when not 0.
pub fn totals(summary: &Summary) -> String {
    let mut text = format!(
        "received {} datagram{} ({} B; {} empty, {} truncated), kernel dropped {}, sent {} ({} B), unreachable reports {}",
        summary.received,
        plural(summary.received),
        summary.bytes,
        summary.empty,
        summary.truncated,
        summary.dropped,
        summary.sent,
        summary.sent_bytes,
        summary.unreachable,
    );
    if summary.not_shown > 0 {
        let _ = write!(
            text,
            ", not shown one by one {} (too fast to read)",
            summary.not_shown
        );
    }
    if summary.echo_skipped > 0 {
        let _ = write!(text, ", echo replies held back {}", summary.echo_skipped);
    }
    if summary.rejected.total() > 0 {
        let reasons: Vec<String> = Rejection::ALL
            .iter()
            .filter(|r| summary.rejected.get(**r) > 0)
            .map(|r| {
                format!(
                    "{} {}",
                    r.name().replace('_', " "),
                    summary.rejected.get(*r)
                )
            })
            .collect();
        let _ = write!(
            text,
            ", refused {} ({})",
            summary.rejected.total(),
            reasons.join(", ")
        );
    }
    if summary.skipped_lines > 0 {
        let _ = write!(text, ", lines not sent {}", summary.skipped_lines);
    }
    if summary.peers_forgotten > 0 {
        let _ = write!(
            text,
            ", peers forgotten {} (only the {} most recently active are kept)",
            summary.peers_forgotten,
            crate::model::peers::MAX_PEERS
        );
    }
    if summary.malformed > 0 {
        let _ = write!(text, ", malformed envelopes {}", summary.malformed);
    }
    let inbound = &summary.inbound;
    if inbound.messages > 0 || inbound.duplicates > 0 || inbound.missing > 0 {
        let _ = write!(
            text,
            "; messages in {} (lost {}, reordered {}, duplicates {})",
            inbound.messages, inbound.missing, inbound.reordered, inbound.duplicates
        );
    }
    if summary.messages_sent > 0 {
        let _ = write!(
            text,
            "; messages out {} (delivered {}, failed {}, late {}, retransmissions {})",
            summary.messages_sent,
            summary.delivered,
            summary.failed,
            summary.late,
            summary.retransmissions
        );
    }
    text
}

/// For people: how a paced sender (`send --rate`, `bench --rate`) kept
/// its schedule.
pub fn pacing_line(p: &crate::model::pacing::PacingReport) -> String {
    let us = |ns: u64| ns as f64 / 1e3;
    format!(
        "paced at {}/s: achieved {}; deviation from schedule p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {} late (more than one interval behind{})",
        p.rate,
        p.achieved_rate()
            .map_or("- (one datagram)".to_string(), |r| format!(
                "{r:.1}/s over {:.3} s",
                p.elapsed_ns as f64 / 1e9
            )),
        us(p.p50_ns),
        us(p.p99_ns),
        us(p.max_ns),
        p.late,
        if p.late > 0 {
            format!(
                "; the schedule moved back {:.1} µs in all, no burst to catch up",
                us(p.slipped_ns)
            )
        } else {
            String::new()
        },
    ) + if p.achieved_rate().is_some_and(|r| r < 0.9 * p.rate as f64) {
        "; the sender could not keep this rate (beyond what it can send here, or \
         the machine took its CPU away): the achieved rate is what the run measured"
    } else {
        ""
    }
}

/// "s" unless `n` is 1.
pub fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A datagram written straight into the buffer reads exactly as its
    /// line made by `render` (JSON and human; text, binary, empty,
    /// truncated with and without its true length, IPv6, a transition
    /// line first).
    #[test]
    fn datagrams_written_in_place_match_their_rendered_lines() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        let mut cases = Vec::new();
        for (payload, truncated, original_len) in [
            (&b"hello \"you\"\n"[..], false, None),
            (&[0u8, 0xff, 3][..], false, None),
            (&b""[..], false, None),
            (&b"cut"[..], true, Some(9000)),
            (&b"cut"[..], true, None),
        ] {
            for from in ["127.0.0.1:5000", "[::1]:9"] {
                cases.push(Datagram {
                    at,
                    from: from.parse().unwrap(),
                    payload: payload.to_vec(),
                    truncated,
                    original_len,
                });
            }
        }
        let refused = [Transition::AnswersAgain(addr(5000))];
        for format in [Format::Json, Format::Human] {
            let mut renderer = Renderer::new(format);
            for datagram in &cases {
                let event = Event::Datagram(datagram.clone());
                for transitions in [&[][..], &refused[..]] {
                    let mut expected: String = renderer
                        .render(&event, transitions)
                        .iter()
                        .map(|line| format!("{line}\n"))
                        .collect();
                    if format == Format::Json {
                        expected = format!("{}\n", json::to_line(&event));
                    }
                    let mut out = String::new();
                    renderer.render_into(&event, transitions, &mut out);
                    assert_eq!(out, expected, "{format:?} {datagram:?}");
                }
            }
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn buffer_verdicts() {
        let line = |requested, effective| {
            buffer_line(
                "SO_RCVBUF",
                &BufferSize {
                    requested,
                    effective,
                },
            )
        };
        assert!(line(None, 212992).contains("system default"));
        if cfg!(target_os = "linux") {
            assert!(line(Some(4096), 8192).contains("doubles"));
            assert!(line(Some(1 << 26), 1 << 23).contains("clamped"));
            assert!(line(Some(1), 2304).contains("minimum"));
        }
    }

    /// A refusal reads once, through its transition; a repeated refusal
    /// (no transition) reads nothing; a quiet peer's refusal reads nothing.
    #[test]
    fn refusals_read_through_transitions() {
        let renderer = Renderer::new(Format::Human);
        let event = Event::Unreachable {
            peer: addr(9),
            port: PortState::Free,
        };
        let lines = renderer.render(&event, &[Transition::WentDown(addr(9))]);
        assert_eq!(
            lines,
            ["!! nothing is listening at 127.0.0.1:9 (ICMP port unreachable)"]
        );
        assert!(renderer.render(&event, &[]).is_empty());
        let quiet = Renderer::new(Format::Human).quiet_about(addr(9));
        assert!(
            quiet
                .render(&event, &[Transition::WentDown(addr(9))])
                .is_empty()
        );
    }

    /// What a peer speaks reads as news when the peer showed it and as
    /// the user's choice when chosen; a peer that never answers gets the
    /// hint that fits the chat (`/plain`, or the key when keyed); a plain
    /// group member that left is said to get no more copies.
    #[test]
    fn peer_kinds_and_hints_read_as_what_they_are() {
        let renderer = Renderer::new(Format::Human);
        let peer = addr(9);
        let event = Event::PeerKind { peer, plain: false };
        let line = |renderer: &Renderer, t: Transition| renderer.render(&event, &[t]).concat();
        assert_eq!(
            line(&renderer, Transition::Speaks { peer, plain: false }),
            "!! 127.0.0.1:9 speaks dgram: messages to it get receipts"
        );
        assert!(
            line(&renderer, Transition::Chosen { peer, plain: false })
                .starts_with("treating 127.0.0.1:9 as a dgram peer (your choice: /dgram)")
        );
        assert!(
            line(&renderer, Transition::Chosen { peer, plain: true })
                .starts_with("treating 127.0.0.1:9 as a plain UDP peer (your choice: /plain)")
        );
        let hint = line(&renderer, Transition::MaybePlain(peer));
        assert!(
            hint.contains("/plain") && hint.contains("--plain"),
            "{hint}"
        );
        let keyed = line(
            &Renderer::new(Format::Human).keyed(true),
            Transition::MaybePlain(peer),
        );
        assert!(
            !keyed.contains("/plain") && keyed.contains("--key-file"),
            "{keyed}"
        );
        assert!(
            line(&renderer, Transition::PlainMemberGone(peer))
                .contains("gets no more copies of the group's messages")
        );
    }

    /// A truncated datagram names its true length and what was lost, and
    /// its text is still text when the cut went through a character.
    #[test]
    fn truncated_text_reads_as_text() {
        let datagram = Datagram {
            at: SystemTime::now(),
            from: addr(5),
            payload: "ab你".as_bytes()[..4].to_vec(),
            truncated: true,
            original_len: Some(5),
        };
        let line = datagram_line(&datagram);
        assert!(
            line.ends_with("127.0.0.1:5  4 B [truncated: 5 B sent, 1 B lost]  \"ab\\xe4\\xbd\""),
            "{line}"
        );
    }

    /// A chat message reads with its sender's name, address and number,
    /// its text quoted and escaped; one that filled a gap says so; a peer
    /// without a name is its address.
    #[test]
    fn messages_read_with_name_and_number() {
        let message = ChatMessage {
            at: SystemTime::now(),
            from: addr(9),
            name: "al\u{1b}[2J".into(),
            session: crate::proto::SessionId([0; 8]),
            seq: 12,
            attempt: 1,
            payload: b"hi".to_vec(),
            duplicate: false,
            duplicates: 0,
            reordered: true,
            filled_gap: false,
            wire_len: 20,
        };
        let line = message_line(&message);
        assert!(
            line.ends_with(
                "  al\\u{1b}[2J (127.0.0.1:9)  #12  \"hi\"  [out of order: a later message came first]"
            ),
            "{line}"
        );
        assert_eq!(label(addr(9), Some("")), "127.0.0.1:9");
    }

    /// Each outcome has its line: delivered with round trip and tries,
    /// failed after its tries or because the chat ended, late; a delivered
    /// receipt on the line of its message is a short mark.
    #[test]
    fn receipts_say_the_outcome() {
        let receipt = |outcome, rtt, tries, ended| Settled {
            to: addr(9),
            name: Some("bob".into()),
            seq: 3,
            outcome,
            rtt,
            tries,
            payload: std::sync::Arc::from(&b"yo"[..]),
            ended,
            refused: false,
            wire_len: None,
            group: None,
        };
        let ms = std::time::Duration::from_millis;
        assert_eq!(
            receipt_line(&receipt(Outcome::Delivered, Some(ms(1240)), 3, false)),
            "ok #3 to bob (127.0.0.1:9) delivered: 1.24 s, 3 tries  \"yo\""
        );
        assert_eq!(
            receipt_line(&receipt(Outcome::Failed, None, 5, false)),
            "!! #3 to bob (127.0.0.1:9) failed: no receipt after 5 tries  \"yo\""
        );
        assert_eq!(
            receipt_line(&receipt(Outcome::Failed, None, 1, true)),
            "!! #3 to bob (127.0.0.1:9) failed: the chat ended before its receipt came (1 try)  \"yo\""
        );
        assert!(
            receipt_line(&receipt(Outcome::Late, Some(ms(12_000)), 5, false))
                .starts_with("ok #3 to bob (127.0.0.1:9) delivered after all")
        );
        assert_eq!(
            delivered_mark(&receipt(Outcome::Delivered, Some(ms(2)), 1, false)),
            "  ok 2.00 ms"
        );
        assert_eq!(
            delivered_mark(&receipt(Outcome::Delivered, Some(ms(450)), 2, false)),
            "  ok 450.0 ms, 2 tries"
        );
    }

    /// A group receipt's mark: everyone, someone missing, nobody
    /// answering, nobody there.
    #[test]
    fn group_marks() {
        use crate::model::chat::GroupReceipt;
        let member =
            |port: u16, name: &str| (SocketAddr::from(([10, 77, 0, 1], port)), name.to_string());
        let receipt = |delivered, missing| GroupReceipt {
            group: "239.1.2.3:5000".parse().unwrap(),
            seq: 1,
            payload: std::sync::Arc::from(&b"hi"[..]),
            delivered,
            missing,
        };
        assert_eq!(
            group_mark(&receipt(vec![member(1, "bob"), member(2, "cat")], vec![])),
            "  ✓ 2/2 (bob, cat)"
        );
        assert_eq!(
            group_mark(&receipt(vec![member(1, "bob")], vec![member(3, "dave")])),
            "  ✓ 1/2 (bob; dave missing)"
        );
        assert_eq!(
            group_mark(&receipt(vec![], vec![member(3, "")])),
            "  ✓ 0/1 (10.77.0.1:3 missing); nobody answered: /why"
        );
        assert_eq!(
            group_mark(&receipt(vec![], vec![])),
            "  (no member has been heard yet: nobody to get it; /why)"
        );
    }
}
