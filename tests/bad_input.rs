//! Bad input gets one line that says what is wrong and what to do, exit
//! status 2 for usage errors and 1 for runtime errors, never a panic.

use std::net::UdpSocket;

use crate::util::{any_local_addr, run};

/// Runs dgram with `args` and checks its status and its one-line message.
fn check(args: &[&str], status: i32, message: &str) {
    let proc = run(args);
    let stderr = proc.stderr();
    assert_eq!(proc.code(), Some(status), "{}", proc.dump());
    assert!(
        stderr.contains(message),
        "expected {message:?}\n{}",
        proc.dump()
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line only\n{}",
        proc.dump()
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(
        proc.stdout().is_empty(),
        "nothing on stdout\n{}",
        proc.dump()
    );
}

/// Each kind of bad address, size and flag gets its own status and message.
#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["listen", "127.0.0.1"], "has no port"),
        (&["listen", "127.0.0.1:70000"], "port 70000 is out of range"),
        (&["listen", "300.1.2.3:9000"], "is not an IP address"),
        (
            &["listen", "127.0.0.1:0", "--rcvbuf", "0"],
            "a buffer of 0 bytes",
        ),
        (
            &["listen", "127.0.0.1:0", "--sndbuf", "5G"],
            "beyond reason",
        ),
        (
            &["listen", "127.0.0.1:0", "--rcvbuf", "12q"],
            "unknown unit",
        ),
        (
            &["listen", "127.0.0.1:0", "--max-size", "0"],
            "0-byte receive buffer",
        ),
        (
            &["listen", "127.0.0.1:0", "--max-size", "70000"],
            "1 to 65535",
        ),
        (&["listen", "--bogus"], "unexpected argument '--bogus'"),
        (&["send", "127.0.0.1:0", "x"], "cannot send to port 0"),
        (
            &["send", "127.0.0.1:9", "x", "--empty"],
            "cannot be used with",
        ),
        (
            &["send", "127.0.0.1:9", "--hex", "abc"],
            "odd number of hex digits",
        ),
        (
            &["send", "127.0.0.1:9", "--size", "65508"],
            "over the 65507-byte limit",
        ),
        (
            &["send", "[::1]:9", "--size", "65528"],
            "over the 65527-byte limit",
        ),
        (&["chat", "--peer", "nowhere"], "has no port"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, message) in cases {
        check(args, 2, message);
    }
}

/// A port already in use is a runtime error (status 1) with a hint to pick
/// another port.
#[test]
fn port_in_use_exits_1_with_a_hint() {
    let taken = UdpSocket::bind(any_local_addr()).unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    check(&["listen", &addr], 1, "is in use");
    // Even by another dgram, which sets SO_REUSEADDR as well.
    let (_first, addr) = crate::util::listener(&[]);
    check(&["listen", &addr.to_string()], 1, "pick another port");
}
