//! A group's members as one member sees them, and what became of each
//! message sent to the group, member by member.
//!
//! Members say hello when they join and then every [`hello_every`] or so
//! (jittered, so that a room does not say hello in step), and bye when
//! they leave; a member not heard from for [`silent_after`] is taken to
//! have left. Anything a member sends counts as hearing from it.
//!
//! A message to the group is one datagram; the members present when it
//! was sent are the ones expected to acknowledge it, each on its own
//! (their receipts, retransmissions and failures are the unicast ones of
//! [`Outbound`](super::Outbound), one entry per member). [`GroupSends`]
//! gathers them into the message's final state: who got it, who did not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SessionId;

/// The most members kept; past it a new member is not added (and the
/// chat says so), so that spoofed hellos cannot grow memory.
pub const MAX_MEMBERS: usize = 256;

/// How often a member says hello (before jitter), unless `--hello` says.
pub const HELLO_EVERY: Duration = Duration::from_secs(5);

/// How long a member may be silent, for hellos every `hello`: three and a
/// half hellos, so that two lost ones in a row do not make it leave.
pub fn silent_after(hello: Duration) -> Duration {
    hello * 7 / 2
}

/// The next hello after one now: `hello` stretched by a random factor
/// between 0.75 and 1.25.
pub fn hello_every(hello: Duration, random: f64) -> Duration {
    hello.mul_f64(0.75 + random.clamp(0.0, 1.0) / 2.0)
}

/// A member, as last heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Where it sends from (its own socket: receipts go there).
    pub addr: SocketAddr,
    /// Its session.
    pub session: SessionId,
    /// Its name (may be empty).
    pub name: String,
    /// When it was last heard from.
    pub last: Instant,
}

/// What hearing from a member changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// It is new.
    Joined,
    /// It was known; nothing changed.
    Known,
    /// Its address is known but with another session: it restarted.
    Restarted,
    /// The table is full: it was not added.
    Full,
    /// Not a member (or not with this session), and it has not proved
    /// that it receives at its address: nothing is kept.
    Unproven,
}

/// The members of a group, by address.
#[derive(Debug, Default)]
pub struct Members {
    members: BTreeMap<SocketAddr, Member>,
}

impl Members {
    /// Notes that `addr` (session, name if it said one) was heard now.
    /// Only a datagram that `proven` the sender receives at `addr` (the
    /// answer to this member's challenge) makes it a member, or makes a
    /// member's new session take over: anyone can put another's address
    /// on a datagram, and a member is sent retransmissions. A known
    /// member's datagrams keep it alive.
    pub fn heard(
        &mut self,
        addr: SocketAddr,
        session: SessionId,
        name: Option<&str>,
        proven: bool,
        now: Instant,
    ) -> Heard {
        if let Some(member) = self.members.get_mut(&addr) {
            if member.session != session && !proven {
                return Heard::Unproven;
            }
            member.last = now;
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                name.clone_into(&mut member.name);
            }
            if member.session != session {
                member.session = session;
                return Heard::Restarted;
            }
            return Heard::Known;
        }
        if !proven {
            return Heard::Unproven;
        }
        if self.members.len() >= MAX_MEMBERS {
            return Heard::Full;
        }
        self.members.insert(
            addr,
            Member {
                addr,
                session,
                name: name.unwrap_or_default().to_string(),
                last: now,
            },
        );
        Heard::Joined
    }

    /// A bye from `addr`: the member, if it was one (and the session is
    /// its own: an old session's bye does not remove a restarted member).
    pub fn bye(&mut self, addr: SocketAddr, session: SessionId) -> Option<Member> {
        match self.members.get(&addr) {
            Some(member) if member.session == session => self.members.remove(&addr),
            _ => None,
        }
    }

    /// Removes and returns the members silent for `silent` or more.
    pub fn expired(&mut self, now: Instant, silent: Duration) -> Vec<Member> {
        let gone: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| now.saturating_duration_since(m.last) >= silent)
            .map(|m| m.addr)
            .collect();
        gone.iter()
            .filter_map(|addr| self.members.remove(addr))
            .collect()
    }

    /// When the next member will have been silent for `silent`.
    pub fn next_expiry(&self, silent: Duration) -> Option<Instant> {
        self.members.values().map(|m| m.last + silent).min()
    }

    /// The members, by address.
    pub fn list(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    /// The member at `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<&Member> {
        self.members.get(&addr)
    }

    /// Their addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.members.keys().copied().collect()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when no member has been heard.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// A message sent to the group, until every expected member is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSend {
    /// Its number.
    pub seq: u64,
    /// The message.
    pub payload: Arc<[u8]>,
    /// The members present when it was sent.
    pub expected: Vec<SocketAddr>,
    /// Those whose receipt came, in the order they came.
    pub delivered: Vec<SocketAddr>,
    /// Those that ran out of tries (or the chat ended, or refused).
    pub missing: Vec<SocketAddr>,
}

impl GroupSend {
    /// True once every expected member is delivered or missing.
    pub fn settled(&self) -> bool {
        self.delivered.len() + self.missing.len() >= self.expected.len()
    }
}

/// The messages sent to the group that are not settled yet.
#[derive(Debug, Default)]
pub struct GroupSends {
    sends: BTreeMap<u64, GroupSend>,
}

impl GroupSends {
    /// Starts following message `seq`, expected by `expected`. With nobody
    /// expected it is settled at once, and returned.
    pub fn start(
        &mut self,
        seq: u64,
        payload: Arc<[u8]>,
        expected: Vec<SocketAddr>,
    ) -> Option<GroupSend> {
        let send = GroupSend {
            seq,
            payload,
            expected,
            delivered: Vec::new(),
            missing: Vec::new(),
        };
        if send.settled() {
            return Some(send);
        }
        self.sends.insert(seq, send);
        None
    }

    /// Member `member` got message `seq` (`delivered`) or never will; the
    /// message once every expected member is settled. A member that was
    /// not expected, or is settled already, changes nothing.
    pub fn settle(&mut self, seq: u64, member: SocketAddr, delivered: bool) -> Option<GroupSend> {
        let send = self.sends.get_mut(&seq)?;
        if !send.expected.contains(&member)
            || send.delivered.contains(&member)
            || send.missing.contains(&member)
        {
            return None;
        }
        if delivered {
            send.delivered.push(member);
        } else {
            send.missing.push(member);
        }
        if send.settled() {
            return self.sends.remove(&seq);
        }
        None
    }

    /// True while message `seq` waits for members.
    pub fn is_waiting(&self, seq: u64) -> bool {
        self.sends.contains_key(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 77, 0, 1], port))
    }

    /// Unproven senders kept out, joins, hellos again, a restart (new
    /// session at the same address, proven),
    /// an old session's bye ignored, the right bye honoured, and silence
    /// ending membership at exactly `silent`.
    #[test]
    fn members_come_and_go() {
        let mut members = Members::default();
        let (a, b) = (SessionId([1; 8]), SessionId([2; 8]));
        let t0 = Instant::now();
        assert_eq!(
            members.heard(addr(1), a, Some("bob"), false, t0),
            Heard::Unproven
        );
        assert!(members.is_empty());
        assert_eq!(
            members.heard(addr(1), a, Some("bob"), true, t0),
            Heard::Joined
        );
        assert_eq!(members.heard(addr(1), a, None, false, t0), Heard::Known);
        assert_eq!(members.get(addr(1)).unwrap().name, "bob");
        assert_eq!(members.heard(addr(1), b, None, false, t0), Heard::Unproven);
        assert_eq!(members.get(addr(1)).unwrap().session, a);
        assert_eq!(members.heard(addr(1), b, None, true, t0), Heard::Restarted);
        assert_eq!(members.bye(addr(1), a), None);
        assert!(members.bye(addr(1), b).is_some());
        assert!(members.is_empty());
        members.heard(addr(2), a, Some("carol"), true, t0);
        let silent = Duration::from_secs(3);
        assert_eq!(members.next_expiry(silent), Some(t0 + silent));
        assert!(members.expired(t0 + silent / 2, silent).is_empty());
        let gone = members.expired(t0 + silent, silent);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "carol");
        assert!(members.is_empty());
    }

    /// The table stops growing at its cap.
    #[test]
    fn members_are_capped() {
        let mut members = Members::default();
        let now = Instant::now();
        for port in 0..MAX_MEMBERS as u16 + 10 {
            members.heard(addr(port + 1), SessionId([0; 8]), None, true, now);
        }
        assert_eq!(members.len(), MAX_MEMBERS);
        assert_eq!(
            members.heard(addr(60000), SessionId([0; 8]), None, true, now),
            Heard::Full
        );
    }

    /// A message settles once every expected member is delivered or
    /// missing, not before; strangers and repeats change nothing; a
    /// message to nobody settles at once.
    #[test]
    fn group_sends_settle_member_by_member() {
        let mut sends = GroupSends::default();
        let payload: Arc<[u8]> = Arc::from(&b"hi"[..]);
        assert!(sends.start(1, payload.clone(), vec![]).is_some());
        assert!(
            sends
                .start(2, payload.clone(), vec![addr(1), addr(2), addr(3)])
                .is_none()
        );
        assert_eq!(sends.settle(2, addr(1), true), None);
        assert_eq!(sends.settle(2, addr(1), true), None, "a repeat");
        assert_eq!(sends.settle(2, addr(9), true), None, "a stranger");
        assert_eq!(sends.settle(2, addr(3), false), None);
        assert!(sends.is_waiting(2));
        let done = sends.settle(2, addr(2), true).unwrap();
        assert_eq!(done.delivered, vec![addr(1), addr(2)]);
        assert_eq!(done.missing, vec![addr(3)]);
        assert!(!sends.is_waiting(2));
    }

    /// Hellos are spread between 0.75 and 1.25 of the interval; silence
    /// is three and a half intervals.
    #[test]
    fn hello_timing() {
        let hello = Duration::from_secs(4);
        assert_eq!(hello_every(hello, 0.0), Duration::from_secs(3));
        assert_eq!(hello_every(hello, 1.0), Duration::from_secs(5));
        assert_eq!(silent_after(hello), Duration::from_secs(14));
    }
}
