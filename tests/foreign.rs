//! Peers nobody here wrote: the classic Python socket examples, OpenBSD
//! `nc -u` and `socat`, in both directions.

use crate::util::{Proc, closed_port, listener, nc_listener, need, wait_bound, wait_for};

/// A Python client in the style of the classic socket examples (`sendto`,
/// then `recvfrom(1024)`) talks to `dgram listen --echo`: dgram shows the
/// client's address and the client gets its datagram back.
#[test]
fn python_client_to_dgram_echo() {
    need("python3");
    let (mut listen, addr) = listener(&["--echo"]);
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        s.settimeout(20)\n\
        s.sendto(b'hello from python',(sys.argv[1],int(sys.argv[2])))\n\
        print(s.getsockname()[1],flush=True)\n\
        data,addr=s.recvfrom(1024)\n\
        print('reply',data.decode(),addr[1],flush=True)\n";
    let mut client = Proc::spawn(
        "python3",
        &["-c", script, "127.0.0.1", &addr.port().to_string()],
    );
    let seen = listen.next("datagram");
    assert_eq!(seen["text"], "hello from python");
    assert_eq!(client.finish().code(), Some(0), "{}", client.dump());
    let out = client.stdout();
    let client_port = out.lines().next().unwrap();
    assert_eq!(seen["from"], format!("127.0.0.1:{client_port}"));
    assert!(
        out.contains(&format!("reply hello from python {}", addr.port())),
        "{out}"
    );
}

/// `dgram send` talks to a Python echo server in the classic style
/// (`recvfrom(1024)`, `sendto(data.upper(), addr)`) and shows its reply.
#[test]
fn dgram_to_python_server() {
    need("python3");
    let script = "import socket\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        s.bind(('127.0.0.1',0))\n\
        print(s.getsockname()[1],flush=True)\n\
        data,addr=s.recvfrom(1024)\n\
        s.sendto(data.upper(),addr)\n";
    let mut server = Proc::spawn("python3", &["-c", script]);
    wait_for(
        "the server's port",
        || server.dump(),
        || server.stdout().lines().next().map(str::to_string),
    );
    let port = server.stdout().lines().next().unwrap().trim().to_string();
    let to = format!("127.0.0.1:{port}");
    let mut send = Proc::dgram(&["send", &to, "--json", "--wait", "100"]);
    send.write_line("shout this");
    let reply = send.next("datagram");
    assert_eq!(reply["text"], "SHOUT THIS");
    assert_eq!(reply["from"], to.as_str());
    send.close_stdin();
    assert!(send.finish().success(), "{}", send.dump());
    assert!(server.finish().success(), "{}", server.dump());
}

/// OpenBSD `nc -u` as a client: what it sends reaches `dgram listen` (with
/// its trailing newline, escaped only on a terminal), and the echo comes
/// back to nc.
#[test]
fn nc_client_to_dgram_echo() {
    need("nc");
    let (mut listen, addr) = listener(&["--echo"]);
    let mut nc = Proc::spawn("nc", &["-u", "127.0.0.1", &addr.port().to_string()]);
    nc.write_line("hello from nc");
    let seen = listen.next("datagram");
    assert_eq!(seen["text"], "hello from nc\n");
    nc.wait_stdout_contains("hello from nc");
    nc.kill();
}

/// `dgram send` to an OpenBSD `nc -u -l` listener: nc prints the payload.
#[test]
fn dgram_to_nc_listener() {
    let (mut nc, port) = nc_listener();
    let mut send = Proc::dgram(&[
        "send",
        &format!("127.0.0.1:{port}"),
        "--json",
        "--wait",
        "100",
    ]);
    send.write_line("hello nc");
    nc.wait_stdout_contains("hello nc");
    send.close_stdin();
    assert!(send.finish().success(), "{}", send.dump());
    nc.kill();
}

/// `socat` as a client (`UDP4-SENDTO`) to `dgram listen --echo`: the
/// datagram arrives and socat prints the echo.
#[test]
fn socat_client_to_dgram_echo() {
    need("socat");
    let (mut listen, addr) = listener(&["--echo"]);
    let mut socat = Proc::spawn(
        "socat",
        &["-", &format!("UDP4-SENDTO:127.0.0.1:{}", addr.port())],
    );
    socat.write_line("hello from socat");
    assert_eq!(listen.next("datagram")["text"], "hello from socat\n");
    socat.wait_stdout_contains("hello from socat");
    socat.kill();
}

/// `dgram send` to a `socat UDP4-RECV` listener: socat prints each
/// datagram, and three datagrams stay three: socat's verbose log (`-v`)
/// shows one transfer per datagram, of 5, 6 and 5 bytes (one merged
/// datagram would be one transfer of 16).
#[test]
fn dgram_to_socat_listener() {
    need("socat");
    let port = closed_port().port();
    let mut socat = Proc::spawn(
        "socat",
        &[
            "-u",
            "-v",
            &format!("UDP4-RECV:{port},bind=127.0.0.1"),
            "STDOUT",
        ],
    );
    wait_bound(port, &socat);
    let mut send = Proc::dgram(&[
        "send",
        &format!("127.0.0.1:{port}"),
        "--json",
        "--wait",
        "100",
    ]);
    for line in ["first", "second", "third"] {
        send.write_line(line);
    }
    socat.wait_stdout_contains("firstsecondthird");
    wait_for(
        "three transfers in socat's log",
        || socat.dump(),
        || (socat.stderr().matches("length=").count() >= 3).then_some(()),
    );
    let log = socat.stderr();
    let lengths: Vec<&str> = log
        .split("length=")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(lengths, ["5", "6", "5"], "{}", socat.dump());
    send.close_stdin();
    assert!(send.finish().success(), "{}", send.dump());
    socat.kill();
}

/// The contrast the README claims: an empty datagram makes OpenBSD
/// `nc -u -l` exit (it reads it as end of input), while `dgram listen`
/// shows it and goes on to the next datagram.
#[test]
fn empty_datagram_ends_nc_but_not_dgram() {
    let (mut nc, port) = nc_listener();
    let to = format!("127.0.0.1:{port}");
    let send = crate::util::run(&["send", &to, "--empty"]);
    assert!(send.finish_ok(), "{}", send.dump());
    assert!(
        nc.finish().success(),
        "nc ended on the empty datagram: {}",
        nc.dump()
    );

    let (mut listen, addr) = listener(&[]);
    let addr = addr.to_string();
    assert!(crate::util::run(&["send", &addr, "--empty"]).finish_ok());
    assert!(crate::util::run(&["send", &addr, "next"]).finish_ok());
    assert_eq!(listen.next("datagram")["len"], 0);
    assert_eq!(listen.next("datagram")["text"], "next");
}
