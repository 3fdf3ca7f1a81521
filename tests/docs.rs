//! The conventions users expect: shell completions and a manual page; and
//! the documentation, whose examples are the program's real output.

use std::process::Command;
use std::time::Duration;

use crate::util::{Proc, dgram_path, run};

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

/// Every example in README.md and docs/*.md is what its script in
/// docs/examples prints with this build (volatile parts masked, as
/// `scripts/docs-examples` documents), every block that shows dgram's
/// output is such an example, and every `dgram ...` command line in the
/// other blocks names a subcommand and options that this build accepts. A
/// changed message, a renamed option or a new line of output fails here
/// with the diff; `scripts/docs-examples` (without `--check`) rewrites the
/// pages.
#[test]
fn documentation_examples_are_the_programs_output() {
    let mut command = Command::new("python3");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/docs-examples"
        ))
        .arg("--check")
        .env("DGRAM_UNDER_TEST", dgram_path());
    let mut proc = Proc::start(command);
    let status = proc.finish_within(Duration::from_secs(120));
    assert!(status.success(), "{}", proc.dump());
}
