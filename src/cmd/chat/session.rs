//! The sending side of a chat: the current peer, the buffer sizes asked
//! for, and what each typed line, message and command does.

use std::net::SocketAddr;
use std::sync::MutexGuard;
use std::time::{Duration, Instant, SystemTime};

use super::command::{self, Command, Input, help};
use crate::cmd::payload::pattern;
use crate::error::say;
use crate::model::{Stats, Tally};
use crate::net::addr::{check_family, check_not_self};
use crate::net::limits::check_payload;
use crate::output::escape::{escape_line, preview};
use crate::output::fast::shown;
use crate::output::render::path_table;
use crate::output::render::{
    buffer_line, duration, label, message_counts, plural, sent_datagram_line, totals,
};
use crate::proto::SentAs;
use crate::proto::code::verification_words;
use crate::proto::traverse::{Found, PathKind};
use crate::runtime::driver::Driver;
use crate::runtime::{JobControl, Outbox};

/// What a line asks of the input loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Show these lines and read the next one.
    Continue(Vec<String>),
    /// Leave the chat.
    Quit,
}

/// One chat's sending side, owned by the input thread.
#[derive(Debug)]
pub struct Session {
    outbox: Outbox,
    /// Sends messages (envelopes with receipts, or plain).
    messenger: Driver,
    /// The socket's address (peers of another family cannot be reached).
    local: SocketAddr,
    /// Where messages go; `None` until `--peer`, `/to` or `/reply`.
    peer: Option<SocketAddr>,
    /// `SO_RCVBUF` as last requested (for `/buf`).
    rcvbuf_requested: Option<usize>,
    /// `SO_SNDBUF` as last requested (for `/buf`).
    sndbuf_requested: Option<usize>,
    /// What the display has counted (shared with the display loop).
    stats: Tally,
    /// The "an empty line sends nothing" hint has been given.
    empty_hint_given: bool,
    /// The last message sent in an envelope, until its receipt is waited
    /// for ([`Session::wait_for_receipt`]).
    last_sent: std::cell::Cell<Option<(SocketAddr, u64)>>,
    /// With `--via`: the path found (for `/path`).
    path: Option<Found>,
}

impl Session {
    /// A session sending through `outbox` from the socket bound to `local`.
    pub fn new(
        outbox: Outbox,
        messenger: Driver,
        peer: Option<SocketAddr>,
        requested: (Option<usize>, Option<usize>),
        stats: Tally,
    ) -> Self {
        Session {
            local: outbox.endpoint().local_addr(),
            outbox,
            messenger,
            peer,
            rcvbuf_requested: requested.0,
            sndbuf_requested: requested.1,
            stats,
            empty_hint_given: false,
            last_sent: std::cell::Cell::new(None),
            path: None,
        }
    }

    /// The path `--via` found, for `/path`.
    pub fn with_path(mut self, found: Option<Found>) -> Self {
        self.path = found;
        self
    }

    /// The prompt: who a typed line goes to, and how many messages wait
    /// for receipts.
    pub fn prompt(&self) -> String {
        let waiting = self.messenger.pending_count();
        let mut waiting = if waiting > 0 {
            format!(" [{waiting} waiting]")
        } else {
            String::new()
        };
        if self.messenger.is_relayed() {
            // For as long as it is: a relay sees every datagram's size
            // and time (never its content).
            waiting.push_str(" (relayed)");
        }
        match self.peer {
            Some(peer) if self.messenger.group() == Some(peer) => {
                format!("group {}{waiting}> ", shown(peer))
            }
            Some(peer) => {
                let name = self.stats().peers.get(&peer).and_then(|p| p.name.clone());
                format!("{}{waiting}> ", label(peer, name.as_deref()))
            }
            None => format!("(no peer: /to ADDR){waiting}> "),
        }
    }

    /// True when `line` will go out as a message (its line on screen is
    /// then the display's, with its number and receipt, or marked plain).
    pub fn sends_message(&self, line: &str) -> bool {
        !line.is_empty()
            && matches!(command::parse(line), Ok(Input::Message(_)))
            && self.peer.is_some()
    }

    /// The messenger (for lines piped in).
    pub fn messenger(&self) -> &Driver {
        &self.messenger
    }

    /// Handles one line typed (or pasted) by a person: a `/command`, a
    /// message, or an empty line, which sends nothing (`/empty` does).
    pub fn typed(&mut self, line: &str, control: &JobControl) -> Answer {
        if line.is_empty() {
            if self.empty_hint_given {
                return Answer::Continue(Vec::new());
            }
            self.empty_hint_given = true;
            return Answer::Continue(vec![
                "(an empty line sends nothing; /empty sends an empty datagram)".to_string(),
            ]);
        }
        match command::parse(line) {
            Ok(Input::Message(payload)) => {
                Answer::Continue(self.send_message(&payload).err().into_iter().collect())
            }
            Ok(Input::Command(command)) => self.execute(command, control),
            // The answer quotes what was typed (or pasted: escape
            // sequences and all).
            Err(message) => Answer::Continue(vec![escape_line(&message)]),
        }
    }

    /// Sends one chat message to the current peer (in an envelope, or plain
    /// to a plain peer). The error is a line to show.
    pub fn send_message(&self, payload: &[u8]) -> Result<SentAs, String> {
        let peer = self.peer()?;
        let sent = self
            .messenger
            .send(payload, peer)
            .map_err(|e| format!("message not sent ({}): {}", preview(payload), say(&e)))?;
        if let SentAs::Envelope(seq) = sent {
            self.last_sent.set(Some((peer, seq)));
        }
        Ok(sent)
    }

    /// Waits up to `max` for the receipt of the message just sent, so that
    /// the next prompt's count of waiting messages is current (a receipt
    /// takes well under a millisecond on a LAN).
    pub fn wait_for_receipt(&self, max: Duration, control: &JobControl) {
        let Some((peer, seq)) = self.last_sent.take() else {
            return;
        };
        let deadline = Instant::now() + max;
        while self.messenger.is_waiting(peer, seq) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !control.wait_for(self.messenger.changes(), left) {
                return;
            }
        }
    }

    /// `/verify`: the words of the secure session with the current peer,
    /// to read to the other person (the same on both screens unless
    /// someone sits in between), or why there are none.
    fn verify(&self) -> String {
        let Ok(peer) = self.peer() else {
            return "no peer yet: /to ADDR first".to_string();
        };
        if !self.messenger.is_keyed() {
            return "/verify is for keyed chats (--key-file or --code): this chat is not secured"
                .to_string();
        }
        match self.messenger.verify(peer) {
            Some(bytes) => format!(
                "verify: {}  (read them to the other person: their /verify shows the same words \
                 unless someone sits in between)",
                verification_words(&bytes)
            ),
            None => format!(
                "no secure session with {} yet: the handshake has not completed",
                shown(peer)
            ),
        }
    }

    /// Sends one plain datagram to the current peer. The error is a line to
    /// show; a refusal is not an error here (the display reports it).
    pub fn send(&self, payload: &[u8]) -> Result<(), String> {
        let peer = self.peer()?;
        self.outbox.send(payload, peer).map_err(|e| say(&e))
    }

    /// The outbox (for lines piped in, which are data, not commands).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The current peer, or the line that says there is none.
    pub fn peer(&self) -> Result<SocketAddr, String> {
        self.peer
            .ok_or_else(|| "no peer yet: /to ADDR, or /reply once someone writes".to_string())
    }

    /// Runs one command.
    pub fn execute(&mut self, command: Command, control: &JobControl) -> Answer {
        let lines = match command {
            ref command if command.in_clear() && self.messenger.is_keyed() => {
                vec![
                    "a keyed chat sends only sealed messages: this would go out in clear (dgram send sends raw datagrams)"
                        .to_string(),
                ]
            }
            Command::Empty => self.send_reporting(&[]),
            Command::Size(n) => match self.fits(n) {
                Ok(()) => self.send_reporting(&pattern(n)),
                Err(line) => vec![line],
            },
            Command::Hex(bytes) => self.send_reporting(&bytes),
            Command::Burst { count, size } => vec![self.burst(count, size, control)],
            Command::Plain | Command::Dgram if self.messenger.group().is_some() => vec![
                "in a group /plain and /dgram do not apply: dgram members get envelopes, plain members (socat, Python) the text as typed; --raw makes the whole chat plain"
                    .to_string(),
            ],
            Command::To(_) | Command::Reply if self.messenger.group().is_some() => vec![
                "in a group every message goes to the whole group (one datagram each member hears); /members lists them"
                    .to_string(),
            ],
            Command::To(peer) => match check_family(self.local, peer)
                .and_then(|()| check_not_self(self.local, peer))
            {
                Ok(()) => {
                    self.peer = Some(peer);
                    vec![format!("talking to {}", shown(peer))]
                }
                Err(e) => vec![say(&e)],
            },
            Command::Reply => match self.last_sender() {
                Some(peer) => {
                    self.peer = Some(peer);
                    vec![format!("talking to {}", shown(peer))]
                }
                None => vec!["nobody has written yet: /to ADDR picks a peer".to_string()],
            },
            Command::Peers => self.peers(),
            Command::Pending => self.pending(),
            Command::Verify => vec![self.verify()],
            Command::Path => match &self.path {
                Some(found) => {
                    let mut lines = path_table(found);
                    if let Some((targets, sent)) = self.messenger.watching() {
                        let targets: Vec<String> =
                            targets.iter().map(|t| shown(*t).to_string()).collect();
                        lines.push(format!(
                            "  since then: watching for a direct path: {sent} probes to {} (one every 5 s), none answered yet",
                            targets.join(", ")
                        ));
                    } else if matches!(found.kind, PathKind::Relayed { .. })
                        && !self.messenger.is_relayed()
                    {
                        lines.push(
                            "  since then: a direct path answered, and the chat left the relay"
                                .to_string(),
                        );
                    }
                    lines
                }
                None => vec![
                    "/path is for chats that found their peer through a rendezvous (--via)"
                        .to_string(),
                ],
            },
            Command::Plain | Command::Dgram => match self.peer() {
                Ok(peer) => {
                    // The display says what changed, as the user's choice
                    // (marked before the choice is made, so that its
                    // event finds the mark).
                    let plain = command == Command::Plain;
                    self.stats().peers.choose_kind(peer, plain);
                    self.messenger.set_plain(peer, plain);
                    Vec::new()
                }
                Err(line) => vec![line],
            },
            Command::Members => self.members(),
            Command::Why => self.why(),
            Command::Buf => self.buffers(),
            Command::RcvBuf(size) => match self.outbox.endpoint().set_recv_buffer(size) {
                Ok(now) => {
                    self.rcvbuf_requested = Some(size);
                    vec![buffer_line("SO_RCVBUF", &now)]
                }
                Err(e) => vec![say(&e)],
            },
            Command::SndBuf(size) => match self.outbox.endpoint().set_send_buffer(size) {
                Ok(now) => {
                    self.sndbuf_requested = Some(size);
                    vec![buffer_line("SO_SNDBUF", &now)]
                }
                Err(e) => vec![say(&e)],
            },
            Command::Stats => vec![format!("stats: {}", totals(&self.stats().summary))],
            Command::Help => help(self.messenger.is_keyed()),
            Command::Quit => return Answer::Quit,
        };
        Answer::Continue(lines)
    }

    fn last_sender(&self) -> Option<SocketAddr> {
        self.stats().peers.last_sender()
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock()
    }

    /// Sends one plain datagram and says what went where (a plain
    /// datagram has no line of its own on the display, as a message has).
    fn send_reporting(&self, payload: &[u8]) -> Vec<String> {
        let sent = self
            .peer()
            .and_then(|peer| self.send(payload).map(|()| peer));
        match sent {
            Ok(peer) => {
                let name = self.stats().peers.get(&peer).and_then(|p| p.name.clone());
                vec![sent_datagram_line(peer, name.as_deref(), payload)]
            }
            Err(line) => vec![line],
        }
    }

    /// Refuses a size the current peer cannot be sent, before allocating.
    fn fits(&self, size: usize) -> Result<(), String> {
        let peer = self.peer()?;
        check_payload(size, &peer).map_err(|e| say(&e))
    }

    /// Sends `count` datagrams back to back until done or interrupted
    /// (Ctrl-C), and says how many went out.
    fn burst(&self, count: u64, size: usize, control: &JobControl) -> String {
        let peer = match self.peer().and_then(|peer| self.fits(size).map(|()| peer)) {
            Ok(peer) => peer,
            Err(line) => return line,
        };
        let payload = pattern(size);
        control.clear();
        let mut sent = 0u64;
        for _ in 0..count {
            if control.interrupted() {
                return format!(
                    "burst interrupted: sent {sent} of {count} datagram{} of {size} B to {}",
                    plural(count),
                    shown(peer)
                );
            }
            if let Err(e) = self.outbox.send(&payload, peer) {
                return format!(
                    "burst stopped after {sent} of {count} datagrams: {}",
                    say(&e)
                );
            }
            sent += 1;
        }
        format!(
            "burst: sent {sent} of {count} datagram{} of {size} B to {}",
            plural(count),
            shown(peer)
        )
    }

    fn peers(&self) -> Vec<String> {
        let stats = self.stats();
        if stats.peers.is_empty() {
            return vec!["no peers yet".to_string()];
        }
        let now = SystemTime::now();
        let mut lines = Vec::new();
        for (addr, peer) in stats.peers.iter() {
            let heard = match peer.last_heard {
                Some(at) => {
                    let ago = now.duration_since(at).unwrap_or_default();
                    format!("last heard {:.1} s ago", ago.as_secs_f64())
                }
                None => "never heard".to_string(),
            };
            let current = if Some(*addr) == self.peer {
                " (current)"
            } else {
                ""
            };
            let speaks = match peer.plain {
                Some(true) => ", plain UDP",
                Some(false) => ", dgram",
                None => "",
            };
            let down = if peer.down { ", nothing listening" } else { "" };
            lines.push(format!(
                "  {}{current}{speaks}: datagrams in {} ({} B), out {}, {heard}{down}",
                label(*addr, peer.name.as_deref()),
                peer.received,
                peer.bytes,
                peer.sent
            ));
            lines.extend(message_counts(&peer.inbound, &peer.outbound));
        }
        if stats.peers.forgotten() > 0 {
            lines.push(format!(
                "  ({} more forgotten: only the {} most recently active peers are kept)",
                stats.peers.forgotten(),
                crate::model::peers::MAX_PEERS
            ));
        }
        lines
    }

    fn pending(&self) -> Vec<String> {
        let waiting = self.messenger.waiting();
        if waiting.is_empty() {
            return vec!["no messages waiting for receipts".to_string()];
        }
        let names = self.stats();
        let mut lines = vec![format!(
            "{} message{} waiting for receipts:",
            waiting.len(),
            plural(waiting.len() as u64)
        )];
        for w in waiting {
            let name = names.peers.get(&w.to).and_then(|p| p.name.clone());
            lines.push(format!(
                "  #{} to {}: {} tr{} in {}, next in {}  {}",
                w.seq,
                label(w.to, name.as_deref()),
                w.tries,
                if w.tries == 1 { "y" } else { "ies" },
                duration(w.age),
                duration(w.next),
                preview(&w.payload)
            ));
        }
        lines
    }

    /// `/members`: the group's members as last heard.
    fn members(&self) -> Vec<String> {
        let Some(group) = self.messenger.group() else {
            return vec![
                "not in a group: start the chat with --group ADDR or --broadcast ADDR".to_string(),
            ];
        };
        let members = self.messenger.members();
        let mut lines = vec![format!(
            "{} member{} of {} heard (besides you)",
            members.len(),
            plural(members.len() as u64),
            shown(group)
        )];
        let now = Instant::now();
        for member in members {
            lines.push(format!(
                "  {}  last heard {} ago",
                label(member.addr, Some(&member.name)),
                duration(now.saturating_duration_since(member.last))
            ));
        }
        lines
    }

    /// `/why`: what may keep the group from hearing this member.
    fn why(&self) -> Vec<String> {
        match self.outbox.endpoint().group() {
            Some(info) => {
                crate::net::group::diagnose(info, self.local, self.messenger.members().len())
            }
            None => vec![
                "not in a group: /why explains a group's set-up (--group or --broadcast)"
                    .to_string(),
            ],
        }
    }

    fn buffers(&self) -> Vec<String> {
        let endpoint = self.outbox.endpoint();
        let rcvbuf = endpoint.recv_buffer(self.rcvbuf_requested);
        let sndbuf = endpoint.send_buffer(self.sndbuf_requested);
        vec![
            rcvbuf.map_or_else(|e| say(&e), |size| buffer_line("SO_RCVBUF", &size)),
            sndbuf.map_or_else(|e| say(&e), |size| buffer_line("SO_SNDBUF", &size)),
        ]
    }
}
