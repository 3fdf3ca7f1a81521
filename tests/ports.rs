//! A unicast dgram socket does not share its port: no other program can
//! bind it and silently take its traffic, whoever starts first.

use crate::util::{Proc, listener, nc_listener, run, stop};

/// Once `dgram listen` holds a port, OpenBSD `nc -u -l` (which sets
/// `SO_REUSEADDR`) cannot bind it, and the datagram sent there reaches
/// dgram.
#[test]
fn nc_cannot_take_dgrams_port() {
    let (mut listen, addr) = listener(&[]);
    let mut nc = Proc::spawn("nc", &["-u", "-l", "127.0.0.1", &addr.port().to_string()]);
    let status = nc.finish();
    assert!(!status.success(), "nc bound dgram's port: {}", nc.dump());
    assert!(
        nc.stderr().contains("Address already in use"),
        "{}",
        nc.dump()
    );
    assert!(run(&["send", &addr.to_string(), "for dgram"]).finish_ok());
    assert_eq!(listen.next("datagram")["text"], "for dgram");
    assert_eq!(stop(&mut listen)["received"], 1);
}

/// The other way round: while `nc -u -l` holds a port, `dgram listen` on it
/// fails with "in use" (status 1).
#[test]
fn dgram_cannot_take_ncs_port() {
    let (mut nc, port) = nc_listener();
    let listen = run(&["listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(listen.code(), Some(1), "{}", listen.dump());
    assert!(
        listen.stderr().contains("already in use"),
        "{}",
        listen.dump()
    );
    nc.kill();
}

/// After `nc -u -l` has taken its first peer it refuses everyone else
/// (its socket is connected to that peer), and the kernel answers port
/// unreachable although the port is held. dgram says so, rather than
/// advising to start a listener on a port that is taken.
#[test]
fn a_port_held_for_one_peer_is_told_apart_from_a_closed_one() {
    if !crate::util::has("icmp_errors") {
        return;
    }
    let (mut nc, port) = nc_listener();
    let to = format!("127.0.0.1:{port}");
    assert!(run(&["send", &to, "first"]).finish_ok());
    nc.wait_stdout_contains("first");
    let second = run(&["send", &to, "second", "--json"]);
    assert_eq!(second.code(), Some(1), "{}", second.dump());
    assert_eq!(second.first_event("unreachable")["port_in_use"], true);
    let stderr = second.stderr();
    assert!(
        stderr.contains("though a program holds that port"),
        "{stderr}"
    );
    assert!(stderr.contains("one peer only"), "{stderr}");
    assert!(!stderr.contains("dgram listen"), "{stderr}");
    nc.kill();
}
