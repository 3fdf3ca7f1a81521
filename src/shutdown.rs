//! Ctrl-C and SIGTERM (and SIGHUP on Unix) as a channel, so that a command's
//! main loop can `select!` on them next to its events.

use crossbeam_channel::{Receiver, bounded};

use crate::Error;

/// Installs the process's termination handler. Each signal puts one message
/// on the returned channel (further ones while it is full are dropped: one
/// pending stop request is enough). Call at most once per process.
pub fn signals() -> Result<Receiver<()>, Error> {
    let (tx, rx) = bounded(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .map_err(|source| Error::SignalHandler { source })?;
    Ok(rx)
}
