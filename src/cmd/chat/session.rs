//! The sending side of a chat: the current peer, the buffer sizes asked
//! for, and what each typed line, message and command does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::command::{self, Command, Input, help};
use crate::cmd::payload::pattern;
use crate::error::say;
use crate::model::Stats;
use crate::net::addr::check_family;
use crate::net::limits::check_payload;
use crate::output::render::{buffer_line, plural, totals};
use crate::runtime::{JobControl, Outbox};

/// What a line asks of the input loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Show these lines and read the next one.
    Continue(Vec<String>),
    /// Leave the chat.
    Quit,
}

/// One chat's sending side, owned by the input thread.
#[derive(Debug)]
pub struct Session {
    outbox: Outbox,
    /// The socket's address (peers of another family cannot be reached).
    local: SocketAddr,
    /// Where messages go; `None` until `--peer`, `/to` or `/reply`.
    peer: Option<SocketAddr>,
    /// `SO_RCVBUF` as last requested (for `/buf`).
    rcvbuf_requested: Option<usize>,
    /// `SO_SNDBUF` as last requested (for `/buf`).
    sndbuf_requested: Option<usize>,
    /// What the display has counted (shared with the display loop).
    stats: Arc<Mutex<Stats>>,
    /// The "an empty line sends nothing" hint has been given.
    empty_hint_given: bool,
}

impl Session {
    /// A session sending through `outbox` from the socket bound to `local`.
    pub fn new(
        outbox: Outbox,
        peer: Option<SocketAddr>,
        requested: (Option<usize>, Option<usize>),
        stats: Arc<Mutex<Stats>>,
    ) -> Self {
        Session {
            local: outbox.endpoint().local_addr(),
            outbox,
            peer,
            rcvbuf_requested: requested.0,
            sndbuf_requested: requested.1,
            stats,
            empty_hint_given: false,
        }
    }

    /// The prompt: who a typed line goes to.
    pub fn prompt(&self) -> String {
        match self.peer {
            Some(peer) => format!("{peer}> "),
            None => "(no peer: /to ADDR)> ".to_string(),
        }
    }

    /// Handles one line typed (or pasted) by a person: a `/command`, a
    /// message, or an empty line, which sends nothing (`/empty` does).
    pub fn typed(&mut self, line: &str, control: &JobControl) -> Outcome {
        if line.is_empty() {
            if self.empty_hint_given {
                return Outcome::Continue(Vec::new());
            }
            self.empty_hint_given = true;
            return Outcome::Continue(vec![
                "(an empty line sends nothing; /empty sends an empty datagram)".to_string(),
            ]);
        }
        match command::parse(line) {
            Ok(Input::Message(payload)) => {
                Outcome::Continue(self.send(&payload).err().into_iter().collect())
            }
            Ok(Input::Command(command)) => self.execute(command, control),
            Err(message) => Outcome::Continue(vec![message]),
        }
    }

    /// Sends one datagram to the current peer. The error is a line to show;
    /// a refusal is not an error here (the display reports it).
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
    pub fn execute(&mut self, command: Command, control: &JobControl) -> Outcome {
        let lines = match command {
            Command::Empty => self.send_reporting(&[]),
            Command::Size(n) => match self.fits(n) {
                Ok(()) => self.send_reporting(&pattern(n)),
                Err(line) => vec![line],
            },
            Command::Hex(bytes) => self.send_reporting(&bytes),
            Command::Burst { count, size } => vec![self.burst(count, size, control)],
            Command::To(peer) => match check_family(self.local, peer) {
                Ok(()) => {
                    self.peer = Some(peer);
                    vec![format!("talking to {peer}")]
                }
                Err(e) => vec![say(&e)],
            },
            Command::Reply => match self.last_sender() {
                Some(peer) => {
                    self.peer = Some(peer);
                    vec![format!("talking to {peer}")]
                }
                None => vec!["nobody has written yet: /to ADDR picks a peer".to_string()],
            },
            Command::Peers => self.peers(),
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
            Command::Help => help(),
            Command::Quit => return Outcome::Quit,
        };
        Outcome::Continue(lines)
    }

    fn last_sender(&self) -> Option<SocketAddr> {
        self.stats().peers.last_sender()
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        // A poisoned lock means a thread panicked while counting; its counts
        // are still the best there are.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send_reporting(&self, payload: &[u8]) -> Vec<String> {
        match self.send(payload) {
            Ok(()) => Vec::new(),
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
                    "burst interrupted: sent {sent} of {count} datagram{} of {size} B to {peer}",
                    plural(count)
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
            "burst: sent {sent} of {count} datagram{} of {size} B to {peer}",
            plural(count)
        )
    }

    fn peers(&self) -> Vec<String> {
        let stats = self.stats();
        if stats.peers.is_empty() {
            return vec!["no peers yet".to_string()];
        }
        let now = SystemTime::now();
        stats
            .peers
            .iter()
            .map(|(addr, peer)| {
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
                let down = if peer.down { ", nothing listening" } else { "" };
                format!(
                    "  {addr}{current}: received {} ({} B), sent {}, {heard}{down}",
                    peer.received, peer.bytes, peer.sent
                )
            })
            .collect()
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
