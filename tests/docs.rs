//! The conventions users expect: shell completions and a manual page; and
//! the documentation, whose examples are the program's real output.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use crate::util::{Proc, dgram_path, has, run};

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
/// pages. The pages show the Linux build: the portable build (no ICMP
/// errors, no drop counts, no true lengths: docs/platforms.md) gets every
/// check but the examples' output.
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
    if !has("icmp_errors") {
        command.arg("--no-run");
    }
    let mut proc = Proc::start(command);
    let status = proc.finish_within(Duration::from_secs(120));
    assert!(status.success(), "{}", proc.dump());
}

/// The catalogue in docs/json.md (the block after `<!-- golden:
/// src/output/json.rs -->`) holds only lines that the golden tests of
/// `src/output/json.rs` expect byte for byte from the serializer, and
/// shows every event kind those tests pin: a renamed field or a new kind
/// that the page does not show fails here.
#[test]
fn json_page_shows_the_serializers_golden_lines() {
    let root = env!("CARGO_MANIFEST_DIR");
    let source = std::fs::read_to_string(format!("{root}/src/output/json.rs")).unwrap();
    let golden: Vec<&str> = source
        .split("r#\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("\"#").map(|(line, _)| line))
        .filter(|line| line.starts_with("{\"event\":") && line.ends_with('}'))
        .collect();
    assert!(golden.len() > 20, "golden lines not found: {golden:?}");
    let page = std::fs::read_to_string(format!("{root}/docs/json.md")).unwrap();
    let (_, after) = page
        .split_once("<!-- golden: src/output/json.rs -->\n")
        .expect("docs/json.md has no golden block");
    let block: Vec<&str> = after
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .collect();
    let kind = |line: &str| {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        value["event"].as_str().unwrap().to_string()
    };
    for line in &block {
        assert!(
            golden.contains(line),
            "docs/json.md shows a line no golden test expects: {line}"
        );
    }
    let shown: HashSet<String> = block.iter().map(|line| kind(line)).collect();
    for line in &golden {
        assert!(
            shown.contains(&kind(line)),
            "docs/json.md does not show the event {}: {line}",
            kind(line)
        );
    }
}
