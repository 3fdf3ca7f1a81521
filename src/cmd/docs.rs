//! `dgram completions SHELL` and `dgram man`: the shell completion script
//! and one manual page that holds every command, its options, the chat
//! commands and the exit statuses.

use std::io::{self, Write};

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use super::chat::command::COMMANDS;
use crate::Error;

/// `dgram completions SHELL`: the script for `shell` on stdout.
pub fn print_completions(shell: clap_complete::Shell, cli: Command) -> Result<(), Error> {
    write_stdout(&completions(shell, cli))
}

/// `dgram man`: the manual page on stdout.
pub fn print_man_page(cli: Command) -> Result<(), Error> {
    write_stdout(&man_page(cli))
}

/// Writes generated text to stdout (a closed pipe is a quiet end, in
/// [`crate::cli::main`]).
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| Error::WriteOutput { source })
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, mut cli: Command) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "dgram", &mut script);
    script
}

/// The manual page (roff), from the command line's own definitions.
pub fn man_page(mut cli: Command) -> Vec<u8> {
    cli.build();
    let man = Man::new(cli.clone());
    let mut page = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    let _ = man.render_synopsis_section(&mut page);
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]).text([roman(
        "dgram sends and receives UDP datagrams and shows what UDP does: each datagram is one \
         message, shown with its sender and length; empty datagrams are messages too; a \
         datagram longer than the receive buffer is marked truncated; datagrams the kernel \
         dropped because SO_RCVBUF was full are counted; a peer whose port is closed is \
         reported, and never ends dgram. Received text is quoted and escaped, so nothing a peer \
         sends can drive the terminal; mostly-binary payloads are shown as hex.",
    )]);
    roff.control("SH", ["COMMANDS"]);
    roff.to_writer(&mut page).ok();

    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_string();
        let mut heading = Roff::new();
        heading.control("SS", [name.as_str()]);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            heading.text([roman(about.to_string())]).control("PP", []);
        }
        heading.to_writer(&mut page).ok();
        let sub_man = Man::new(sub.clone());
        page.extend(without_heading(&sub_man, Man::render_synopsis_section));
        page.extend_from_slice(b".PP\n");
        page.extend(without_heading(&sub_man, Man::render_options_section));
    }

    let mut roff = Roff::new();
    roff.control("SH", ["CHAT COMMANDS"]).text([roman(
        "At the chat prompt, a line that starts with / is a command; anything else is a \
         message: one datagram, in an envelope with a receipt to a dgram peer, plain to a \
         plain peer (see PROTOCOL). An empty line sends nothing; //text sends /text. \
         Ctrl-C clears the line, or stops a /burst; Ctrl-D on an empty line leaves.",
    )]);
    for (command, params, what) in COMMANDS {
        roff.control("TP", [])
            .text([bold(*command), italic(*params)])
            .text([roman(*what)]);
    }
    roff.control("SH", ["PROTOCOL"]);
    for paragraph in PROTOCOL {
        roff.text([roman(*paragraph)]).control("PP", []);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (status, what) in EXIT_STATUSES {
        roff.control("TP", [])
            .text([bold(*status)])
            .text([roman(*what)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (example, what) in [
        (
            "dgram listen 127.0.0.1:9000",
            "show every datagram sent to port 9000, until Ctrl-C",
        ),
        ("dgram listen 127.0.0.1:9000 --echo", "an echo server"),
        (
            "dgram ping 127.0.0.1:9000 --count 1000 --interval 0",
            "1000 round trips to an echo server, as fast as replies come: loss, percentiles, a histogram",
        ),
        (
            "dgram send 127.0.0.1:9000 hello",
            "one datagram, then 250 ms of listening for replies",
        ),
        (
            "printf 'a\\n\\nb\\n' | dgram send 127.0.0.1:9000",
            "three datagrams, the middle one empty",
        ),
        (
            "dgram chat --peer 127.0.0.1:9001",
            "chat with whoever listens there",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(example)])
            .text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"])
        .text([roman("nc(1), socat(1), ip(8), udp(7), socket(7)")]);
    roff.to_writer(&mut page).ok();
    page
}

/// Every exit status and what it means: the manual page's EXIT STATUS
/// section, which `docs/exit-status.md` shows (its example script reads it
/// from `dgram man`, so the two cannot differ).
const EXIT_STATUSES: &[(&str, &str)] = &[
    (
        "0",
        "success. listen, chat and rendezvous also end this way on Ctrl-C or SIGTERM, and every \
         command does when the reader of its output has gone away (dgram listen | head -3): \
         listen notices within 0.1 s even while no datagram comes",
    ),
    (
        "1",
        "a runtime error: port in use, peer unreachable, lines not sent, a piped chat's message \
         not delivered (in a group: not to every member), a ping without a single reply, a bench \
         with no server at ADDR, a chat --via that found no path, an mtu search that got no answer, output that cannot be \
         written",
    ),
    (
        "2",
        "a usage error: bad address, size or flag, a payload over the limit, a peer of the other \
         address family, a bad group option, a missing or malformed key file, a short code that \
         does not parse, a --log, --report or --chart file that is not a regular file",
    ),
    (
        "130, 143, 129",
        "send and mtu cut short by Ctrl-C, SIGTERM or SIGHUP; and a chat --via still waiting at \
         the rendezvous, cut short by Ctrl-C (130)",
    ),
];

/// What a user needs of the chat protocol, for the manual page (the byte
/// by byte specification, with worked examples, is `docs/PROTOCOL.md` in
/// the source, which is not installed with the binary).
const PROTOCOL: &[&str] = &[
    "A chat message travels in an envelope: a datagram whose first byte is 0xF5 (which \
     never begins UTF-8 text, so text from nc, socat or Python is never taken for one), a \
     version (1), a kind (1 message, 2 receipt, 3 hello, 4 bye, 5 sealed), then the \
     sender's session (8 random bytes, new each run), the message's number, which try it \
     is, the sender's name and the text. Anything else is a plain datagram, shown as it is.",
    "A dgram peer acknowledges every copy of a message with a receipt naming its number \
     and try; the sender tries again (RFC 6298 timers, --retries, --rto-min) until a receipt \
     comes or its tries run out, and reports each message delivered (with its round trip), \
     failed, or late (a receipt after the failure). A receiver shows each message once and \
     reports numbers skipped (missing; lost if they never come); numbers before the first \
     one heard from a sender are not missing.",
    "A peer is known by its session: when the same session is heard from another address \
     (a NAT's new mapping), its messages are shown as its own. A keyed chat follows the \
     move once the new address answers a challenge, and says so; a chat without keys does \
     not (anyone could forge a move) and says that. A new session at a known address is \
     the peer restarted.",
    "A peer that has only ever sent plain datagrams (nc, socat) is a plain peer: messages \
     to it go as the bytes typed (--eol adds a line ending), without receipts. /plain and \
     /dgram choose for a peer; --plain chooses for the first.",
    "In a group (--group, --broadcast) members say hello every few seconds (--hello) and \
     bye on leaving; a member not heard for 3.5 hellos has left. A newcomer becomes a \
     member only once it proves it receives at its address: the others answer its hello \
     with a token, directly, and it sends the token back. A message to the group is one \
     datagram; each member acknowledges it, and only members that have not are sent it \
     again.",
    "With --key-file (a 256-bit key from dgram keygen, shared by both sides) or --code (a \
     short code said to the other person) a chat with a peer first runs a handshake (Noise \
     NNpsk0 with the key file as its pre-shared key, or SPAKE2 on the code and then Noise): \
     its keys are new for every run and one per direction, so a key file stolen later opens \
     nothing recorded, and a code gets one guess per run. Lines typed before it completes \
     wait; /verify shows words that match on both screens unless someone sits in between. \
     Whatever cannot be authenticated, is a replay, or was sent by this side itself is \
     refused, counted by reason and never answered. A group with --key-file seals with the \
     key itself (a room key: no forward secrecy yet).",
    "dgram never answers a datagram with more bytes than it had: an echo is the datagram, \
     a receipt is smaller than its message, a hello is answered by at most as long a hello.",
];

/// A section rendered by clap_mangen, without its `.SH` heading line (the
/// commands' synopses and options go under their own subsection).
fn without_heading(
    man: &Man,
    render: fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> Vec<u8> {
    let mut section = Vec::new();
    let _ = render(man, &mut section);
    let text = String::from_utf8_lossy(&section);
    text.lines()
        .filter(|line| !line.starts_with(".SH "))
        .flat_map(|line| [line, "\n"])
        .collect::<String>()
        .into_bytes()
}
