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
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        (**self).write_lines(lines)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        (**self).write_text(text)
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        (**self).write_lines(lines)
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        (**self).write_text(text)
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

/// Lines on standard output.
pub fn stdout() -> WriterSink<io::Stdout> {
    WriterSink(io::stdout())
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
