//! The chat's terminal: which input mode the standard streams allow, and
//! the terminal settings to put back when a signal ends the chat while the
//! line editor has the terminal in raw mode.

use std::io::{self, IsTerminal};

/// How the chat reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// stdin and stdout are terminals and `TERM` is not `dumb`: rustyline,
    /// with what arrives printed above the prompt.
    Editor,
    /// stdin is a terminal, but stdout is not (or `TERM=dumb`): plain lines,
    /// `/commands` still work. (rustyline's external printer needs both
    /// streams to be terminals, and with stdout piped it would still write
    /// escape sequences.)
    Typed,
    /// stdin is not a terminal: every line is one datagram, nothing else.
    Piped,
}

impl Mode {
    /// The mode the process's standard streams allow.
    pub fn detect() -> Mode {
        if !io::stdin().is_terminal() {
            return Mode::Piped;
        }
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        if io::stdout().is_terminal() && !dumb {
            Mode::Editor
        } else {
            Mode::Typed
        }
    }
}

/// The terminal's settings, saved before the line editor switches it to raw
/// mode, so that a chat ended by a signal (while the editor is still
/// reading) can put the terminal back as it found it.
#[derive(Debug)]
pub struct TerminalState {
    #[cfg(unix)]
    saved: nix::sys::termios::Termios,
}

impl TerminalState {
    /// Saves the settings of the terminal on standard input.
    #[cfg(unix)]
    pub fn save() -> Option<TerminalState> {
        nix::sys::termios::tcgetattr(io::stdin())
            .ok()
            .map(|saved| TerminalState { saved })
    }

    /// Restores the saved settings, and turns off bracketed paste, which
    /// the line editor turns on.
    #[cfg(unix)]
    pub fn restore(&self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        use std::io::Write;
        let _ = tcsetattr(io::stdin(), SetArg::TCSADRAIN, &self.saved);
        let mut out = io::stdout();
        let _ = out.write_all(b"\x1b[?2004l\r\n");
        let _ = out.flush();
    }

    /// Nothing to save on this platform.
    #[cfg(not(unix))]
    pub fn save() -> Option<TerminalState> {
        None
    }

    /// Nothing to restore on this platform.
    #[cfg(not(unix))]
    pub fn restore(&self) {}
}
