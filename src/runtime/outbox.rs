//! The one send path: every datagram dgram sends (messages, bursts, echo
//! replies, later receipts) goes through an [`Outbox`], which sends it,
//! reports the ICMP errors drained on the way, and emits a `Sent` event.

use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::Error;
use crate::model::Event;
use crate::net::{Endpoint, PeerError};

/// The display has gone: nobody reads events any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sends datagrams and reports what happened, from any thread.
#[derive(Debug, Clone)]
pub struct Outbox {
    endpoint: Arc<Endpoint>,
    events: Sender<Event>,
}

impl Outbox {
    /// An outbox sending through `endpoint` and reporting to `events`.
    pub fn new(endpoint: Arc<Endpoint>, events: Sender<Event>) -> Self {
        Outbox { endpoint, events }
    }

    /// The socket.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one datagram to `to`.
    pub fn send(&self, payload: &[u8], to: SocketAddr) -> Result<(), Error> {
        self.send_as(payload, to, false)
    }

    /// Sends an echo reply (the same bytes back to their sender).
    pub fn echo(&self, payload: &[u8], to: SocketAddr) -> Result<(), Error> {
        self.send_as(payload, to, true)
    }

    fn send_as(&self, payload: &[u8], to: SocketAddr, echo: bool) -> Result<(), Error> {
        let mut drained = Vec::new();
        let sent = self.endpoint.send_to(payload, to, &mut drained);
        // Errors drained on the way are news whether or not the send went
        // out.
        let _ = self.report(drained);
        sent?;
        let _ = self.emit(Event::Sent {
            to,
            len: payload.len(),
            echo,
        });
        Ok(())
    }

    /// Hands an event to the display.
    pub fn emit(&self, event: Event) -> Result<(), Closed> {
        self.events.send(event).map_err(|_| Closed)
    }

    /// Reports ICMP errors as events: a refusal as `Unreachable`, anything
    /// else as a `PeerError`.
    pub fn report(&self, errors: Vec<PeerError>) -> Result<(), Closed> {
        for error in errors {
            let event = if error.is_refusal() {
                Event::Unreachable { peer: error.peer }
            } else {
                Event::PeerError {
                    peer: error.peer,
                    error: error.message(),
                }
            };
            self.emit(event)?;
        }
        Ok(())
    }

    /// Drains the socket's error queue into events (for the last look
    /// before a command ends).
    pub fn report_pending(&self) -> Result<(), Closed> {
        self.report(self.endpoint.take_errors())
    }
}
