//! The input side of `dgram chat`, in its three modes: a rustyline editor
//! on a terminal (history, completion), plain lines typed at a terminal
//! without the editor (commands still work), and lines from a pipe (pure
//! data: one datagram per line).

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, select};
use rustyline::completion::{Completer, Pair};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{
    Cmd, ConditionalEventHandler, Context, Editor, Event, EventContext, EventHandler, Helper,
    Hinter, KeyEvent, RepeatCount, Validator,
};

use super::HOLD_SENT_LINE;
use super::command;
use super::session::{Answer, Session};
use crate::Error;
use crate::cmd::files;
use crate::cmd::payload::Line;
use crate::error::{say, warning};
use crate::model::Event as DgramEvent;
use crate::net::limits::{MAX_PAYLOAD, MAX_PAYLOAD_V4};
use crate::output::Sink;
use crate::output::escape::escape_line;
use crate::runtime::JobControl;
use crate::runtime::driver::Driver;

/// The line editor dgram chat uses.
pub type ChatEditor = Editor<ChatHelper, FileHistory>;

/// What Ctrl-C on an empty line says.
const LEAVE_HINT: &str = "(to leave: /quit or Ctrl-D; Ctrl-C clears the line)";

/// What Ctrl-C says without the line editor (the terminal has already
/// thrown away whatever was typed on the line).
const CTRL_C_HINT: &str = "(Ctrl-C: the line typed so far is gone; to leave, /quit or Ctrl-D)";

/// Completes `/commands` on Tab, and keeps the prompt's count of messages
/// waiting for receipts current while the editor waits for a key.
#[derive(Default, Helper, Hinter, Validator)]
pub struct ChatHelper {
    /// Where the count comes from, once the chat has a messenger.
    pub waiting: Option<Driver>,
}

impl rustyline::highlight::Highlighter for ChatHelper {
    /// Called at every redraw (each line printed above the prompt): the
    /// prompt was made when the line editor started, and the count in it
    /// can only fall while the editor waits (only Enter sends), so it is
    /// rewritten in place, at the same width.
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        match &self.waiting {
            Some(messenger) => match recount(prompt, messenger.pending_count()) {
                Some(prompt) => Cow::Owned(prompt),
                None => Cow::Borrowed(prompt),
            },
            None => Cow::Borrowed(prompt),
        }
    }
}

/// `prompt` with its `[N waiting]` count made `now`, at the same width;
/// `None` when it has no count.
fn recount(prompt: &str, now: usize) -> Option<String> {
    let end = prompt.rfind(" waiting]")?;
    let start = prompt[..end].rfind('[')? + 1;
    let width = end - start;
    let count = format!("{now:>width$}");
    (count.len() == width).then(|| format!("{}{count}{}", &prompt[..start], &prompt[end..]))
}

impl Completer for ChatHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let typed = &line[..pos];
        if !typed.starts_with('/') || typed.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let candidates = command::completions(typed)
            .into_iter()
            .map(|name| Pair {
                display: name.to_string(),
                replacement: format!("{name} "),
            })
            .collect();
        Ok((0, candidates))
    }
}

/// Remembers whether Ctrl-C was pressed on an empty line, then lets
/// rustyline interrupt the line as usual.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        self.0.store(ctx.line().is_empty(), Ordering::SeqCst);
        None
    }
}

/// Where history lives unless `--history` says otherwise:
/// `<data dir>/dgram/history` (`~/.local/share/dgram/history` on Linux).
pub fn default_history() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("dgram").join("history"))
}

/// The editor, ready to read.
pub struct Prepared {
    /// The editor.
    pub editor: ChatEditor,
    /// The history file to append to, if it could be loaded (or is new).
    pub history: Option<PathBuf>,
    /// Warnings to show before the chat starts (a history file that could
    /// not be used).
    pub warnings: Vec<String>,
    /// Set by Ctrl-C on an empty line.
    ctrl_c_on_empty: Arc<AtomicBool>,
}

/// Makes the editor and loads the history file. A missing file is a first
/// run; a file that cannot be read (not UTF-8, a directory, no permission)
/// is a warning, and the chat goes on without history.
pub fn editor(history: Option<&Path>) -> Result<Prepared, Error> {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .max_history_size(10_000)
        .map_err(|source| Error::Terminal { source })?
        .build();
    let mut editor =
        ChatEditor::with_config(config).map_err(|source| Error::Terminal { source })?;
    editor.set_helper(Some(ChatHelper::default()));
    let ctrl_c_on_empty = Arc::new(AtomicBool::new(false));
    editor.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(CtrlC(Arc::clone(&ctrl_c_on_empty)))),
    );
    let mut warnings = Vec::new();
    let mut usable = None;
    // The null device means no history, as it does for shells.
    if let Some(path) = history.filter(|path| !files::is_null_device(path)) {
        // dgram's own data directory is made for its default history; a
        // directory the user named is never made.
        if default_history().as_deref() == Some(path)
            && let Some(dir) = path.parent()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        // Not a regular file (a FIFO would block, /dev/full takes nothing),
        // its directory missing: said once, and no history.
        let checked = files::check_target(path).and_then(|target| {
            if target == files::Target::New {
                // A new history file is the user's alone (what was typed
                // may be private); rustyline would create it with the
                // umask's mode.
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                files::open_regular(path, &mut options)?;
            }
            Ok(target)
        });
        let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        let loaded = match checked {
            Err(e) => Err(ReadlineError::Io(e)),
            Ok(files::Target::Existing) if !empty => editor.load_history(path),
            Ok(_) => Ok(()),
        };
        match loaded {
            Err(source) => warnings.push(warning(&Error::LoadHistory {
                path: path.to_path_buf(),
                source,
            })),
            Ok(()) => usable = Some(path.to_path_buf()),
        }
    }
    Ok(Prepared {
        editor,
        history: usable,
        warnings,
        ctrl_c_on_empty,
    })
}

/// Reads lines on a terminal until `/quit` or Ctrl-D on an empty line.
/// Ctrl-C clears the line being typed (on an empty line it says how to
/// leave). A paste of several lines is several lines: each one is handled
/// as if typed. Every line is appended to the history file as soon as it
/// is entered, so the history survives however the chat ends (SIGTERM
/// included).
pub fn run_editor(
    prepared: Prepared,
    mut session: Session,
    control: JobControl,
) -> Result<(), Error> {
    let Prepared {
        mut editor,
        history,
        ctrl_c_on_empty,
        ..
    } = prepared;
    let mut history_failed = false;
    loop {
        let prompt = session.prompt();
        let entered = match editor.readline(&prompt) {
            Ok(entered) => entered,
            Err(ReadlineError::Interrupted) => {
                if ctrl_c_on_empty.swap(false, Ordering::SeqCst) {
                    print_lines(&[LEAVE_HINT.to_string()]);
                }
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            // A byte that is not UTF-8 (a Latin-1 terminal's é) ends
            // rustyline's line (it has left raw mode and the line), and
            // which bytes were typed is lost: the line is refused, and the
            // chat goes on.
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                print_lines(&["!! not sent: that line is not UTF-8 text (is the terminal set to UTF-8?); /hex sends any bytes".to_string()]);
                continue;
            }
            Err(source) => return Err(Error::Terminal { source }),
        };
        let lines = split_lines(&entered);
        let pasted = lines.len() > 1;
        if !pasted && session.sends_message(lines[0]) {
            // The display shows the message again, with its number and its
            // receipt (or marked plain): the line as typed would say it
            // twice.
            if let Some((columns, _)) = editor.dimensions() {
                erase_entry(&prompt, lines[0], usize::from(columns));
            }
        }
        for line in lines {
            // Blank lines inside a paste send nothing, silently.
            if pasted && line.is_empty() {
                continue;
            }
            if !line.is_empty() {
                let _ = editor.add_history_entry(line);
                if let Some(path) = &history
                    && let Err(e) = editor.append_history(path)
                    && !history_failed
                {
                    history_failed = true;
                    print_lines(&[escape_line(&format!(
                        "!! history not saved to {}: {e}",
                        path.display()
                    ))]);
                }
            }
            match session.typed(line, &control) {
                // Readline has left raw mode: plain printing is safe here.
                Answer::Continue(lines) => print_lines(&lines),
                Answer::Quit => return Ok(()),
            }
            session.wait_for_receipt(HOLD_SENT_LINE, &control);
        }
    }
}

/// Lines typed at a terminal without the line editor (stdout is not a
/// terminal, or `TERM=dumb`): `/commands` work, an empty line sends
/// nothing, and what commands say goes to `err`. Ends at end of input,
/// `/quit`, or when the chat stops.
pub fn run_typed(
    lines: Receiver<io::Result<Line>>,
    mut session: Session,
    control: JobControl,
    mut err: Box<dyn Sink>,
) -> Result<(), Error> {
    let mut answer = |lines: &[String]| {
        err.write_lines(lines)
            .map_err(|source| Error::WriteOutput { source })
    };
    loop {
        let line = select! {
            recv(lines) -> line => match line {
                Ok(line) => line.map_err(|source| Error::ReadStdin { source })?,
                Err(_) => return Ok(()),
            },
            recv(control.interrupts()) -> _ => {
                answer(&[CTRL_C_HINT.to_string()])?;
                continue;
            }
            recv(control.stop_requests()) -> _ => return Ok(()),
        };
        let text = match &line.bytes {
            Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            None => {
                answer(&[format!(
                    "line {} not sent: {} B do not fit in one datagram ({MAX_PAYLOAD_V4} B over IPv4, {MAX_PAYLOAD} over IPv6)",
                    line.number, line.len
                )])?;
                continue;
            }
        };
        match session.typed(&text, &control) {
            Answer::Continue(lines) => answer(&lines)?,
            Answer::Quit => return Ok(()),
        }
        session.wait_for_receipt(HOLD_SENT_LINE, &control);
    }
}

/// Sends each line of a pipe as one message (line ending removed; an
/// empty line is an empty message; no `/commands`: a pipe carries data)
/// until end of input, then waits until every message has its final state.
/// A line too long for one datagram is reported (as a `line_skipped` event)
/// by its number and skipped, and the chat fails at the end; a line with
/// nowhere to go, or whose send fails, is said on `err` and fails the chat
/// at the end (a script must not read success from lines that never left).
/// While the most messages that may wait for receipts wait, the next line
/// waits for room.
pub fn run_piped(
    lines: Receiver<io::Result<Line>>,
    session: Session,
    control: JobControl,
    mut err: Box<dyn Sink>,
) -> Result<(), Error> {
    let messenger = session.messenger().clone();
    // In a group, the members present answer our first hello at once:
    // wait for them (at most one hello interval) before the first line.
    let first_hellos = messenger
        .hello_every()
        .min(std::time::Duration::from_secs(5));
    let settle = std::time::Duration::from_millis(200);
    if !messenger.wait_for_members(first_hellos, settle, control.stop_requests()) {
        return Ok(());
    }
    let mut unsent: u64 = 0;
    loop {
        let line = select! {
            recv(lines) -> line => match line {
                Ok(line) => line.map_err(|source| Error::ReadStdin { source })?,
                Err(_) => break,
            },
            recv(control.stop_requests()) -> _ => return Ok(()),
        };
        let peer = match session.peer() {
            Ok(peer) => peer,
            Err(_) => {
                err.write_lines(&[format!(
                    "line {} not sent: no peer (give --peer ADDR)",
                    line.number
                )])
                .map_err(|source| Error::WriteOutput { source })?;
                unsent += 1;
                continue;
            }
        };
        let number = line.number;
        let bytes = match line.payload_for(&peer) {
            Ok(bytes) => bytes,
            Err(skipped) => {
                let _ = session.outbox().emit(*skipped);
                continue;
            }
        };
        // As many messages wait for receipts as may: wait for room, as a
        // window does.
        while messenger.is_full() {
            if !control.wait_for(messenger.changes(), WAIT_BOUND) {
                return Ok(());
            }
        }
        match messenger.send(&bytes, peer) {
            Ok(_) => {}
            // It fits in a datagram but not with its envelope: skipped and
            // counted like a line too long for a datagram.
            Err(Error::MessageTooLarge { limit, .. }) => {
                let _ = session.outbox().emit(DgramEvent::LineSkipped {
                    line: number,
                    len: bytes.len() as u64,
                    limit,
                });
            }
            Err(e) => {
                err.write_lines(&[format!("line {number} not sent: {}", say(&e))])
                    .map_err(|source| Error::WriteOutput { source })?;
                unsent += 1;
            }
        }
    }
    // End of input: every message gets its final state before the chat
    // ends (bounded by the retry schedule), so that the exit status can
    // say whether all were delivered.
    while messenger.pending_count() > 0 {
        if !control.wait_for(messenger.changes(), WAIT_BOUND) {
            break;
        }
    }
    if unsent > 0 {
        return Err(Error::InputNotSent { count: unsent });
    }
    Ok(())
}

/// The longest a pipe's sender waits for word of a change (a receipt, a
/// failure) before it looks again anyway: a bound, not a poll; the driver
/// wakes it when something settles.
const WAIT_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// The lines of what the editor returned: a bracketed paste can hold
/// several, each ended by `\n` (or `\r\n`); an empty tail is no line.
fn split_lines(entered: &str) -> Vec<&str> {
    if entered.is_empty() {
        return vec![""];
    }
    let body = entered.strip_suffix('\n').unwrap_or(entered);
    body.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect()
}

/// The terminal rows an entry took: the prompt and the line, wrapped at
/// `columns` (as rustyline wraps them: a row filled exactly puts the
/// cursor on the next one), plus the row that Enter moved to.
fn entry_rows(prompt: &str, line: &str, columns: usize) -> usize {
    use unicode_width::UnicodeWidthChar;
    let columns = columns.max(1);
    let (mut row, mut col) = (0usize, 0usize);
    for c in prompt.chars().chain(line.chars()) {
        let width = c.width().unwrap_or(0);
        col += width;
        if col > columns {
            row += 1;
            col = width;
        }
    }
    if col == columns {
        row += 1;
    }
    row + 1
}

/// Moves the cursor up over the entry just made and clears from there
/// down (the editor is not reading, so nothing else is printing).
fn erase_entry(prompt: &str, line: &str, columns: usize) {
    let rows = entry_rows(prompt, line, columns);
    let mut out = io::stdout().lock();
    let _ = write!(out, "\x1b[{rows}A\r\x1b[J");
    let _ = out.flush();
}

/// Prints lines while the editor is not reading. A terminal that cannot be
/// written is not worth ending the chat for.
fn print_lines(lines: &[String]) {
    let mut out = io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::{entry_rows, recount, split_lines};

    /// The prompt's count is rewritten at the same width; a prompt without
    /// one is left alone.
    #[test]
    fn prompt_counts_are_rewritten_in_place() {
        assert_eq!(
            recount("bob (127.0.0.1:9) [2 waiting]> ", 1).as_deref(),
            Some("bob (127.0.0.1:9) [1 waiting]> ")
        );
        assert_eq!(
            recount("[a] [12 waiting]> ", 0).as_deref(),
            Some("[a] [ 0 waiting]> ")
        );
        assert_eq!(recount("bob (127.0.0.1:9)> ", 0), None);
    }

    /// An entry takes the rows its prompt and text wrap to, plus the row
    /// Enter moved to; a row filled exactly wraps, as rustyline does it.
    #[test]
    fn entries_take_the_rows_they_wrap_to() {
        assert_eq!(entry_rows("> ", "hi", 80), 1);
        assert_eq!(entry_rows("> ", &"x".repeat(78), 80), 2);
        assert_eq!(entry_rows("> ", &"x".repeat(77), 80), 1);
        assert_eq!(entry_rows("> ", &"x".repeat(79), 80), 2);
        assert_eq!(entry_rows("> ", &"x".repeat(200), 80), 3);
        // Wide characters take two columns each.
        assert_eq!(entry_rows("> ", &"你".repeat(40), 80), 2);
    }

    /// One typed line is one line; a paste of several is several, with
    /// `\r\n` endings removed.
    #[test]
    fn pastes_split_into_lines() {
        assert_eq!(split_lines(""), [""]);
        assert_eq!(split_lines("hello"), ["hello"]);
        assert_eq!(split_lines("a\nb\nc"), ["a", "b", "c"]);
        assert_eq!(split_lines("a\r\nb\r\n"), ["a", "b"]);
        assert_eq!(split_lines("a\n\nb"), ["a", "", "b"]);
    }
}
