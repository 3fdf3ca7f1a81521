//! Bad input gets a message that says what is wrong and what to do: exit
//! status 2 for usage errors, 1 for runtime errors, never a panic, and no
//! output that cannot be written is a reason to panic either.

use std::fs::File;
use std::net::UdpSocket;
use std::process::{Command, Stdio};

use crate::util::{any_local_addr, closed_port, dgram_path, run};

/// Runs dgram with `args` and checks its status and message, that nothing
/// went to stdout, and that it did not panic. Returns stderr.
fn check(args: &[&str], status: i32, message: &str) -> String {
    let proc = run(args);
    let stderr = proc.stderr();
    assert_eq!(proc.code(), Some(status), "{}", proc.dump());
    assert!(
        stderr.contains(message),
        "expected {message:?}\n{}",
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
    stderr
}

/// Like [`check`], for dgram's own errors: one line, starting `error:`.
fn check_one_line(args: &[&str], status: i32, message: &str) {
    let stderr = check(args, status, message);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line only: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
}

/// Each kind of bad address, size and flag gets status 2 and clap's message
/// with dgram's explanation in it.
#[test]
fn usage_errors_exit_2() {
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
            "beyond reason for a socket buffer: ask for at most 1G (Linux caps it at net.core.rmem_max, or wmem_max for SO_SNDBUF, anyway)",
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
        (&["listen", "127.0.0.1:0", "--echo-rate", "5"], "--echo"),
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
        (&["chat", "--peer", "nowhere"], "has no port"),
        (
            &["send", "127.0.0.1:9", "--size", "99999999999999999999999"],
            "99999999999999999999999 bytes do not fit in one datagram",
        ),
        (
            &["listen", "[::1%999999]:0"],
            "no network interface number 999999",
        ),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
    ];
    for (args, message) in cases {
        check(args, 2, message);
    }
}

/// Clap's whole message is printed: the missing argument is named, the
/// similar subcommand suggested, the usage line shown.
#[test]
fn usage_errors_keep_their_substance() {
    let stderr = check(
        &["send"],
        2,
        "the following required arguments were not provided",
    );
    assert!(stderr.contains("<ADDR>"), "{stderr}");
    assert!(stderr.contains("Usage: dgram send <ADDR>"), "{stderr}");
    let stderr = check(&["lisen"], 2, "unrecognized subcommand 'lisen'");
    assert!(
        stderr.contains("similar subcommand exists: 'listen'"),
        "{stderr}"
    );
}

/// Sizes are checked before anything is allocated: a terabyte, 4 GiB and
/// one byte over the IPv4 limit are refused at once, with status 2 (the
/// terabyte used to abort trying to allocate it).
#[test]
fn huge_sizes_are_refused_before_allocating() {
    check(
        &["send", "127.0.0.1:9", "--size", "1000000000000"],
        2,
        "1000000000000 bytes do not fit in one datagram: UDP carries at most 65507 bytes over IPv4 and 65527 over IPv6",
    );
    check(&["send", "127.0.0.1:9", "--size", "4G"], 2, "do not fit");
    check_one_line(
        &["send", "127.0.0.1:9", "--size", "65508"],
        2,
        "over the 65507-byte limit",
    );
    check(&["send", "[::1]:9", "--size", "65528"], 2, "65527");
}

/// An IPv6 address without brackets is refused with the bracketed form,
/// never guessed at; a family mismatch between the socket and the peer is
/// refused up front with the same message in every direction.
#[test]
fn ipv6_addresses_and_families() {
    check(&["send", "fe80::1:9000", "hi"], 2, "as in [fe80::1]:9000");
    check(&["listen", "::1:9201"], 2, "as in [::1]:9201");
    check(
        &["listen", "[::1%nosuch0]:0"],
        2,
        "no network interface named 'nosuch0'",
    );
    check_one_line(
        &["send", "127.0.0.1:9001", "x", "--bind", "[::1]:0"],
        2,
        "cannot reach IPv4 address 127.0.0.1:9001 from the IPv6 address [::1]:0",
    );
    check_one_line(
        &["send", "[::1]:9001", "x", "--bind", "127.0.0.1:0"],
        2,
        "cannot reach IPv6 address [::1]:9001 from the IPv4 address 127.0.0.1:0",
    );
    check_one_line(
        &["chat", "--bind", "[::1]:0", "--peer", "127.0.0.1:9001"],
        2,
        "cannot reach IPv4 address 127.0.0.1:9001 from the IPv6 address [::1]:0",
    );
}

/// A port already in use is a runtime error (status 1) with a hint to pick
/// another port, whoever holds it.
#[test]
fn port_in_use_exits_1_with_a_hint() {
    let taken = UdpSocket::bind(any_local_addr()).unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    check_one_line(&["listen", &addr], 1, "already in use");
    let (_first, addr) = crate::util::listener(&[]);
    check_one_line(&["listen", &addr.to_string()], 1, "pick another port");
}

/// A destination that is the command's own `--bind` address is a usage
/// error (status 2) before anything is bound or sent: `send` used to count
/// its own datagram as "1 reply from it", `ping` its own probes as replies,
/// and a chat retried messages that nobody else could acknowledge. A
/// wildcard bind reaches loopback on its port, so that is refused too.
#[test]
fn own_address_is_not_a_peer() {
    let port = closed_port().port();
    let own = format!("127.0.0.1:{port}");
    let wildcard = format!("0.0.0.0:{port}");
    let dual = format!("[::]:{port}");
    let loopback6 = format!("[::1]:{port}");
    for args in [
        vec!["send", own.as_str(), "hi", "--bind", own.as_str()],
        vec!["send", own.as_str(), "hi", "--bind", wildcard.as_str()],
        vec!["ping", own.as_str(), "--count", "1", "--bind", own.as_str()],
        vec![
            "chat",
            "--peer",
            own.as_str(),
            "--bind",
            own.as_str(),
            "--no-history",
        ],
        vec![
            "chat",
            "--peer",
            loopback6.as_str(),
            "--bind",
            dual.as_str(),
            "--no-history",
        ],
    ] {
        check_one_line(&args, 2, "is this socket's own address");
    }
}

/// A broadcast address refuses a socket that did not ask for it
/// (`SO_BROADCAST`): `send` and `ping` say so and name the command that
/// broadcasts, rather than a bare "Permission denied". 127.255.255.255 is
/// loopback's broadcast address: the kernel refuses before anything leaves.
#[test]
fn broadcast_address_gets_a_hint() {
    for args in [
        &["send", "127.255.255.255:9", "hi"][..],
        &["ping", "127.255.255.255:9", "--count", "1"][..],
    ] {
        let proc = run(args);
        assert_eq!(proc.code(), Some(1), "{}", proc.dump());
        let stderr = proc.stderr();
        assert!(
            stderr.contains("127.255.255.255 is a broadcast address")
                && stderr.contains("SO_BROADCAST")
                && stderr.contains("dgram chat --broadcast 127.255.255.255:9"),
            "{}",
            proc.dump()
        );
    }
}

/// Output that cannot be written is an error (status 1), never a panic:
/// stderr on a full device while the peer refuses, stdout on a full device
/// for a listener.
#[test]
fn unwritable_output_exits_1() {
    let status = Command::new(dgram_path())
        .args(["send", &closed_port().to_string(), "hi"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create("/dev/full").unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "{status}");

    let output = Command::new(dgram_path())
        .args(["listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: could not write the output: No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--hex`: spaces, `:` and `-` separate bytes. A one-digit group is
/// refused and named (`1:2` used to send the one byte 0x12, `0:0:0:0` two
/// bytes), and separated pairs arrive as exactly those bytes.
#[test]
fn hex_separators_separate_bytes() {
    check(
        &["send", "127.0.0.1:9", "--hex", "1:2"],
        2,
        "'1' in '1:2' has an odd number of hex digits",
    );
    check(
        &["send", "127.0.0.1:9", "--hex", "0:0:0:0"],
        2,
        "'0' in '0:0:0:0'",
    );
    let peer = crate::util::Peer::bind();
    let to = peer.addr().to_string();
    for (hex, bytes) in [
        ("01:02", &[1u8, 2][..]),
        ("de-ad be:ef", &[0xde, 0xad, 0xbe, 0xef]),
    ] {
        let proc = run(&["send", &to, "--hex", hex, "--wait", "0"]);
        assert!(proc.finish_ok(), "{}", proc.dump());
        assert_eq!(peer.recv(), bytes, "--hex {hex}");
    }
}

/// One number grammar for every option: `--size 1.5k` is taken as
/// `--rate 1.5M` is (1536 bytes arrive); `+5` is not a port; waits and
/// intervals have a named maximum; no message leaks Rust's words
/// ("invalid digit found in string", "number too large to fit in target
/// type").
#[test]
fn numbers_share_one_grammar() {
    let peer = crate::util::Peer::bind();
    let proc = run(&[
        "send",
        &peer.addr().to_string(),
        "--size",
        "1.5k",
        "--wait",
        "0",
    ]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(peer.recv().len(), 1536);
    let cases: &[(&[&str], &str)] = &[
        (&["listen", "127.0.0.1:+5"], "digits only"),
        (
            &["send", "127.0.0.1:9", "x", "--wait", "18446744073709551615"],
            "at most 3600000",
        ),
        (
            &["ping", "127.0.0.1:9", "--interval", "18446744073709551615"],
            "at most 3600000",
        ),
        (
            &["send", "127.0.0.1:9", "x", "--count", "abc"],
            "expected a whole number such as 100, 10k or 1.5M",
        ),
        (&["chat", "--retries", "300"], "at most 20"),
        (&["listen", "--count", "0"], "from 1 to 1000000000000"),
        (&["listen", "--count", "\u{663}"], "not a number"),
        (
            &["bench", "--loopback", "--size", "1.5"],
            "expected a whole number of bytes such as 1500, 64k or 1.5M",
        ),
    ];
    for (args, message) in cases {
        let stderr = check(args, 2, message);
        assert!(
            !stderr.contains("invalid digit") && !stderr.contains("fit in target type"),
            "{stderr}"
        );
    }
}
