//! The input side of `dgram chat`: a rustyline editor on a terminal (with
//! history and tab completion), or plain lines from a pipe.

use std::io;
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, Pair};
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use crate::Error;
use crate::command::{self, Input};
use crate::datagram::for_each_line;
use crate::session::{Outcome, Session};

/// The line editor dgram chat uses.
pub type ChatEditor = Editor<ChatHelper, FileHistory>;

/// Completes `/commands` on Tab.
#[derive(Debug, Default, Helper, Hinter, Highlighter, Validator)]
pub struct ChatHelper;

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

/// Where history lives unless `--history` says otherwise:
/// `<data dir>/dgram/history` (`~/.local/share/dgram/history` on Linux).
pub fn default_history() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("dgram").join("history"))
}

/// Makes the editor and loads the history file (a missing file is a first
/// run, not an error).
pub fn editor(history: Option<&Path>) -> Result<ChatEditor, Error> {
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)
        .map_err(|source| Error::Terminal { source })?
        .build();
    let mut editor =
        ChatEditor::with_config(config).map_err(|source| Error::Terminal { source })?;
    editor.set_helper(Some(ChatHelper));
    if let Some(path) = history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if path.exists() {
            editor
                .load_history(path)
                .map_err(|source| Error::LoadHistory {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
    }
    Ok(editor)
}

/// Reads lines on a terminal until `/quit` or Ctrl-D on an empty line.
/// Ctrl-C clears the line being typed. Every line is appended to the
/// history file as soon as it is entered, so the history survives however
/// the chat ends (SIGTERM included).
pub fn run_terminal(
    mut editor: ChatEditor,
    mut session: Session,
    history: Option<PathBuf>,
) -> Result<(), Error> {
    let mut history_failed = false;
    loop {
        let line = match editor.readline(&session.prompt()) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(()),
            Err(source) => return Err(Error::Terminal { source }),
        };
        if !line.is_empty() {
            let _ = editor.add_history_entry(line.as_str());
            if let Some(path) = &history
                && let Err(e) = editor.append_history(path)
                && !history_failed
            {
                history_failed = true;
                println!("!! history not saved to {}: {e}", path.display());
            }
        }
        let lines = match command::parse(&line) {
            Ok(Input::Message(payload)) => session.send(&payload).err().into_iter().collect(),
            Ok(Input::Command(command)) => match session.execute(command) {
                Outcome::Continue(lines) => lines,
                Outcome::Quit => return Ok(()),
            },
            Err(message) => vec![message],
        };
        // Readline has left raw mode: plain printing is safe here.
        for line in lines {
            println!("{line}");
        }
    }
}

/// Sends each line of standard input as one datagram (newline removed; an
/// empty line is an empty datagram; no `/commands`: a pipe carries data)
/// until end of input. A line that cannot be sent is reported on stderr and
/// skipped.
pub fn run_piped(session: Session) -> Result<(), Error> {
    let send = |line: &[u8]| {
        if let Err(message) = session.send(line) {
            eprintln!("{message}");
        }
        Ok(())
    };
    for_each_line(io::stdin().lock(), send, |source| Error::ReadStdin {
        source,
    })
}
