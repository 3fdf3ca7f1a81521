//! The sending side of a chat: the current peer, the buffer sizes asked
//! for, and what each message and command does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crossbeam_channel::Sender;

use crate::command::{Command, help};
use crate::datagram::pattern;
use crate::display::{buffer_line, totals};
use crate::error::report;
use crate::event::Event;
use crate::receiver::send_reported;
use crate::socket::Endpoint;
use crate::stats::Stats;

/// What a command asks of the REPL.
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
    endpoint: Arc<Endpoint>,
    /// Where `Sent` events and drained ICMP errors go (the display).
    events: Sender<Event>,
    /// Where messages go; `None` until `--peer`, `/to` or `/reply`.
    peer: Option<SocketAddr>,
    /// `SO_RCVBUF` as last requested (for `/buf`).
    rcvbuf_requested: Option<usize>,
    /// `SO_SNDBUF` as last requested (for `/buf`).
    sndbuf_requested: Option<usize>,
    /// What the display has counted (shared with the display thread).
    stats: Arc<Mutex<Stats>>,
}

impl Session {
    /// A session sending through `endpoint`.
    pub fn new(
        endpoint: Arc<Endpoint>,
        events: Sender<Event>,
        peer: Option<SocketAddr>,
        requested: (Option<usize>, Option<usize>),
        stats: Arc<Mutex<Stats>>,
    ) -> Self {
        Session {
            endpoint,
            events,
            peer,
            rcvbuf_requested: requested.0,
            sndbuf_requested: requested.1,
            stats,
        }
    }

    /// The current peer.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The prompt: who a typed line goes to.
    pub fn prompt(&self) -> String {
        match self.peer {
            Some(peer) => format!("{peer}> "),
            None => "(no peer: /to ADDR)> ".to_string(),
        }
    }

    /// Sends one datagram to the current peer. The error is a line to show;
    /// a refusal is not an error here (the display reports it).
    pub fn send(&self, payload: &[u8]) -> Result<(), String> {
        let peer = self
            .peer
            .ok_or("no peer yet: /to ADDR, or /reply once someone writes")?;
        send_reported(&self.endpoint, &self.events, payload, peer, false).map_err(|e| report(&e))
    }

    /// Runs one command.
    pub fn execute(&mut self, command: Command) -> Outcome {
        let lines = match command {
            Command::Empty => self.send_reporting(&[]),
            Command::Size(n) => self.send_reporting(&pattern(n)),
            Command::Hex(bytes) => self.send_reporting(&bytes),
            Command::Burst { count, size } => vec![self.burst(count, size)],
            Command::To(peer) => {
                self.peer = Some(peer);
                vec![format!("talking to {peer}")]
            }
            Command::Reply => match self.last_sender() {
                Some(peer) => {
                    self.peer = Some(peer);
                    vec![format!("talking to {peer}")]
                }
                None => vec!["nobody has written yet: /to ADDR picks a peer".to_string()],
            },
            Command::Peers => self.peers(),
            Command::Buf => self.buffers(),
            Command::RcvBuf(size) => match self.endpoint.set_recv_buffer(size) {
                Ok(now) => {
                    self.rcvbuf_requested = Some(size);
                    vec![buffer_line("SO_RCVBUF", &now)]
                }
                Err(e) => vec![report(&e)],
            },
            Command::SndBuf(size) => match self.endpoint.set_send_buffer(size) {
                Ok(now) => {
                    self.sndbuf_requested = Some(size);
                    vec![buffer_line("SO_SNDBUF", &now)]
                }
                Err(e) => vec![report(&e)],
            },
            Command::Stats => vec![format!("stats: {}", totals(&self.stats().summary))],
            Command::Help => help(),
            Command::Quit => return Outcome::Quit,
        };
        Outcome::Continue(lines)
    }

    fn last_sender(&self) -> Option<SocketAddr> {
        self.stats().last_sender
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        // A poisoned lock means the display thread panicked; its counts are
        // still the best there are.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send_reporting(&self, payload: &[u8]) -> Vec<String> {
        match self.send(payload) {
            Ok(()) => Vec::new(),
            Err(line) => vec![line],
        }
    }

    /// Sends `count` datagrams back to back and says how many went out.
    fn burst(&self, count: u64, size: usize) -> String {
        let payload = pattern(size);
        let mut sent = 0u64;
        for _ in 0..count {
            if let Err(line) = self.send(&payload) {
                return format!("burst stopped after {sent} of {count} datagrams: {line}");
            }
            sent += 1;
        }
        format!(
            "burst: sent {sent} of {count} datagrams of {size} B to {}",
            self.peer.map_or("nobody".to_string(), |p| p.to_string())
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
        let rcvbuf = self.endpoint.recv_buffer(self.rcvbuf_requested);
        let sndbuf = self.endpoint.send_buffer(self.sndbuf_requested);
        vec![
            rcvbuf.map_or_else(|e| report(&e), |size| buffer_line("SO_RCVBUF", &size)),
            sndbuf.map_or_else(|e| report(&e), |size| buffer_line("SO_SNDBUF", &size)),
        ]
    }
}
