//! The display end of a command: every event is counted (totals and peer
//! table), rendered, and written to a sink.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::render::Renderer;
use super::sink::Sink;
use crate::Error;
use crate::model::{Event, Stats};

/// Counts, renders and writes events.
pub struct Display<'a> {
    renderer: Renderer,
    sink: Box<dyn Sink + 'a>,
    /// What has been counted so far; shared with the chat's input side
    /// (`/stats`, `/peers`, `/reply`).
    stats: Arc<Mutex<Stats>>,
    /// False once the reader went away (a closed pipe): events are still
    /// counted, nothing more is written.
    open: bool,
}

/// What became of an event handed to [`Display::show`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Written (or nothing to write).
    Yes,
    /// Counted, but the reader has gone away (a closed pipe): a normal,
    /// quiet end for a command whose output was its purpose.
    ReaderGone,
}

impl<'a> Display<'a> {
    /// A display rendering with `renderer` into `sink` (a `&mut` to a sink
    /// will do).
    pub fn new(renderer: Renderer, sink: impl Sink + 'a) -> Self {
        Display {
            renderer,
            sink: Box::new(sink),
            stats: Arc::default(),
            open: true,
        }
    }

    /// Writes from now on to `sink` (and reopens the display), returning
    /// the sink used so far.
    pub fn redirect(&mut self, sink: impl Sink + 'a) -> Box<dyn Sink + 'a> {
        self.open = true;
        std::mem::replace(&mut self.sink, Box::new(sink))
    }

    /// Counts and shows one event.
    pub fn show(&mut self, event: &Event) -> Result<Shown, Error> {
        let transitions = self.lock_stats().record(event);
        if !self.open {
            return Ok(Shown::ReaderGone);
        }
        let lines = self.renderer.render(event, &transitions);
        self.write(&lines)
    }

    /// Writes lines that are not events (a banner, a notice).
    pub fn write(&mut self, lines: &[String]) -> Result<Shown, Error> {
        if !self.open {
            return Ok(Shown::ReaderGone);
        }
        if lines.is_empty() {
            return Ok(Shown::Yes);
        }
        match self.sink.write_lines(lines) {
            Ok(()) => Ok(Shown::Yes),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.open = false;
                Ok(Shown::ReaderGone)
            }
            Err(source) => Err(Error::WriteOutput { source }),
        }
    }

    /// Shows the `summary` event with the totals so far, and returns them.
    pub fn show_summary(&mut self) -> Result<crate::model::Summary, Error> {
        let summary = self.lock_stats().summary;
        self.show(&Event::Summary(summary))?;
        Ok(summary)
    }

    /// The shared counts (for the chat's input side).
    pub fn stats(&self) -> Arc<Mutex<Stats>> {
        Arc::clone(&self.stats)
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Stats {
        self.lock_stats().clone()
    }

    /// False once the reader has gone away.
    pub fn is_open(&self) -> bool {
        self.open
    }

    fn lock_stats(&self) -> MutexGuard<'_, Stats> {
        // A poisoned lock means a thread panicked while counting; the
        // counts are still the best there are.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}
