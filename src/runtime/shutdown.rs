//! Stop requests as a channel: Ctrl-C (SIGINT) apart from SIGTERM and
//! SIGHUP, from the process's signal handlers or made by hand.
//!
//! A [`Shutdown`] is a parameter of every command's `run` (as in
//! mini-redis), never something a library function installs for itself: the
//! command line installs the handlers once, and tests or `dgram lab` run
//! commands in-process with a [`Shutdown::manual`] one.

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::Error;

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C (SIGINT): stop what is going on. A chat at a terminal stops
    /// only the action in progress (a `/burst`); other commands end.
    Interrupt,
    /// SIGTERM: end.
    Terminate,
    /// SIGHUP (the terminal went away): end.
    Hangup,
}

impl Signal {
    /// The exit status of a command that this signal cut short:
    /// 128 + the signal's number, as shells report it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Hangup => 129,
        }
    }
}

/// Where stop requests arrive.
#[derive(Debug, Clone)]
pub struct Shutdown {
    requests: Receiver<Signal>,
    /// Keeps the channel open for a shutdown nobody can trigger (a
    /// disconnected channel would look ready forever to `select!`).
    _keep_open: Option<Sender<Signal>>,
}

/// Makes stop requests by hand (tests, commands run in-process).
#[derive(Debug, Clone)]
pub struct Trigger(Sender<Signal>);

impl Trigger {
    /// Asks for `signal`. Requests beyond the few already pending are
    /// dropped: one pending request of a kind is enough.
    pub fn send(&self, signal: Signal) {
        let _ = self.0.try_send(signal);
    }
}

/// How many requests may wait unread.
const PENDING: usize = 8;

impl Shutdown {
    /// Installs the process's handlers for SIGINT, SIGTERM and SIGHUP (on
    /// other platforms, for Ctrl-C). Call at most once per process.
    pub fn from_signals() -> Result<Shutdown, Error> {
        let (tx, requests) = bounded(PENDING);
        install(tx)?;
        Ok(Shutdown {
            requests,
            _keep_open: None,
        })
    }

    /// A shutdown triggered by hand.
    pub fn manual() -> (Trigger, Shutdown) {
        let (tx, requests) = bounded(PENDING);
        (
            Trigger(tx),
            Shutdown {
                requests,
                _keep_open: None,
            },
        )
    }

    /// A shutdown that never comes.
    pub fn never() -> Shutdown {
        let (tx, requests) = bounded(1);
        Shutdown {
            requests,
            _keep_open: Some(tx),
        }
    }

    /// The channel to `select!` on. It disconnects when every [`Trigger`]
    /// is gone: no request can come any more.
    pub fn requests(&self) -> &Receiver<Signal> {
        &self.requests
    }

    /// [`Error::Interrupted`] if a stop was asked for since the last look:
    /// for a loop that looks between its steps.
    pub fn check(&self) -> Result<(), Error> {
        match self.requests.try_recv() {
            Ok(signal) => Err(Error::Interrupted { signal }),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(unix)]
fn install(tx: Sender<Signal>) -> Result<(), Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|source| Error::SignalHandler { source })?;
    std::thread::Builder::new()
        .name("dgram-signals".into())
        .spawn(move || {
            for number in signals.forever() {
                let signal = match number {
                    SIGINT => Signal::Interrupt,
                    SIGHUP => Signal::Hangup,
                    _ => Signal::Terminate,
                };
                let _ = tx.try_send(signal);
            }
        })
        .map_err(|source| Error::SpawnThread {
            name: "signals",
            source,
        })?;
    Ok(())
}

#[cfg(not(unix))]
fn install(tx: Sender<Signal>) -> Result<(), Error> {
    ctrlc::set_handler(move || {
        let _ = tx.try_send(Signal::Interrupt);
    })
    .map_err(|e| Error::SignalHandler {
        source: std::io::Error::other(e),
    })
}
