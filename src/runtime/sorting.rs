//! What a failed socket call means to a loop around it, decided in one
//! place for every loop that receives (the receiver thread, `ping`, the
//! bench server and sender, `dgram lab`).
//!
//! A signal's interruption is retried; a receive that waited its timeout
//! out (or a send with no room) is the loop's moment to look for a stop
//! request; an ICMP error is a report about a peer, not about the socket,
//! and never ends a loop; anything else is a failure of the socket.

use std::io;

use crate::net::Endpoint;
use crate::net::endpoint::is_icmp_error;
use crate::net::sys::PeerError;

/// The kind of a failed socket call, from the error alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A signal interrupted the call: make it again.
    Retry,
    /// Nothing now: no datagram within the read timeout (or none queued on
    /// a non-blocking socket), or no room in the send queue.
    Idle,
    /// An ICMP report about a peer (refused, unreachable) failed the call.
    Peer,
    /// A failure of this socket.
    Failed,
}

/// Sorts `error` by its kind.
pub fn classify(error: &io::Error) -> Class {
    match error.kind() {
        io::ErrorKind::Interrupted => Class::Retry,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Class::Idle,
        _ if is_icmp_error(error) => Class::Peer,
        _ => Class::Failed,
    }
}

/// What a failed call on an [`Endpoint`] means, with the peer reports it
/// carried.
#[derive(Debug)]
pub enum Sorted {
    /// A signal interrupted the call: make it again.
    Retry,
    /// Nothing now (see [`Class::Idle`]).
    Idle,
    /// Reports about peers, drained from the socket's error queue. Empty
    /// when another thread drained them first (they were reported there).
    Peers(Vec<PeerError>),
    /// A failure of this socket.
    Failed(io::Error),
}

/// Sorts the error of a call on `endpoint`. For anything but a retry or
/// an idle turn the error queue is drained: an ICMP report fails whatever
/// call comes next with the errno it carries (not always one that
/// [`is_icmp_error`] knows, e.g. `EMSGSIZE` for "fragmentation needed"),
/// so an error with reports queued is about peers, and only an error with
/// none queued, of no ICMP kind, is the socket's own.
pub fn sort(error: io::Error, endpoint: &Endpoint) -> Sorted {
    match classify(&error) {
        Class::Retry => Sorted::Retry,
        Class::Idle => Sorted::Idle,
        Class::Peer | Class::Failed => {
            let errors = endpoint.take_errors();
            if errors.is_empty() && classify(&error) == Class::Failed {
                Sorted::Failed(error)
            } else {
                Sorted::Peers(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of error goes to its own place.
    #[test]
    fn errors_are_sorted_by_kind() {
        let of = |kind: io::ErrorKind| classify(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::Interrupted), Class::Retry);
        assert_eq!(of(io::ErrorKind::WouldBlock), Class::Idle);
        assert_eq!(of(io::ErrorKind::TimedOut), Class::Idle);
        assert_eq!(of(io::ErrorKind::ConnectionRefused), Class::Peer);
        assert_eq!(of(io::ErrorKind::HostUnreachable), Class::Peer);
        assert_eq!(of(io::ErrorKind::NetworkUnreachable), Class::Peer);
        assert_eq!(of(io::ErrorKind::InvalidInput), Class::Failed);
    }

    /// On an endpoint with nothing in its error queue, a refusal is still
    /// about a peer (another thread drained its report), while any other
    /// error is the socket's failure.
    #[test]
    fn an_endpoint_error_without_reports_is_a_failure() {
        let (endpoint, _) = Endpoint::open(&crate::net::SocketOptions {
            bind: "127.0.0.1:0".parse().unwrap(),
            rcvbuf: None,
            sndbuf: None,
        })
        .unwrap();
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(sort(refused, &endpoint), Sorted::Peers(e) if e.is_empty()));
        let bad = io::Error::from(io::ErrorKind::InvalidInput);
        assert!(matches!(sort(bad, &endpoint), Sorted::Failed(_)));
        let idle = io::Error::from(io::ErrorKind::WouldBlock);
        assert!(matches!(sort(idle, &endpoint), Sorted::Idle));
    }
}
