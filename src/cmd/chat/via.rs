//! `dgram chat --via`: before the chat begins, meet the other side of the
//! code at the rendezvous and find a path to it
//! ([`crate::runtime::traverse`]); the chat then runs on the socket the
//! path is on, with the other side as its peer.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::{ChatOptions, Via};
use crate::Error;
use crate::model::{Event, Tally, Traffic};
use crate::net::Endpoint;
use crate::net::capture::Capture;
use crate::output::{Display, Shown};
use crate::proto::code::Code;
use crate::proto::traverse::{Config, Found, Keeper, NatKind, TraverseEvent};
use crate::runtime::relay::Relay;
use crate::runtime::traverse::{Outcome, find, host_candidates};
use crate::runtime::{Pipeline, Shutdown, entropy, report};

/// What the search left the chat: its pipeline on the path's socket, the
/// path, and the keeper that answers late probes.
pub struct Path {
    /// The pipeline, on the socket the path is on.
    pub pipeline: Pipeline,
    /// The path.
    pub found: Found,
    /// Answers the other side's late probes during the chat.
    pub keeper: Keeper,
}

/// Runs the search, showing each step; `None` when the output's reader
/// went away; [`Error::Interrupted`] when a stop was asked for.
pub fn find_path(
    options: &ChatOptions,
    via: &Via,
    code: &Code,
    capture: Option<Arc<Capture>>,
    shutdown: &Shutdown,
    display: &mut Display<'_>,
) -> Result<Option<Path>, Error> {
    let main = Endpoint::open(&options.socket)?;
    // The search's sockets record into the same capture as this one.
    main.0.capture_to(capture);
    let local = main.0.local_addr();
    let host = host_candidates(local).map_err(|source| Error::ListInterfaces { source })?;
    let config = Config {
        number: code.nameplate(),
        registrant: entropy::secret().map_err(|source| Error::Randomness { source })?,
        rendezvous: via.rendezvous,
        // The TURN server answers STUN too: the second server to tell an
        // easy NAT from a hard one, when --stun names none.
        stun: via.stun.or(via.turn.as_ref().map(|t| t.server)),
        host,
        relayed: None,
        path_wait: via.path_wait,
        seed: entropy::secret().map_err(|source| Error::Randomness { source })?,
    };
    // Nothing is counted before the chat: the steps are only shown.
    let tally = Tally::default();
    let mut failure = None;
    let mut nat = None;
    let mut gone = false;
    let mut traffic = Traffic::default();
    let outcome = find(
        main,
        &options.socket,
        config,
        via.turn.as_ref(),
        shutdown,
        &mut traffic,
        &mut |event| {
            match event {
                TraverseEvent::Failed(why) => failure = Some(why.describe()),
                TraverseEvent::Nat(kind) => nat = Some(kind.to_owned()),
                _ => {}
            }
            let event = Event::Path {
                at: SystemTime::now(),
                event: event.clone(),
            };
            if report(&tally, display, &event)? == Shown::ReaderGone {
                gone = true;
            }
            Ok(())
        },
    )?;
    // What the search put on the wire, so that a --pcap file's records
    // before the chat's own add up to something the output said.
    if gone || report(&tally, display, &Event::SearchTraffic(traffic))? == Shown::ReaderGone {
        return Ok(None);
    }
    match outcome {
        Outcome::Found(path) => {
            let (endpoint, buffers, found, client) = *path;
            let behind = nat.is_some_and(|k| k != NatKind::None);
            let token = entropy::secret().map_err(|source| Error::Randomness { source })?;
            let keeper = Keeper::new(code.nameplate(), behind, &found, token, Instant::now());
            let pipeline = Pipeline::from_endpoint((endpoint, buffers), options.max_size);
            if let Some(client) = client {
                // The path goes through this side's relay: so does what
                // the chat sends to the peer.
                let outbox = pipeline.outbox();
                outbox.set_relay(Relay::new(client, found.peer, Instant::now()));
                outbox.flush_relay();
            }
            Ok(Some(Path {
                pipeline,
                found,
                keeper,
            }))
        }
        Outcome::Stopped(signal) => Err(Error::Interrupted { signal }),
        Outcome::Failed => Err(Error::NoPath {
            reason: failure.unwrap_or_else(|| "the search ended".to_string()),
        }),
    }
}
