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

/// `dgram man` prints a roff manual page naming dgram and its commands.
#[test]
fn man_page_is_roff() {
    let proc = run(&["man"]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    let page = proc.stdout();
    assert!(page.contains(".TH dgram 1"), "{page}");
    for word in ["listen", "send", "chat", "completions"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
}
