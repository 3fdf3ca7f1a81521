//! Local files and local text: the paths a user names (`--key-file`,
//! `keygen FILE`, `--log`, `--history`) are regular files or refused in one
//! line, nothing is read without bound or opened so that it blocks, no
//! directory appears unasked, a full disk leaves whole log lines, and
//! whatever the user typed reaches the terminal escaped.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Proc, Pty, any_local_addr, dgram_path, run, temp_path};

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A `--key-file` that is a FIFO, a device that never ends (`/dev/zero`)
/// or a file far larger than a key is refused at once with one line
/// saying what it is (exit 2): nothing blocks, nothing is read without
/// bound.
#[test]
fn key_files_are_regular_and_small() {
    let fifo = temp_path("key-fifo");
    mkfifo(&fifo);
    let large = temp_path("key-large");
    std::fs::write(&large, "a".repeat(1 << 20)).unwrap();
    // The FIFO first: the old code hung on it (and would have read
    // /dev/zero until memory ran out).
    for (path, words) in [
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
        (large.as_path(), "holds more than 4096 bytes"),
    ] {
        for command in [
            &["listen", "127.0.0.1:0"][..],
            &["chat", "--peer", "127.0.0.1:9", "--no-history"][..],
        ] {
            let mut args = command.to_vec();
            args.extend(["--key-file", path.to_str().unwrap()]);
            // `run` fails the test when dgram has not exited by the deadline.
            let proc = run(&args);
            assert_eq!(proc.code(), Some(2), "{}", proc.dump());
            let stderr = proc.stderr();
            assert_eq!(stderr.lines().count(), 1, "{}", proc.dump());
            assert!(
                stderr.starts_with(&format!(
                    "error: cannot use the key file {}: ",
                    path.display()
                )) && stderr.contains(words),
                "{}",
                proc.dump()
            );
        }
    }
}

/// `keygen` into a directory that does not exist refuses and names the
/// directory, and makes none; on a symbolic link to nothing it says that
/// the path is such a link and where it points, and so does `listen
/// --key-file` (which suggested the keygen that then failed).
#[test]
fn keygen_makes_no_directories_and_explains_dangling_links() {
    let base = temp_path("keygen-dirs");
    let dir = base.parent().unwrap().join("not-there");
    let key = dir.join("deeper").join("team.key");
    let proc = run(&["keygen", key.to_str().unwrap()]);
    assert_eq!(proc.code(), Some(2), "{}", proc.dump());
    let stderr = proc.stderr();
    assert_eq!(stderr.lines().count(), 1, "{}", proc.dump());
    assert!(
        stderr.contains(&format!(
            "its directory {} does not exist",
            dir.join("deeper").display()
        )),
        "{}",
        proc.dump()
    );
    assert!(!dir.exists(), "keygen made {}", dir.display());

    let link = base.parent().unwrap().join("dangling.key");
    let target = base.parent().unwrap().join("nowhere.key");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let proc = run(&["keygen", link.to_str().unwrap()]);
    assert_eq!(proc.code(), Some(2), "{}", proc.dump());
    assert!(
        proc.stderr().contains(&format!(
            "it is a symbolic link to {}, which does not exist",
            target.display()
        )),
        "{}",
        proc.dump()
    );
    assert!(!target.exists());
    // `listen` says the same, rather than suggest the keygen that fails.
    let proc = run(&[
        "listen",
        "127.0.0.1:0",
        "--key-file",
        link.to_str().unwrap(),
    ]);
    assert_eq!(proc.code(), Some(2), "{}", proc.dump());
    assert!(
        proc.stderr().contains("it is a symbolic link to")
            && !proc.stderr().contains("`dgram keygen"),
        "{}",
        proc.dump()
    );
}

/// `--log` is a regular file, or a new one in a directory that exists: a
/// FIFO (on which `open` blocked until SIGKILL) and a device are refused
/// at once in one line (exit 2), and a missing directory is named, not
/// made.
#[test]
fn log_paths_are_checked_before_opening() {
    let base = temp_path("log-paths");
    let fifo = base.parent().unwrap().join("log-fifo");
    mkfifo(&fifo);
    let missing = base.parent().unwrap().join("no-such-dir");
    let in_missing = missing.join("chat.log");
    for (path, words) in [
        (fifo.clone(), "it is a FIFO, not a regular file".to_string()),
        (
            "/dev/full".into(),
            "it is a character device, not a regular file".to_string(),
        ),
        (
            in_missing.clone(),
            format!("its directory {} does not exist", missing.display()),
        ),
    ] {
        // `run` fails the test when dgram has not exited by the deadline.
        let proc = run(&[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--plain",
            "--no-history",
            "--log",
            path.to_str().unwrap(),
        ]);
        assert_eq!(proc.code(), Some(2), "{}", proc.dump());
        let stderr = proc.stderr();
        assert_eq!(stderr.lines().count(), 1, "{}", proc.dump());
        assert!(
            stderr.starts_with(&format!(
                "error: cannot use the log file {}: ",
                path.display()
            )) && stderr.contains(&words),
            "{}",
            proc.dump()
        );
    }
    assert!(!missing.exists(), "the chat made {}", missing.display());
}

/// At a terminal, a `--history` that cannot be one (a FIFO, `/dev/full`,
/// a file in a directory that does not exist) is one warning before the
/// chat starts, which goes on without history and makes no directory;
/// `/dev/null` is no history, silently.
#[test]
fn unusable_history_paths_are_said_once() {
    let base = temp_path("history-paths");
    let fifo = base.parent().unwrap().join("history-fifo");
    mkfifo(&fifo);
    let missing = base.parent().unwrap().join("no-such-dir");
    let in_missing = missing.join("history");
    for (path, words) in [
        (fifo.clone(), "it is a FIFO, not a regular file".to_string()),
        (
            "/dev/full".into(),
            "it is a character device, not a regular file".to_string(),
        ),
        (
            in_missing.clone(),
            format!("its directory {} does not exist", missing.display()),
        ),
        ("/dev/null".into(), String::new()),
    ] {
        let mut chat = Pty::dgram(
            &[
                "chat",
                "--peer",
                "127.0.0.1:9",
                "--plain",
                "--history",
                path.to_str().unwrap(),
            ],
            "xterm",
        );
        chat.bound_addr();
        chat.type_line("/quit");
        assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
        let warnings = chat
            .transcript
            .lines()
            .filter(|line| line.contains("warning:"))
            .collect::<Vec<_>>();
        if words.is_empty() {
            assert!(warnings.is_empty(), "{}", chat.transcript);
            continue;
        }
        assert_eq!(warnings.len(), 1, "{}", chat.transcript);
        assert!(
            warnings[0].contains(&format!(
                "warning: could not load the history file {}: {words}",
                path.display()
            )) && warnings[0].contains("the chat goes on without history"),
            "{}",
            chat.transcript
        );
    }
    assert!(!missing.exists(), "the chat made {}", missing.display());
}

/// A tmpfs of 16 KiB mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts it under a fresh temporary directory; `None` (with one
    /// `SKIPPED:` line) where mounting is not allowed, but under `CI=true`
    /// a failure: CI runs as root and must run this test.
    fn mount(name: &str) -> Option<SmallDisk> {
        let dir = temp_path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI must be able to mount a tmpfs (run as root): {why}"
                );
                println!(
                    "SKIPPED: cannot mount a 16 KiB tmpfs at {}: {why}",
                    dir.display()
                );
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// `--log` onto a full disk: the chat stops with the disk's error (exit
/// 1), and the log holds whole JSON lines only, the last one included
/// (a line the disk took only part of is cut off again).
#[test]
fn a_full_disk_leaves_whole_log_lines() {
    let Some(disk) = SmallDisk::mount("full-disk") else {
        return;
    };
    let peer = UdpSocket::bind(any_local_addr()).unwrap();
    let log = disk.dir.join("chat.log");
    let mut chat = Proc::dgram(&[
        "chat",
        "--peer",
        &peer.local_addr().unwrap().to_string(),
        "--plain",
        "--no-history",
        "--linger",
        "0",
        "--log",
        log.to_str().unwrap(),
    ]);
    // 60 lines of 700 bytes: far more than 16 KiB of log, and lines that
    // end anywhere in a page.
    for i in 0..60 {
        chat.write_line(&format!("line {i:02} {}", "x".repeat(700)));
    }
    chat.close_stdin();
    chat.finish();
    assert_eq!(chat.code(), Some(1), "{}", chat.dump());
    assert!(
        chat.stderr().contains(&format!(
            "error: could not write the log file {}: No space left on device",
            log.display()
        )),
        "{}",
        chat.dump()
    );
    let kept = std::fs::read(&log).unwrap();
    assert!(!kept.is_empty(), "{}", chat.dump());
    assert_eq!(kept.last(), Some(&b'\n'), "the last line is cut short");
    let text = String::from_utf8(kept).unwrap();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line}"));
        assert_eq!(event["event"], "sent", "{line}");
    }
}

/// What a hostile name holds: an OSC title sequence, a colour, a C1 CSI,
/// a right-to-left override and backspaces.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[31m\u{9b}2J\u{202e}\x08\x08";

/// [`HOSTILE`] as dgram must show it.
const HOSTILE_ESCAPED: &str = r"\u{1b}]0;pwned\u{7}\u{1b}[31m\u{9b}2J\u{202e}\u{8}\u{8}";

/// Fails unless `text` holds [`HOSTILE`] escaped and none of its
/// characters raw.
fn assert_escaped(text: &str, dump: &str) {
    assert!(text.contains(HOSTILE_ESCAPED), "not escaped:\n{dump}");
    for raw in ['\x1b', '\x07', '\u{9b}', '\u{202e}', '\x08'] {
        assert!(!text.contains(raw), "{raw:?} reached the terminal:\n{dump}");
    }
}

/// Runs dgram with `args` as if on a terminal (clap strips escape
/// sequences, though not C1 or bidi controls, only when it knows stderr is
/// not one) and stdin closed.
fn run_colored(args: &[&str]) -> Proc {
    let mut command = Command::new(dgram_path());
    command.args(args).env("CLICOLOR_FORCE", "1");
    let mut proc = Proc::start(command);
    proc.close_stdin();
    proc.finish();
    proc
}

/// Control, C1, bidi and backspace characters in what the user typed are
/// escaped wherever dgram prints it: key file paths (missing, in a missing
/// directory, a directory), keygen's "wrote a new key" line, the warning
/// about a key others can read, `--iface`, and the argument parser's
/// "invalid value" messages (`--peer`, a scope id, `--bind`, `--hex`, the
/// listen address).
#[test]
fn what_the_user_typed_reaches_the_terminal_escaped() {
    let base = temp_path("hostile");
    let dir = base.parent().unwrap();
    let key = dir.join(format!("{HOSTILE}.key"));
    let missing_dir = dir.join(HOSTILE).join("team.key");
    let a_dir = dir.join(format!("{HOSTILE}-dir"));
    std::fs::create_dir(&a_dir).unwrap();
    let missing = dir.join(format!("{HOSTILE}-missing"));
    let peer = format!("127.0.0.1{HOSTILE}");
    let scoped = format!("[fe80::1%{HOSTILE}]:9000");
    let hex = format!("zz{HOSTILE}");
    let cases: &[&[&str]] = &[
        &["keygen", key.to_str().unwrap()],
        &["keygen", missing_dir.to_str().unwrap()],
        &[
            "listen",
            "127.0.0.1:0",
            "--key-file",
            missing.to_str().unwrap(),
        ],
        &[
            "listen",
            "127.0.0.1:0",
            "--key-file",
            a_dir.to_str().unwrap(),
        ],
        &["chat", "--no-history", "--peer", &peer],
        &[
            "chat",
            "--no-history",
            "--peer",
            "127.0.0.1:9",
            "--bind",
            &peer,
        ],
        &["send", &scoped, "x"],
        &["send", "127.0.0.1:9", "--hex", &hex],
        &["listen", &peer],
        &["listen", "--group", "239.1.2.3:5000", "--iface", HOSTILE],
    ];
    for args in cases {
        let proc = run_colored(args);
        let shown = format!("{}{}", proc.stdout(), proc.stderr());
        assert_escaped(&shown, &proc.dump());
    }
    // The key keygen wrote, made readable by others: the warning names it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut listen = Proc::dgram(&["listen", "127.0.0.1:0", "--key-file", key.to_str().unwrap()]);
    listen.wait_stdout_contains("listening on");
    listen.signal(nix::sys::signal::Signal::SIGTERM);
    listen.finish();
    assert!(
        listen.stderr().contains("can be read by others"),
        "{}",
        listen.dump()
    );
    assert_escaped(&listen.stderr(), &listen.dump());
}

/// A history file that takes nothing (here `/proc/version`, through a link
/// with a hostile name) is said once, with its name escaped, however many
/// lines are typed.
#[test]
fn history_not_saved_is_said_once_escaped() {
    let base = temp_path("history-unwritable");
    let link = base.parent().unwrap().join(format!("{HOSTILE}-history"));
    std::os::unix::fs::symlink("/proc/version", &link).unwrap();
    let mut chat = Pty::dgram(
        &[
            "chat",
            "--peer",
            "127.0.0.1:9",
            "--plain",
            "--history",
            link.to_str().unwrap(),
        ],
        "xterm",
    );
    chat.bound_addr();
    for line in ["/help", "/stats", "/help"] {
        chat.type_line(line);
    }
    chat.expect("history not saved to");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    assert_eq!(
        chat.transcript.matches("history not saved").count(),
        1,
        "{}",
        chat.transcript
    );
    let said = chat
        .transcript
        .lines()
        .find(|line| line.contains("history not saved"))
        .unwrap();
    assert_escaped(said, &chat.transcript);
}

/// What is typed at the chat prompt comes back escaped in the answer that
/// quotes it (here `/to` with a bad address and an unknown command, with
/// bidi controls; the line editor takes ESC and C1 controls itself).
#[test]
fn prompt_answers_escape_what_was_typed() {
    let typed = "\u{202e}x\u{2066}";
    let escaped = r"\u{202e}x\u{2066}";
    let mut chat = Pty::dgram(
        &["chat", "--peer", "127.0.0.1:9", "--plain", "--no-history"],
        "xterm",
    );
    chat.bound_addr();
    chat.type_line(&format!("/to 127.0.0.1{typed}"));
    chat.expect("has no port");
    chat.type_line(&format!("/frob{typed}"));
    chat.expect("/help lists them");
    chat.type_line("/quit");
    assert_eq!(chat.finish(), Some(0), "{}", chat.transcript);
    for answer in ["has no port", "unknown command"] {
        let said = chat
            .transcript
            .lines()
            .find(|line| line.contains(answer))
            .unwrap_or_else(|| panic!("no {answer:?}:\n{}", chat.transcript));
        assert!(said.contains(escaped), "{said:?}\n{}", chat.transcript);
        assert!(
            !said.contains('\u{202e}') && !said.contains('\u{2066}'),
            "{said:?}\n{}",
            chat.transcript
        );
    }
}
