//! Ctrl-C and SIGTERM end commands cleanly: what was done is said first.

use nix::sys::signal::Signal;

use crate::util::{Proc, listener};

/// Ctrl-C (SIGINT) during `dgram send`'s wait for replies prints the
/// "sent …" line, then exits 130.
#[test]
fn ctrl_c_during_send_says_what_was_sent() {
    let (mut listen, addr) = listener(&[]);
    let mut send = Proc::dgram(&["send", &addr.to_string(), "hi", "--wait", "10000"]);
    // Sent: now it is waiting for replies.
    assert_eq!(listen.next("datagram")["text"], "hi");
    send.signal(Signal::SIGINT);
    assert_eq!(send.finish().code(), Some(130), "{}", send.dump());
    let stderr = send.stderr();
    assert!(
        stderr.contains(&format!("sent 1 datagram (2 B) to {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("(interrupted)"), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
}

/// SIGTERM during `dgram send --json` still ends with the summary event,
/// and exits 143.
#[test]
fn sigterm_during_send_ends_with_the_summary() {
    let (mut listen, addr) = listener(&[]);
    let mut send = Proc::dgram(&["send", &addr.to_string(), "hi", "--wait", "10000", "--json"]);
    assert_eq!(listen.next("datagram")["text"], "hi");
    send.next("sent");
    send.signal(Signal::SIGTERM);
    assert_eq!(send.finish().code(), Some(143), "{}", send.dump());
    assert_eq!(send.first_event("summary")["sent"], 1);
}

/// Ctrl-C ends `dgram listen` with its summary and status 0: it is how a
/// listener is meant to end.
#[test]
fn ctrl_c_ends_listen_with_its_summary() {
    let (mut listen, _) = listener(&[]);
    listen.signal(Signal::SIGINT);
    listen.next("summary");
    assert!(listen.finish().success(), "{}", listen.dump());
}
