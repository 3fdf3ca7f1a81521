//! Where rendered lines go: a [`Sink`].
//!
//! A command's display writes every line through one sink, so the same
//! command can print to stdout, into rustyline's external printer above a
//! prompt, or into memory (tests, and commands run side by side in one
//! process).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use rustyline::ExternalPrinter;

/// A destination for whole lines.
pub trait Sink: Send {
    /// Writes `lines` (each without its newline) and flushes them, so that a
    /// reader at the other end of a pipe sees every line as it happens.
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()>;

    /// Writes `text`, whole lines each ending with a newline, and flushes
    /// them: a batch of lines in one go (one `write(2)` where the sink is a
    /// file or a pipe).
    fn write_text(&mut self, text: &str) -> io::Result<()> {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        self.write_lines(&lines)
    }

    /// True when it is known, without writing, that nobody reads the lines
    /// any more (the reading end of a pipe is closed): a command that is
    /// waiting for something to show can end then, not at its next write.
    /// False when it cannot be told.
    fn reader_gone(&self) -> bool {
        false
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        (**self).write_lines(lines)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        (**self).write_text(text)
    }

    fn reader_gone(&self) -> bool {
        (**self).reader_gone()
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        (**self).write_lines(lines)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        (**self).write_text(text)
    }

    fn reader_gone(&self) -> bool {
        (**self).reader_gone()
    }
}

/// `None` writes nothing (a sink already handed elsewhere).
impl<S: Sink> Sink for Option<S> {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        match self {
            Some(sink) => sink.write_lines(lines),
            None => Ok(()),
        }
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        match self {
            Some(sink) => sink.write_text(text),
            None => Ok(()),
        }
    }

    fn reader_gone(&self) -> bool {
        self.as_ref().is_some_and(Sink::reader_gone)
    }
}

/// Lines written to any [`Write`]r: stdout, stderr, a file.
#[derive(Debug)]
pub struct WriterSink<W>(pub W);

impl<W: Write + Send> Sink for WriterSink<W> {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        for line in lines {
            self.0.write_all(line.as_bytes())?;
            self.0.write_all(b"\n")?;
        }
        self.0.flush()
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        self.0.write_all(text.as_bytes())?;
        self.0.flush()
    }
}

/// Lines on standard output, which can tell when its reader has gone.
#[derive(Debug)]
pub struct StdoutSink(WriterSink<io::Stdout>);

impl Sink for StdoutSink {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        self.0.write_lines(lines)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        self.0.write_text(text)
    }

    /// A pipe whose reading end is closed polls as an error (`POLLERR`) on
    /// its writing end; a terminal, a file or a full pipe with a reader
    /// does not.
    #[cfg(unix)]
    fn reader_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let stdout = io::stdout();
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|events| events.contains(PollFlags::POLLERR))
    }
}

/// Lines on standard output.
pub fn stdout() -> StdoutSink {
    StdoutSink(WriterSink(io::stdout()))
}

/// Lines on standard error.
pub fn stderr() -> WriterSink<io::Stderr> {
    WriterSink(io::stderr())
}

/// Lines printed above rustyline's prompt, leaving the half-typed line and
/// the cursor as they were.
pub struct PrinterSink(pub Box<dyn ExternalPrinter + Send>);

impl Sink for PrinterSink {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        self.0.print(text).map_err(io::Error::other)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.0.print(text.to_owned()).map_err(io::Error::other)
    }
}

/// Lines kept in memory, shared with whoever holds a clone.
#[derive(Debug, Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<String>>>);

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Sink for MemorySink {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(lines);
        Ok(())
    }
}
