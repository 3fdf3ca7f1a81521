//! The one table of the protocol's peers. A peer is known by its session:
//! an envelope is matched to its peer by the session it carries first, and
//! by the address it came from only when the session is new. The address
//! is where the peer was last heard (or where the user sends to), and may
//! change: a NAT rebinding or a roaming laptop keeps its conversation,
//! its numbering, its pending messages and its round-trip estimate.
//!
//! A peer that never sent an envelope (a plain program, a destination not
//! heard from yet) has no session and is known by its address. A new
//! session heard at a known peer's address is that peer restarted: the
//! conversation goes on with the new session (what waited for receipts
//! may still be acknowledged by it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::envelope::SessionId;
use super::inbound::{Arrival, Arrivals};

/// The most peers kept; past it the one heard from least recently (with
/// nothing waiting for its receipts) is forgotten, so that spoofed
/// sources and sessions cannot grow memory.
pub const MAX_PEERS: usize = 1024;

/// The sessions whose numbering is kept per peer: its current one and the
/// one before (whose late datagrams may still arrive after a restart).
const SESSIONS_PER_PEER: usize = 2;

/// The most gaps (ranges of missing numbers, 16 bytes each) all sessions
/// together may hold: 1 MiB. Past it, the session that opened a gap gives
/// up on its oldest ones, so that many peers skipping numbers cannot grow
/// memory beyond this, however many of them there are.
pub const GAP_BUDGET: usize = 1 << 16;

/// A peer's identity inside the protocol: stable while its address and
/// session change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(super) u64);

/// What a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain UDP: the bytes typed, no envelope.
    Plain,
    /// dgram's envelopes.
    Dgram,
}

/// The numbering of one of a peer's sessions.
#[derive(Debug, Default)]
struct Numbering {
    arrivals: Arrivals,
    duplicates: u64,
}

/// One peer.
#[derive(Debug)]
pub struct PeerState {
    /// Where it was last heard from (or where the user sends to).
    pub addr: SocketAddr,
    /// Where it was before it moved: what the user sends there still goes
    /// to it (at `addr`), until another peer is heard there.
    previous: Option<SocketAddr>,
    /// Its sessions, newest first (empty: none heard).
    sessions: Vec<(SessionId, Numbering)>,
    /// What it speaks, once known.
    pub kind: Option<Kind>,
    /// The user chose the kind (`--plain`, `/plain`, `/dgram`): what the
    /// peer sends does not change it.
    pub chosen: bool,
    /// Its name, once it said one.
    pub name: Option<String>,
    /// When it was last heard from or sent to.
    pub last: Instant,
    /// Bytes it sent as a plain sender and has not been sent back yet: a
    /// plain group member cannot prove it receives at its address, so it
    /// is sent copies of the group's messages only within this (1×).
    pub credit: usize,
}

impl PeerState {
    /// Its current session, once heard.
    pub fn session(&self) -> Option<SessionId> {
        self.sessions.first().map(|(s, _)| *s)
    }
}

/// How an envelope's sender was matched to its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// A known session at its known address (or a first session at an
    /// address the user sent to).
    Known(PeerId),
    /// A known session from another address: the peer moved from `from`.
    Moved(PeerId, SocketAddr),
    /// A new session at a known peer's address: it restarted.
    Restarted(PeerId),
    /// A peer not heard before.
    New(PeerId),
}

impl Matched {
    /// The peer.
    pub fn id(self) -> PeerId {
        match self {
            Matched::Known(id)
            | Matched::Moved(id, _)
            | Matched::Restarted(id)
            | Matched::New(id) => id,
        }
    }
}

/// Every peer, by id, with indexes by address and by session.
#[derive(Debug, Default)]
pub struct Peers {
    next: u64,
    peers: HashMap<PeerId, PeerState>,
    by_addr: HashMap<SocketAddr, PeerId>,
    by_session: HashMap<SessionId, PeerId>,
    /// Gaps held by all sessions together (see [`GAP_BUDGET`]).
    gaps: usize,
}

impl Peers {
    /// The peer at `addr`, if one is known there.
    pub fn at(&self, addr: SocketAddr) -> Option<PeerId> {
        self.by_addr.get(&addr).copied()
    }

    /// The peer `id`.
    pub fn get(&self, id: PeerId) -> Option<&PeerState> {
        self.peers.get(&id)
    }

    /// The peer `id`, to change.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut PeerState> {
        self.peers.get_mut(&id)
    }

    /// Where peer `id` is now (`None` once forgotten).
    pub fn addr(&self, id: PeerId) -> Option<SocketAddr> {
        self.peers.get(&id).map(|p| p.addr)
    }

    /// Gaps held by all sessions together.
    pub fn gaps(&self) -> usize {
        self.gaps
    }

    /// How many peers are kept.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when no peer is kept.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// All peers.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &PeerState)> {
        self.peers.iter().map(|(id, p)| (*id, p))
    }

    /// The peer at `addr`, made if none is known there (a destination the
    /// user sends to, a plain sender). `keep` says which peers may not be
    /// forgotten to make room (those with messages waiting).
    pub fn to(&mut self, addr: SocketAddr, now: Instant, keep: impl Fn(PeerId) -> bool) -> PeerId {
        if let Some(id) = self.at(addr) {
            self.peers.get_mut(&id).expect("indexed").last = now;
            return id;
        }
        self.insert(addr, now, keep)
    }

    fn insert(&mut self, addr: SocketAddr, now: Instant, keep: impl Fn(PeerId) -> bool) -> PeerId {
        if self.peers.len() >= MAX_PEERS {
            self.forget_oldest(keep);
        }
        self.next += 1;
        let id = PeerId(self.next);
        self.peers.insert(
            id,
            PeerState {
                addr,
                previous: None,
                sessions: Vec::new(),
                kind: None,
                chosen: false,
                name: None,
                last: now,
                credit: 0,
            },
        );
        self.by_addr.insert(addr, id);
        id
    }

    /// An envelope of `session` came from `from`: its peer, found by the
    /// session first. A known session from a new address moves its peer
    /// there when `may_move` (the envelope is one the peer could not have
    /// had forged, or the caller accepts the move); otherwise the peer
    /// stays where it was, and is still the one matched.
    pub fn heard(
        &mut self,
        from: SocketAddr,
        session: SessionId,
        may_move: bool,
        now: Instant,
        keep: impl Fn(PeerId) -> bool,
    ) -> Matched {
        if let Some(&id) = self.by_session.get(&session) {
            let peer = self.peers.get_mut(&id).expect("indexed");
            peer.last = now;
            if peer.addr == from || !may_move {
                return Matched::Known(id);
            }
            let old = std::mem::replace(&mut peer.addr, from);
            // One forwarding address per peer: the one it just left.
            if let Some(before) = peer.previous.replace(old)
                && self.by_addr.get(&before) == Some(&id)
            {
                self.by_addr.remove(&before);
            }
            // Whoever was known at the new address is there no more.
            if let Some(stale) = self.by_addr.insert(from, id)
                && stale != id
            {
                self.remove(stale);
            }
            return Matched::Moved(id, old);
        }
        // An address a peer moved away from belongs to whoever is heard
        // there next.
        let at = self.at(from).filter(|id| self.peers[id].addr == from);
        let (id, matched) = match at {
            Some(id) => {
                let restarted = self.peers[&id].session().is_some();
                (
                    id,
                    if restarted {
                        Matched::Restarted(id)
                    } else {
                        Matched::Known(id)
                    },
                )
            }
            None => {
                let id = self.insert(from, now, keep);
                (id, Matched::New(id))
            }
        };
        let peer = self.peers.get_mut(&id).expect("indexed");
        peer.last = now;
        peer.sessions.insert(0, (session, Numbering::default()));
        if peer.sessions.len() > SESSIONS_PER_PEER {
            let (gone, numbering) = peer.sessions.pop().expect("more than one");
            self.gaps -= numbering.arrivals.gaps();
            self.by_session.remove(&gone);
        }
        self.by_session.insert(session, id);
        matched
    }

    /// Records message `seq` of `session` from peer `id`: what it is, and
    /// the copies of that session's messages so far.
    pub fn arrival(&mut self, id: PeerId, session: SessionId, seq: u64) -> (Arrival, u64) {
        let Some(numbering) = self
            .peers
            .get_mut(&id)
            .and_then(|p| p.sessions.iter_mut().find(|(s, _)| *s == session))
            .map(|(_, n)| n)
        else {
            return (Arrival::New { gap: None }, 0);
        };
        let before = numbering.arrivals.gaps();
        let arrival = numbering.arrivals.record(seq);
        self.gaps = self.gaps - before + numbering.arrivals.gaps();
        while self.gaps > GAP_BUDGET && numbering.arrivals.give_up_oldest() {
            self.gaps -= 1;
        }
        if arrival == Arrival::Duplicate {
            numbering.duplicates += 1;
        }
        (arrival, numbering.duplicates)
    }

    /// Forgets peer `id` and its indexes.
    pub fn remove(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.remove(&id) {
            for addr in [Some(peer.addr), peer.previous].into_iter().flatten() {
                if self.by_addr.get(&addr) == Some(&id) {
                    self.by_addr.remove(&addr);
                }
            }
            for (session, numbering) in &peer.sessions {
                self.gaps -= numbering.arrivals.gaps();
                self.by_session.remove(session);
            }
        }
    }

    /// Makes room: forgets the eighth of the peers heard from least
    /// recently, among those `keep` lets go, at once (a flood of new
    /// senders costs a sort every hundred or so of them rather than a scan
    /// for each).
    fn forget_oldest(&mut self, keep: impl Fn(PeerId) -> bool) {
        let mut ages: Vec<(Instant, PeerId)> = self
            .peers
            .iter()
            .filter(|(id, _)| !keep(**id))
            .map(|(id, p)| (p.last, *id))
            .collect();
        if ages.is_empty() {
            return;
        }
        let forget = (ages.len() / 8).max(1);
        ages.select_nth_unstable_by_key(forget - 1, |(at, _)| *at);
        for &(_, id) in &ages[..forget] {
            self.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn never(_: PeerId) -> bool {
        false
    }

    /// A destination the user sent to gets its session bound by the first
    /// envelope from there; the same session from another address is the
    /// same peer, moved (or not, when moving is not allowed); a new
    /// session at its address is it restarted, and the session before
    /// still finds it.
    #[test]
    fn a_peer_is_its_session() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let (a, b, c) = (SessionId([1; 8]), SessionId([2; 8]), SessionId([3; 8]));
        let id = peers.to(addr(1), now, never);
        assert_eq!(
            peers.heard(addr(1), a, true, now, never),
            Matched::Known(id)
        );
        assert_eq!(
            peers.heard(addr(2), a, false, now, never),
            Matched::Known(id)
        );
        assert_eq!(peers.addr(id), Some(addr(1)));
        assert_eq!(
            peers.heard(addr(2), a, true, now, never),
            Matched::Moved(id, addr(1))
        );
        assert_eq!(peers.addr(id), Some(addr(2)));
        assert_eq!(
            peers.at(addr(1)),
            Some(id),
            "sends to where it was reach it"
        );
        assert_eq!(
            peers.heard(addr(2), b, true, now, never),
            Matched::Restarted(id)
        );
        assert_eq!(peers.get(id).unwrap().session(), Some(b));
        assert_eq!(
            peers.heard(addr(2), a, true, now, never),
            Matched::Known(id)
        );
        // A third session pushes the first out.
        assert_eq!(
            peers.heard(addr(2), c, true, now, never),
            Matched::Restarted(id)
        );
        assert!(matches!(
            peers.heard(addr(2), a, true, now, never),
            Matched::Restarted(_)
        ));
        assert_eq!(peers.len(), 1);
        // Another peer heard where the first one was takes that address.
        let other = peers.heard(addr(1), SessionId([9; 8]), true, now, never);
        assert!(matches!(other, Matched::New(_)), "{other:?}");
        assert_eq!(peers.at(addr(1)), Some(other.id()));
        assert_eq!(peers.at(addr(2)), Some(id));
    }

    /// The table stops at its cap, never forgetting a peer it is told to
    /// keep; every index stays consistent.
    #[test]
    fn peers_are_capped_and_kept_ones_stay() {
        let mut peers = Peers::default();
        let t0 = Instant::now();
        let kept = peers.to(addr(1), t0, never);
        for i in 0..5000u32 {
            let at = t0 + std::time::Duration::from_millis(u64::from(i) + 1);
            let mut s = [0u8; 8];
            s[..4].copy_from_slice(&i.to_be_bytes());
            peers.heard(addr(2 + (i % 60000) as u16), SessionId(s), true, at, |id| {
                id == kept
            });
            assert!(peers.len() <= MAX_PEERS);
        }
        assert!(peers.get(kept).is_some());
        assert!(peers.by_addr.len() <= MAX_PEERS);
        assert!(peers.by_session.len() <= MAX_PEERS * SESSIONS_PER_PEER);
        for (addr, id) in &peers.by_addr {
            let peer = peers.get(*id).expect("indexed peers exist");
            assert!(peer.addr == *addr || peer.previous == Some(*addr));
        }
    }
}
