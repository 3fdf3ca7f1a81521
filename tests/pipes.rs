//! Output whose reader has gone away (`dgram … | head -n 1`): every
//! command ends quietly with status 0, as other Unix tools do.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;

use dgram::cmd::listen::{self, ListenOptions};
use dgram::net::SocketOptions;
use dgram::output::{Format, Sink};
use dgram::runtime::Shutdown;

use crate::util::{any_local_addr, into_head, listener, wait_for};

/// Each command that writes as it goes (ping and lab, in text and JSON,
/// and bench) exits 0 without a word on stderr once `head` has taken its
/// line and gone: the closed pipe is the end of the command, not an error.
/// (Text ping writes its summary after 1000 probes, long after `head` has
/// gone; JSON ping a line per reply, more than a pipe holds.)
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "0"]);
    let addr = addr.to_string();
    let commands: [&[&str]; 6] = [
        &["ping", &addr, "-c", "1000", "-i", "0"],
        &["ping", &addr, "-c", "1000", "-i", "0", "--json"],
        &["lab"],
        &["lab", "--json"],
        &["bench", "--loopback", "--json", "-t", "1.5"],
        &["completions", "bash"],
    ];
    for args in commands {
        let mut proc = into_head(args, 1);
        let status = proc.finish();
        assert!(
            status.success() && proc.stderr().is_empty(),
            "{}",
            proc.dump()
        );
        assert_eq!(proc.stdout().lines().count(), 1, "{}", proc.dump());
    }
    echo.kill();
}

/// `dgram listen --json | head -n 1`: once head has the `listening` line
/// (the only one before a datagram) and has gone, listen sees the closed
/// pipe while it waits and exits 0, without a datagram to write first.
#[test]
fn listen_sees_a_closed_pipe_while_idle() {
    let mut proc = into_head(&["listen", "127.0.0.1:0", "--json"], 1);
    wait_for(
        "the first line",
        || proc.dump(),
        || proc.stdout().contains('\n').then_some(()),
    );
    let status = proc.finish();
    assert!(
        status.success() && proc.stderr().is_empty(),
        "{}",
        proc.dump()
    );
}

/// A sink that takes `open` writes, then fails as a closed pipe does.
struct ClosesAfter {
    open: usize,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sink for ClosesAfter {
    fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        if self.open == 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.open -= 1;
        self.lines.lock().unwrap().extend_from_slice(lines);
        Ok(())
    }
}

/// In-process, with output that cannot tell its reader has gone until it
/// is written: the first datagram's line meets the closed pipe, and listen
/// ends there (status 0 in the command), not at the next datagram.
#[test]
fn listen_ends_at_the_first_write_after_the_reader_goes() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut sink = ClosesAfter {
        open: 1,
        lines: Arc::clone(&lines),
    };
    let (_trigger, shutdown) = Shutdown::manual();
    let options = ListenOptions {
        socket: SocketOptions {
            bind: any_local_addr(),
            rcvbuf: None,
            sndbuf: None,
        },
        max_size: 65535,
        format: Format::Json,
        count: None,
        echo: None,
        raw: true,
        coalesce: None,
        group: None,
        key: None,
        busy_poll: false,
        pcap: None,
    };
    let listening = thread::spawn(move || listen::run(&options, &shutdown, &mut sink));
    let addr: SocketAddr = wait_for(
        "the listening event",
        || format!("{:?}", lines.lock().unwrap()),
        || {
            let first = lines.lock().unwrap().first()?.clone();
            let event: serde_json::Value = serde_json::from_str(&first).ok()?;
            event["local"].as_str()?.parse().ok()
        },
    );
    let peer = UdpSocket::bind(any_local_addr()).unwrap();
    peer.send_to(b"one", addr).unwrap();
    wait_for(
        "listen to end after one datagram",
        || format!("{:?}", lines.lock().unwrap()),
        || listening.is_finished().then_some(()),
    );
    let summary = listening.join().unwrap().unwrap();
    assert_eq!(summary.received, 1);
}
