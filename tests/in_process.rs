//! The commands run in-process, side by side, with output and shutdown as
//! parameters (as `dgram lab` will run them): no signal handler, no stdout.

use std::io::Cursor;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use dgram::cmd::chat::{self, ChatIo, ChatOptions};
use dgram::cmd::listen::{self, ListenOptions};
use dgram::cmd::send::{self, Payloads, SendOptions};
use dgram::net::SocketOptions;
use dgram::output::Format;
use dgram::output::sink::MemorySink;
use dgram::proto::{ChatConfig, Eol};
use dgram::proto::{RtoConfig, SessionId};
use dgram::runtime::{Shutdown, Signal};

use crate::util::{any_local_addr, wait_for};

fn socket(bind: SocketAddr) -> SocketOptions {
    SocketOptions {
        bind,
        rcvbuf: None,
        sndbuf: None,
    }
}

/// Starts `listen --json --echo` on a thread with a memory sink and a
/// manual shutdown; returns its address, its output and what stops it.
fn start_listener() -> (
    SocketAddr,
    MemorySink,
    dgram::runtime::Trigger,
    thread::JoinHandle<dgram::model::Summary>,
) {
    let out = MemorySink::new();
    let (trigger, shutdown) = Shutdown::manual();
    let options = ListenOptions {
        socket: socket(any_local_addr()),
        max_size: 65535,
        format: Format::Json,
        count: None,
        echo: Some(0),
        raw: false,
        coalesce: None,
        group: None,
        key: None,
        busy_poll: false,
        pcap: None,
    };
    let mut sink = out.clone();
    let listening = thread::spawn(move || listen::run(&options, &shutdown, &mut sink).unwrap());
    let addr = wait_for(
        "the listening event",
        || format!("{:?}", out.lines()),
        || {
            let first = out.lines().into_iter().next()?;
            let event: serde_json::Value = serde_json::from_str(&first).ok()?;
            event["local"].as_str()?.parse::<SocketAddr>().ok()
        },
    );
    (addr, out, trigger, listening)
}

/// `listen --echo` and `send` run in one process: send's datagram arrives
/// and its echo comes back; a manual Terminate ends the listener with its
/// summary. Nothing is written to the process's stdout.
#[test]
fn listen_and_send_run_side_by_side() {
    let (addr, listen_out, trigger, listening) = start_listener();

    let mut send_out = MemorySink::new();
    let mut send_err = MemorySink::new();
    let stats = send::run(
        SendOptions {
            socket: socket(any_local_addr()),
            to: addr,
            payloads: Payloads::Fixed(b"in-process".to_vec()),
            count: 2,
            rate: None,
            wait: Duration::from_millis(2000),
            max_size: 65535,
            format: Format::Human,
            pcap: None,
        },
        &Shutdown::never(),
        &mut send_out,
        &mut send_err,
    )
    .unwrap();
    assert_eq!(stats.summary.sent, 2);
    assert_eq!(stats.summary.received, 2, "both echoes came back");
    let replies = send_out.lines();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies.iter().all(|l| l.ends_with("10 B  \"in-process\"")),
        "{replies:?}"
    );
    let err = send_err.lines();
    assert!(err[0].starts_with("sent 2 datagrams (20 B) to "), "{err:?}");

    trigger.send(Signal::Terminate);
    let summary = listening.join().unwrap();
    assert_eq!((summary.received, summary.sent), (2, 2));
    let last = listen_out.lines().pop().unwrap();
    assert!(last.starts_with("{\"event\":\"summary\""), "{last}");
}

/// A chat runs in-process with given streams: typed lines (commands work,
/// an empty line sends nothing) go to the listener, command answers go to
/// the error stream, `/quit` ends it.
#[test]
fn chat_runs_with_given_streams() {
    let (addr, listen_out, trigger, listening) = start_listener();
    let out = MemorySink::new();
    let err = MemorySink::new();
    let options = ChatOptions {
        socket: socket(any_local_addr()),
        peer: Some(addr),
        max_size: 65535,
        format: Format::Human,
        history: None,
        linger: Duration::ZERO,
        protocol: ChatConfig {
            session: SessionId([7, 1, 2, 3, 4, 5, 6, 8]),
            name: "tester".to_string(),
            rto: RtoConfig::default(),
            eol: Eol::None,
            raw: false,
            ..ChatConfig::receiver(SessionId([0; 8]))
        },
        plain_peer: false,
        code: None,
        log: None,
        group: None,
        via: None,
        passive: false,
        pcap: None,
    };
    let input = Cursor::new(b"hello\n\n/stats\n/quit\nnever sent\n".to_vec());
    let summary = chat::run(
        &options,
        &Shutdown::never(),
        ChatIo::Streams {
            input: Box::new(input),
            typed: true,
            out: Box::new(out.clone()),
            err: Box::new(err.clone()),
        },
    )
    .unwrap();
    assert_eq!(summary.sent, 1);
    assert_eq!(
        (summary.messages_sent, summary.delivered),
        (1, 1),
        "the listener acknowledged the message"
    );
    let answers = err.lines();
    assert!(
        answers.iter().any(|l| l.starts_with("stats: ")),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|l| l.contains("an empty line sends nothing")),
        "{answers:?}"
    );
    assert!(
        out.lines().iter().any(|l| l.starts_with("chat on ")),
        "{:?}",
        out.lines()
    );

    wait_for(
        "the listener to show the message",
        || format!("{:?}", listen_out.lines()),
        || {
            listen_out
                .lines()
                .iter()
                .any(|l| l.contains("\"event\":\"message\"") && l.contains("\"text\":\"hello\""))
                .then_some(())
        },
    );
    trigger.send(Signal::Terminate);
    let summary = listening.join().unwrap();
    assert_eq!(summary.received, 1, "{:?}", listen_out.lines());
    assert_eq!(summary.inbound.messages, 1, "{:?}", listen_out.lines());
}
