//! A listener's answers to `dgram mtu`'s probes (kinds 14 and 15,
//! `docs/PROTOCOL.md` section 15), in front of the chat handler.
//!
//! A valid probe is answered at once and shown as the datagram it is; a
//! reverse probe's answer goes out with the don't-fragment flag
//! (`IP_PMTUDISC_PROBE`), so that it measures the path back instead of
//! being fragmented on it. A peer gets at most [`ANSWERS_PER_SECOND`]
//! answers a second. Everything else goes on to the inner handler.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use crate::model::{Datagram, Event, SentKind};
use crate::net::sys::PmtuMode;
use crate::proto::mtu::{self, Direction};
use crate::runtime::echo::RateLimiter;
use crate::runtime::{Closed, Handler, Outbox};

/// Answers a peer gets a second, in bursts of as many: `dgram mtu` sends
/// a few dozen probes in all, one at a time, so only a flood (a spoofed
/// source, however unamplified) meets the limit.
pub const ANSWERS_PER_SECOND: u32 = 200;

/// The most peers told that their probes are held back; beyond it, no
/// more are told (the probes are still shown), so that spoofed sources
/// cannot grow memory.
const MAX_TOLD: usize = 4096;

/// Answers MTU probes, hands the rest to `inner`.
pub struct MtuAnswers {
    inner: Box<dyn Handler>,
    limiter: RateLimiter,
    /// Peers already told (once each) that their probes are held back.
    told: HashSet<SocketAddr>,
}

impl MtuAnswers {
    /// Answers probes in front of `inner`.
    pub fn new(inner: Box<dyn Handler>) -> Self {
        MtuAnswers {
            inner,
            limiter: RateLimiter::new(ANSWERS_PER_SECOND),
            told: HashSet::new(),
        }
    }
}

/// Sends `answer` to `to` with the don't-fragment flag, then puts the
/// socket's mode back. Only this receiver thread changes the mode, so the
/// answer always leaves with the flag; another thread's send in between
/// leaves with it too, which only a datagram larger than the interface's
/// MTU would notice.
fn send_unfragmented(outbox: &Outbox, answer: &[u8], to: std::net::SocketAddr) {
    let endpoint = outbox.endpoint();
    let before = match endpoint.set_pmtu_mode(PmtuMode::Probe) {
        Ok(before) => before,
        Err(error) => {
            // Without the flag the answer would be fragmented and
            // confirm a size that does not cross whole: not sent.
            let _ = outbox.emit(Event::PeerError {
                peer: to,
                error: format!("MTU answer not sent: don't-fragment cannot be set ({error})"),
            });
            return;
        }
    };
    if let Err(error) = outbox.send_as(answer, to, SentKind::Control) {
        // EMSGSIZE: this side's interface cannot carry it whole, which is
        // the prober's answer (a lost probe).
        let _ = outbox.emit(Event::PeerError {
            peer: to,
            error: format!(
                "MTU answer of {} bytes not sent: {}",
                answer.len(),
                report(&error)
            ),
        });
    }
    let _ = endpoint.set_pmtu_mode(before);
}

fn report(error: &crate::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => error.to_string(),
    }
}

impl Handler for MtuAnswers {
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        if !mtu::is_mtu(&datagram.payload) || datagram.truncated {
            return self.inner.on_datagram(datagram, outbox);
        }
        let wire = match mtu::parse(&datagram.payload) {
            Ok(wire) => wire,
            Err(why) => {
                return outbox.emit_received(Event::Malformed {
                    datagram,
                    reason: why.to_string(),
                });
            }
        };
        let from = datagram.from;
        // The datagram is shown first, then the answer's `sent` event.
        outbox.emit_received(Event::Datagram(datagram))?;
        if !wire.answer && !self.limiter.allow(from, Instant::now()) {
            if self.told.len() < MAX_TOLD && self.told.insert(from) {
                outbox.emit(Event::PeerError {
                    peer: from,
                    error: format!(
                        "MTU probes over {ANSWERS_PER_SECOND} a second from this peer: the rest are shown, not answered"
                    ),
                })?;
            }
            return Ok(());
        }
        if let Some(answer) = mtu::answer(&wire) {
            match wire.direction {
                Direction::Forward => {
                    if let Err(error) = outbox.send_as(&answer, from, SentKind::Control) {
                        outbox.emit(Event::PeerError {
                            peer: from,
                            error: format!("MTU answer not sent: {}", report(&error)),
                        })?;
                    }
                }
                Direction::Reverse => send_unfragmented(outbox, &answer, from),
            }
        }
        Ok(())
    }

    fn on_malformed(
        &mut self,
        datagram: Datagram,
        reason: String,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        self.inner.on_malformed(datagram, reason, outbox)
    }

    fn next_wake(&self) -> Option<std::time::Instant> {
        self.inner.next_wake()
    }

    fn on_wake(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        self.inner.on_wake(outbox)
    }

    fn on_stop(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        self.inner.on_stop(outbox)
    }
}
