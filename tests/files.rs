//! Local files and local text: the paths a user names (`--key-file`,
//! `keygen FILE`, `--log`, `--history`) are regular files or refused in one
//! line, nothing is read without bound or opened so that it blocks, no
//! directory appears unasked, a full disk leaves whole log lines, and
//! whatever the user typed reaches the terminal escaped.

use std::path::Path;
use std::process::Command;

use crate::util::{run, temp_path};

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
