//! The conventions users expect: shell completions and a manual page.

use crate::util::run;

/// `dgram completions bash` prints a completion script that knows the
/// subcommands and their options.
#[test]
fn completions_know_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let proc = run(&["completions", shell]);
        assert!(proc.finish_ok(), "{}", proc.dump());
        let script = proc.stdout();
        for word in ["listen", "send", "chat", "rcvbuf", "echo-rate"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}

/// `dgram man` prints one roff manual page holding every command with its
/// options, the chat commands, what a user needs of the protocol (the
/// specification in the source is not installed, so the page does not
/// send readers there for it) and the exit statuses.
#[test]
fn man_page_is_whole() {
    let proc = run(&["man"]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    let page = proc.stdout();
    assert!(page.contains(".TH dgram 1"), "{page}");
    for word in [
        ".SS \"dgram listen\"",
        ".SS \"dgram send\"",
        ".SS \"dgram chat\"",
        "echo\\-rate",
        "max\\-size",
        "CHAT COMMANDS",
        "/burst",
        "EXIT STATUS",
        "130",
        ".SH PROTOCOL",
        "0xF5",
        "receipt",
        "proves it receives at its address",
    ] {
        assert!(page.contains(word), "man page lacks {word}:\n{page}");
    }
    assert!(
        !page.contains("see docs/PROTOCOL.md"),
        "the page points to a file that is not installed:\n{page}"
    );
}
