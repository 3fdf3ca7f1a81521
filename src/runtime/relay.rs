//! A chat's path through this side's own TURN relay (after `chat --via
//! --turn` chose a relayed path): what is sent to the peer goes to the
//! TURN server wrapped ([`TurnClient::wrap`]: ChannelData once the channel
//! is bound), what the server forwards from the peer comes out unwrapped
//! with the peer's address, and the allocation, permission and channel
//! are refreshed while the chat lasts. Shared by the sending side (the
//! [`Outbox`](super::Outbox)) and the receiver thread's handler.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::proto::turn::{Received, TurnClient};

/// The relay of one chat's peer.
#[derive(Debug)]
pub struct Relay {
    client: Mutex<TurnClient>,
    server: SocketAddr,
    peer: SocketAddr,
    /// A direct path to the peer answered: no more routing.
    direct: std::sync::atomic::AtomicBool,
}

/// What a datagram from the TURN server was.
#[derive(Debug)]
pub enum Unwrapped {
    /// The peer's datagram, as the peer sent it.
    Data {
        /// Who sent it to the relayed address.
        from: SocketAddr,
        /// What it sent.
        payload: Vec<u8>,
    },
    /// The relay's own (a refresh's answer): taken.
    Taken,
    /// Not the relay's: an ordinary datagram from the server's address.
    NotRelayed,
}

impl Relay {
    /// The relay `client` (allocated) for `peer`, whose channel is asked
    /// for at once (4 bytes a datagram instead of a Send indication's 36).
    pub fn new(mut client: TurnClient, peer: SocketAddr, now: Instant) -> Relay {
        let _ = client.bind_channel(now, peer);
        Relay {
            server: client.server(),
            client: Mutex::new(client),
            peer,
            direct: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The TURN server.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// True when datagrams to `to` go through the relay.
    pub fn routes(&self, to: SocketAddr) -> bool {
        to == self.peer && !self.direct.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The peer answered at its own address directly: send there without
    /// the relay from now on (the allocation lives on until the end, for
    /// what is still in flight through it).
    pub fn go_direct(&self, to: SocketAddr) -> bool {
        if to != self.peer {
            return false;
        }
        self.direct
            .store(true, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// `payload` wrapped for the server; `None` when it cannot be (the
    /// allocation is gone, the payload is too large).
    pub fn wrap(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(payload.len() + 36);
        self.lock()
            .wrap(Instant::now(), self.peer, payload, &mut out)
            .ok()
            .map(|()| out)
    }

    /// Takes a datagram that came from the server.
    pub fn unwrap(&self, datagram: &[u8]) -> Unwrapped {
        match self.lock().handle_datagram(Instant::now(), datagram) {
            Received::Data { from, payload } => Unwrapped::Data { from, payload },
            Received::NotTurn => Unwrapped::NotRelayed,
            Received::Consumed | Received::Refused(_) => Unwrapped::Taken,
        }
    }

    /// What the client has to send to the server (requests, refreshes).
    pub fn take_transmits(&self) -> Vec<Vec<u8>> {
        let mut client = self.lock();
        while client.poll_event().is_some() {}
        std::iter::from_fn(|| client.poll_transmit()).collect()
    }

    /// When the client must be woken.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().poll_timeout()
    }

    /// Retransmissions and refreshes due now.
    pub fn handle_timeout(&self) {
        self.lock().handle_timeout(Instant::now());
    }

    /// Gives the allocation back (at the chat's end).
    pub fn close(&self) {
        self.lock().close(Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TurnClient> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }
}
