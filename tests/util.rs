//! The test harness: run the real `dgram` executable (and real peers such as
//! `nc`, `socat` and `python3`), wait for what they print with a deadline,
//! and on any failure dump the command, its status, stdout and stderr.

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};

/// How long any wait in a test may take before the test fails. Generous:
/// everything here happens on loopback in milliseconds; the bound only
/// turns a hang into a failure with a dump.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(5);

/// The dgram executable under test: the one cargo built, or the one
/// `DGRAM_UNDER_TEST` names (to run this suite against another build, such
/// as an older commit's, and see which tests it fails).
pub fn dgram_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var("DGRAM_UNDER_TEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dgram").to_string())
    })
}

/// A loopback address with a port the system chose: the way every test
/// gets an address (never a fixed port).
pub fn any_local_addr() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A UDP port on 127.0.0.1 that nothing listens on: bound to port 0, read
/// back, and closed again.
pub fn closed_port() -> SocketAddr {
    UdpSocket::bind(any_local_addr())
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until `check` returns `Some`, or panics after [`DEADLINE`] with
/// `what` and `dump()`.
pub fn wait_for<T>(
    what: &str,
    dump: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() > DEADLINE {
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}\n{}",
                dump()
            );
        }
        thread::sleep(POLL);
    }
}

/// A running program with its output collected in the background.
pub struct Proc {
    command: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// How many complete stdout lines have been handed out as events.
    events_read: usize,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `dgram ARGS…` with stdin, stdout and stderr piped.
    pub fn dgram(args: &[&str]) -> Proc {
        Proc::spawn(dgram_path(), args)
    }

    /// Starts any program with stdin, stdout and stderr piped.
    pub fn spawn(program: &str, args: &[&str]) -> Proc {
        let mut command = Command::new(program);
        command.args(args);
        Proc::start(command)
    }

    /// Starts a prepared command with stdin, stdout and stderr piped.
    pub fn start(mut prepared: Command) -> Proc {
        let command = format!(
            "{} {}",
            prepared.get_program().to_string_lossy(),
            prepared
                .get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut child = prepared
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Proc {
            command,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            events_read: 0,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends a signal (SIGSTOP, SIGCONT, SIGTERM, …).
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap_or_else(|e| panic!("kill {signal}: {e}\n{}", self.dump()));
    }

    /// Writes raw bytes to the program's stdin.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes one line to the program's stdin.
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the program's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `text`.
    pub fn wait_stdout_contains(&self, text: &str) {
        wait_for(
            &format!("{text:?} on stdout"),
            || self.dump(),
            || self.stdout().contains(text).then_some(()),
        );
    }

    /// Waits for the next JSON event on stdout (any kind) and returns it.
    pub fn next_event(&mut self) -> Value {
        let line = wait_for(
            "a JSON event",
            || self.dump(),
            || {
                let out = self.stdout();
                let complete: Vec<&str> = out
                    .split_inclusive('\n')
                    .filter(|l| l.ends_with('\n'))
                    .collect();
                complete
                    .get(self.events_read)
                    .map(|l| l.trim_end().to_string())
            },
        );
        self.events_read += 1;
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", self.dump()))
    }

    /// Waits for the next event named `name`, skipping others, and returns
    /// it.
    pub fn next(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_event();
            if event["event"] == name {
                return event;
            }
        }
    }

    /// Waits for the next event and checks it is named `name`.
    pub fn expect(&mut self, name: &str) -> Value {
        let event = self.next_event();
        assert_eq!(
            event["event"],
            name,
            "unexpected event {event}\n{}",
            self.dump()
        );
        event
    }

    /// Waits for the program to exit and returns its status.
    pub fn finish(&mut self) -> ExitStatus {
        self.finish_within(DEADLINE)
    }

    /// Waits at most `limit` for the program to exit: its status, or
    /// `None` when it did not exit in time (it is killed then).
    pub fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while self.status.is_none() && self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            thread::sleep(POLL);
        }
        Some(self.finish())
    }

    /// Waits at most `limit` for the program to exit and returns its
    /// status.
    pub fn finish_within(&mut self, limit: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for exit\n{}",
                    self.dump()
                );
            }
            thread::sleep(POLL);
        };
        // The collectors end when the pipes close; give them the chance.
        self.status = Some(status);
        wait_for(
            "output pipes to close",
            || self.dump(),
            || {
                (Arc::strong_count(&self.stdout) == 1 && Arc::strong_count(&self.stderr) == 1)
                    .then_some(())
            },
        );
        status
    }

    /// True when the program has exited with status 0.
    pub fn finish_ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit code of a program that has exited.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// All JSON events printed so far named `name`.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["event"] == name)
            .collect()
    }

    /// The first JSON event printed so far named `name`.
    pub fn first_event(&self, name: &str) -> Value {
        self.events(name)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {name} event\n{}", self.dump()))
    }

    /// Kills the program (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The command, its status, stdout and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- command: {}\n--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.command,
            self.status,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            // A test that panicked leaves no process behind.
            let _ = kill(self.pid(), Signal::SIGCONT);
            self.kill();
        }
    }
}

/// Copies a pipe into a shared buffer on a background thread; the thread
/// (and its clone of the Arc) ends when the pipe closes.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    thread::spawn(move || {
        let mut chunk = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buffer
}

/// Starts `dgram ARGS…` with its stdout read as `head -n LINES` reads it:
/// the first `lines` lines are kept (as the program's stdout), then the
/// pipe is closed while the program runs on. Stdin is closed.
pub fn into_head(args: &[&str], lines: usize) -> Proc {
    let mut command = Command::new(dgram_path());
    command.args(args);
    let shown = format!("{} {} | head -n {lines}", dgram_path(), args.join(" "));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut pipe = child.stdout.take().unwrap();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&stdout);
    thread::spawn(move || {
        // One byte at a time, so that nothing past the last line is read.
        let mut byte = [0u8; 1];
        let mut seen = 0;
        while seen < lines && matches!(pipe.read(&mut byte), Ok(1)) {
            kept.lock().unwrap().push(byte[0]);
            if byte[0] == b'\n' {
                seen += 1;
            }
        }
        // `pipe` is dropped here: the reader has gone.
    });
    let stderr = collect(child.stderr.take().unwrap());
    Proc {
        command: shown,
        stdin: None,
        child,
        stdout,
        stderr,
        events_read: 0,
        status: None,
    }
}

/// Runs `dgram ARGS…` to completion (stdin closed) and returns it, exited.
pub fn run(args: &[&str]) -> Proc {
    let mut proc = Proc::dgram(args);
    proc.close_stdin();
    proc.finish();
    proc
}

/// Starts `dgram listen 127.0.0.1:0 --json EXTRA…` and returns it with the
/// address it bound (read from its `listening` event).
pub fn listener(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec!["listen", "127.0.0.1:0", "--json"];
    args.extend_from_slice(extra);
    let mut proc = Proc::dgram(&args);
    let listening = proc.expect("listening");
    let addr = listening["local"].as_str().unwrap().parse().unwrap();
    (proc, addr)
}

/// Stops a listener with SIGTERM and returns its `summary` event.
pub fn stop(listener: &mut Proc) -> Value {
    listener.signal(Signal::SIGTERM);
    let summary = listener.next("summary");
    let status = listener.finish();
    assert!(
        status.success(),
        "listener exited with {status}\n{}",
        listener.dump()
    );
    summary
}

/// The payload bytes of a `datagram` event (from `text` or `hex`).
pub fn payload(event: &Value) -> Vec<u8> {
    if let Some(text) = event["text"].as_str() {
        return text.as_bytes().to_vec();
    }
    let hex = event["hex"]
        .as_str()
        .unwrap_or_else(|| panic!("no payload in {event}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The queue length and drop count of the UDP socket bound to `port` on
/// 127.0.0.1, as `/proc/net/udp` shows them (`rx_queue`, `drops`).
pub fn proc_net_udp(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let wanted = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&wanted.as_str()) {
            return None;
        }
        let rx_queue = u64::from_str_radix(fields[4].split(':').nth(1)?, 16).ok()?;
        let drops = fields.last()?.parse().ok()?;
        Some((rx_queue, drops))
    })
}

/// Fails the test, with what to do, when `program` is not on PATH.
pub fn need(program: &str) {
    assert!(
        have(program),
        "{program} is missing: run scripts/setup-test-deps.sh"
    );
}

/// Waits until something is bound to `port` on 127.0.0.1 (a peer that does
/// not say when it is ready).
pub fn wait_bound(port: u16, peer: &Proc) {
    wait_for(
        &format!("port {port} to be bound"),
        || peer.dump(),
        || proc_net_udp(port),
    );
}

/// Starts an OpenBSD `nc -u -l` listener on a free port of 127.0.0.1 and
/// waits until it is bound.
pub fn nc_listener() -> (Proc, u16) {
    need("nc");
    let port = closed_port().port();
    let nc = Proc::spawn("nc", &["-u", "-l", "127.0.0.1", &port.to_string()]);
    wait_bound(port, &nc);
    (nc, port)
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Which platform extras this build of dgram has, as its `listening` event
/// says (`true_length`, `drop_count`, `icmp_errors`, `kernel_timestamps`).
/// The portable build (`--features portable`) has none, and the tests
/// expect the reduced behaviour there.
pub fn capabilities() -> &'static Value {
    static CAPABILITIES: OnceLock<Value> = OnceLock::new();
    CAPABILITIES.get_or_init(|| {
        let (mut listen, _) = listener(&[]);
        let capabilities = listen.first_event("listening")["capabilities"].clone();
        listen.kill();
        capabilities
    })
}

/// True when this build has the platform extra `name`.
pub fn has(name: &str) -> bool {
    capabilities()[name]
        .as_bool()
        .unwrap_or_else(|| panic!("no capability {name} in {}", capabilities()))
}

/// A new key file (mode 0600) from `dgram keygen`, in a fresh temporary
/// directory.
pub fn keygen(name: &str) -> PathBuf {
    let path = temp_path(name);
    let proc = run(&["keygen", path.to_str().unwrap()]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    path
}

/// A path in a fresh temporary directory of this test process.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dgram-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A plain UDP socket on 127.0.0.1 that the test reads (with a deadline).
pub struct Peer {
    /// The socket.
    pub socket: UdpSocket,
}

impl Peer {
    /// Binds 127.0.0.1 with a port the system chooses.
    pub fn bind() -> Peer {
        let socket = UdpSocket::bind(any_local_addr()).unwrap();
        socket.set_read_timeout(Some(DEADLINE)).unwrap();
        Peer { socket }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next datagram's payload (panics after [`DEADLINE`]).
    pub fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = self
            .socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no datagram within {DEADLINE:?}: {e}"));
        buf.truncate(n);
        buf
    }
}

/// A program in a pseudo-terminal (rexpect), with everything it printed
/// kept for failure messages and counting.
pub struct Pty {
    /// The rexpect session.
    pub session: PtySession,
    /// Everything seen on the screen so far.
    pub transcript: String,
}

impl Pty {
    /// Starts `dgram ARGS…` in a pseudo-terminal with `TERM`.
    pub fn dgram(args: &[&str], term: &str) -> Pty {
        let mut command = Command::new(dgram_path());
        command.args(args).env("TERM", term);
        Pty::start(command)
    }

    /// Starts a prepared command in a pseudo-terminal.
    pub fn start(command: Command) -> Pty {
        let shown = format!("{command:?}");
        let session = spawn_command(command, Some(DEADLINE.as_millis() as u64))
            .unwrap_or_else(|e| panic!("cannot start {shown} in a pty: {e}"));
        Pty {
            session,
            transcript: String::new(),
        }
    }

    /// Waits for `text` on the screen.
    pub fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(text);
            }
            Err(e) => panic!(
                "waiting for {text:?}: {e}\n--- screen so far:\n{}\n---",
                self.transcript
            ),
        }
    }

    /// Waits for the `chat on ADDR` banner and returns ADDR.
    pub fn bound_addr(&mut self) -> SocketAddr {
        let (before, found) = self
            .session
            .exp_regex(r"chat on [0-9.]+:[0-9]+")
            .unwrap_or_else(|e| panic!("no banner: {e}\n{}", self.transcript));
        self.transcript.push_str(&before);
        self.transcript.push_str(&found);
        found.trim_start_matches("chat on ").parse().unwrap()
    }

    /// Types `text` without pressing Enter.
    pub fn type_text(&mut self, text: &str) {
        self.session.send(text).unwrap();
        self.session.flush().unwrap();
    }

    /// Types raw bytes, UTF-8 or not (as a Latin-1 terminal sends them).
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        let mut terminal = self.session.process().get_file_handle().unwrap();
        terminal.write_all(bytes).unwrap();
        terminal.flush().unwrap();
    }

    /// Types `line` and presses Enter.
    pub fn type_line(&mut self, line: &str) {
        self.session.send_line(line).unwrap();
    }

    /// Waits for the end of output and returns the exit code.
    pub fn finish(&mut self) -> Option<i32> {
        let rest = self
            .session
            .exp_eof()
            .unwrap_or_else(|e| panic!("no exit: {e}\n{}", self.transcript));
        self.transcript.push_str(&rest);
        match self.session.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        }
    }
}

/// Sends `payload` to `to` as a UDP datagram that claims to come from
/// `from`, through a raw socket (root only). Returns false when raw sockets
/// are not allowed here.
pub fn spoof(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> bool {
    let Ok(raw) = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)) else {
        return false;
    };
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&from.port().to_be_bytes());
    datagram.extend_from_slice(&to.port().to_be_bytes());
    datagram.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
    datagram.extend_from_slice(payload);
    let SocketAddr::V4(to_v4) = to else {
        panic!("IPv4 only")
    };
    let target = SocketAddrV4::new(*to_v4.ip(), 0);
    raw.send_to(&datagram, &target.into()).unwrap();
    true
}

/// Raw sockets need root; CI runs as root. Elsewhere the test says why it
/// cannot run, and fails in CI rather than pass without having run.
pub fn need_raw_sockets() -> bool {
    if Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run as root: raw sockets are needed to spoof a source address"
    );
    eprintln!("SKIPPED: raw sockets (to spoof a source address) need root");
    false
}

/// Datagrams a relay saw go one way, in the order they came.
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// A UDP relay between two programs, to see (and keep) every datagram
/// they exchange: each talks to its own relay socket, which forwards what
/// comes in to the other program. Side 0 is the socket the first program
/// talks to (its `--peer`), side 1 the second's.
pub struct Relay {
    /// The socket each side talks to.
    pub sockets: [Arc<UdpSocket>; 2],
    /// What came in on each socket (side 0: what the first program sent).
    seen: [Seen; 2],
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Relay {
    /// Binds both sockets on 127.0.0.1 (ports from the system); nothing is
    /// forwarded until [`Relay::start`], and what comes before waits in
    /// the sockets' buffers.
    pub fn new() -> Relay {
        let sockets = [
            Arc::new(UdpSocket::bind(any_local_addr()).unwrap()),
            Arc::new(UdpSocket::bind(any_local_addr()).unwrap()),
        ];
        for socket in &sockets {
            // Bounds each wait, so that the threads see `stop`.
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
        }
        Relay {
            sockets,
            seen: [Seen::default(), Seen::default()],
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }

    /// The address side `side` talks to.
    pub fn addr(&self, side: usize) -> SocketAddr {
        self.sockets[side].local_addr().unwrap()
    }

    /// Forwards what comes in on side 0 to `to[1]` and what comes in on
    /// side 1 to `to[0]`, each out of the other side's socket (so each
    /// program sees the other at the address it talks to).
    pub fn start(&mut self, to: [SocketAddr; 2]) {
        for side in 0..2 {
            let (inbound, outbound) = (
                Arc::clone(&self.sockets[side]),
                Arc::clone(&self.sockets[1 - side]),
            );
            let (seen, stop, to) = (
                Arc::clone(&self.seen[side]),
                Arc::clone(&self.stop),
                to[1 - side],
            );
            self.threads.push(thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, _)) = inbound.recv_from(&mut buf) {
                        seen.lock().unwrap().push(buf[..n].to_vec());
                        let _ = outbound.send_to(&buf[..n], to);
                    }
                }
            }));
        }
    }

    /// Everything that came in on side `side` so far.
    pub fn seen(&self, side: usize) -> Vec<Vec<u8>> {
        self.seen[side].lock().unwrap().clone()
    }

    /// Stops forwarding (what comes later stays in the sockets' buffers).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
