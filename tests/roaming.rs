//! Roaming in a secure session, on hosts of our own (network namespaces,
//! see [`crate::netns`]): a keyed chat's peer is its session, not its
//! address. A host whose address changes mid-chat is checked at its new
//! address (a path challenge inside the session) and followed there, and
//! both screens say so; a copy of an authentic datagram sent from a third
//! host moves nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Lan;
use crate::util::{Proc, keygen, wait_for};

/// The port every chat of these tests binds (each LAN is a world of its
/// own).
const PORT: u16 = 9000;

/// How soon a message typed after its sender moved must be shown by the
/// other side and acknowledged (issue 18).
const AFTER_A_MOVE: Duration = Duration::from_millis(1500);

/// The address the moving host takes in place of its own.
const NEW_ADDR: &str = "10.77.0.50";

/// `ip:PORT`.
fn at(ip: impl std::fmt::Display) -> SocketAddr {
    format!("{ip}:{PORT}").parse().unwrap()
}

/// Runs `ip ARGS…` in host `i`'s namespace; the error says what failed.
fn ip(lan: &Lan, i: usize, args: &[&str]) -> Result<String, String> {
    let output = lan
        .command(i, "ip", args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A keyed chat on host `host` talking to `peer`, its input a pipe left
/// open, printing JSON events (`json`) or what a person reads. Bound to
/// the wildcard address (0.0.0.0, what `--peer` binds by default) so that
/// its source address follows the host's; the port is fixed only so that
/// the other side can name it.
fn keyed_chat(
    lan: &Lan,
    host: usize,
    name: &str,
    key: &Path,
    peer: SocketAddr,
    json: bool,
) -> Proc {
    let bind = format!("0.0.0.0:{PORT}");
    let peer = peer.to_string();
    let mut args = vec![
        "chat",
        "--bind",
        &bind,
        "--peer",
        &peer,
        "--key-file",
        key.to_str().unwrap(),
        "--name",
        name,
        "--no-history",
        "--linger",
        "500",
    ];
    if json {
        args.push("--json");
    }
    let mut proc = lan.dgram(host, &args);
    if json {
        let listening = proc.next("listening");
        assert_eq!(listening["local"], bind, "{}", proc.dump());
    } else {
        proc.wait_stdout_contains(&format!("chat on {bind}, peer {peer}"));
    }
    proc
}

/// Ann on host 0 and bob on host 1, in a secure session from one key file.
fn ann_and_bob(lan: &Lan, key_name: &str) -> (Proc, Proc) {
    let key = keygen(key_name);
    let ann = keyed_chat(lan, 0, "ann", &key, at(lan.addr(1)), true);
    let bob = keyed_chat(lan, 1, "bob", &key, at(lan.addr(0)), true);
    for proc in [&ann, &bob] {
        wait_for(
            "the secure session",
            || proc.dump(),
            || proc.events("session_opened").into_iter().next(),
        );
    }
    (ann, bob)
}

/// The messages `proc` showed (its `message` events that are not marked
/// as copies), in order: (name, seq, text).
fn shown(proc: &Proc) -> Vec<(String, u64, String)> {
    proc.events("message")
        .into_iter()
        .filter(|m| m["duplicate"] != true)
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `proc` shows a message with `text` and returns its event.
fn wait_shown(proc: &Proc, text: &str) -> Value {
    wait_for(
        &format!("message {text:?} to be shown"),
        || proc.dump(),
        || {
            proc.events("message")
                .into_iter()
                .find(|m| m["text"] == text && m["duplicate"] != true)
        },
    )
}

/// Waits for the final state of message `seq` sent by `proc` and returns
/// its status.
fn wait_final(proc: &Proc, seq: u64) -> String {
    wait_for(
        &format!("the final state of #{seq}"),
        || proc.dump(),
        || {
            proc.events("receipt")
                .into_iter()
                .find(|r| r["seq"] == seq && r["status"] != "late")
                .map(|r| r["status"].as_str().unwrap().to_string())
        },
    )
}

/// The number given to the message with `text` that `proc` sent.
fn seq_of(proc: &Proc, text: &str) -> u64 {
    wait_for(
        &format!("message {text:?} to be sent"),
        || proc.dump(),
        || {
            proc.events("sent")
                .into_iter()
                .find(|s| s["kind"] == "message" && s["text"] == text)
                .and_then(|s| s["seq"].as_u64())
        },
    )
}

/// The messages of `sender` that `receiver` showed, by number; fails if
/// a number was shown twice (a copy not marked as one).
fn shown_once(receiver: &Proc, sender: &str, other: &Proc) -> BTreeMap<u64, String> {
    let mut by_seq = BTreeMap::new();
    for (name, seq, text) in shown(receiver) {
        if name != sender {
            continue;
        }
        let before = by_seq.insert(seq, text);
        assert!(
            before.is_none(),
            "#{seq} shown twice\n{}\n=== other side\n{}",
            receiver.dump(),
            other.dump()
        );
    }
    by_seq
}

/// Both sides' dumps, for failure messages.
fn both(ann: &Proc, bob: &Proc) -> String {
    format!("{}\n=== bob\n{}", ann.dump(), bob.dump())
}

/// Ends a chat (end of input) and checks it exited 0: every message it
/// sent was delivered.
fn end(proc: &mut Proc) {
    proc.close_stdin();
    let status = proc.finish();
    assert!(status.success(), "{}", proc.dump());
}

/// Host 1 (bob's) changes its address: [`NEW_ADDR`] added on its veth,
/// its own (10.77.0.2) removed.
fn readdress_bob(lan: &Lan) {
    // The old address is the interface's primary one: without this,
    // deleting it deletes the new (secondary) one of the same subnet too.
    let promote = "net.ipv4.conf.eth0.promote_secondaries=1";
    let set = lan.command(1, "sysctl", &["-qw", promote]).status();
    assert!(
        set.as_ref().is_ok_and(|s| s.success()),
        "sysctl -w {promote}: {set:?}"
    );
    let new_cidr = format!("{NEW_ADDR}/24");
    let old_cidr = format!("{}/24", lan.addr(1));
    ip(lan, 1, &["addr", "add", &new_cidr, "dev", "eth0"]).expect("new address");
    ip(lan, 1, &["addr", "del", &old_cidr, "dev", "eth0"]).expect("old address removed");
    let addrs = ip(lan, 1, &["-4", "-o", "addr", "show", "dev", "eth0"]).unwrap();
    assert!(
        addrs.contains(&new_cidr) && !addrs.contains(&old_cidr),
        "B's addresses: {addrs}"
    );
}

/// What [`move_bob`] measured, from the moment bob's first line after the
/// move was typed.
struct Move {
    /// Until ann showed it.
    shown: Duration,
    /// Until ann followed bob (`peer_moved`).
    followed: Duration,
    /// Until bob had its receipt.
    acknowledged: Duration,
    /// Copies of it bob sent.
    copies: usize,
}

/// Ann (host 0) and bob (host 1) each say something; then host 1's
/// address changes (10.77.0.2 removed, [`NEW_ADDR`] added on its veth) and
/// bob says something, then ann; both chats end. Checks, on the way, that
/// each message is shown and delivered and that ann follows bob to its
/// new address; returns the ended chats and the figures.
fn move_bob(lan: &Lan, key_name: &str) -> (Proc, Proc, Move) {
    let (mut ann, mut bob) = ann_and_bob(lan, key_name);
    let (old, new) = (at(lan.addr(1)), at(NEW_ADDR));

    bob.write_line("bob before the move");
    ann.write_line("ann before the move");
    wait_shown(&ann, "bob before the move");
    wait_shown(&bob, "ann before the move");
    for (proc, text) in [(&bob, "bob before the move"), (&ann, "ann before the move")] {
        assert_eq!(
            wait_final(proc, seq_of(proc, text)),
            "delivered",
            "{}",
            proc.dump()
        );
    }

    readdress_bob(lan);

    let typed = Instant::now();
    bob.write_line("bob after the move");
    let message = wait_shown(&ann, "bob after the move");
    let shown_after = typed.elapsed();
    let moved = wait_for(
        "ann to follow bob",
        || both(&ann, &bob),
        || ann.events("peer_moved").into_iter().next(),
    );
    let followed_after = typed.elapsed();
    let seq = seq_of(&bob, "bob after the move");
    let status = wait_final(&bob, seq);
    let acknowledged_after = typed.elapsed();
    assert_eq!(status, "delivered", "{}", both(&ann, &bob));
    assert!(
        shown_after <= AFTER_A_MOVE && acknowledged_after <= AFTER_A_MOVE,
        "shown after {shown_after:?}, acknowledged after {acknowledged_after:?}\n{}",
        both(&ann, &bob)
    );
    assert_eq!(message["name"], "bob");
    assert_eq!(moved["name"], "bob", "{}", both(&ann, &bob));
    assert_eq!(moved["from"], old.to_string(), "{}", both(&ann, &bob));
    assert_eq!(moved["to"], new.to_string(), "{}", both(&ann, &bob));
    let challenged = wait_for(
        "bob to be told where it is seen",
        || bob.dump(),
        || bob.events("path_challenged").into_iter().next(),
    );
    assert_eq!(challenged["peer"], at(lan.addr(0)).to_string());
    assert_eq!(challenged["seen"], new.to_string(), "{}", both(&ann, &bob));

    // Ann's next message goes to bob's new address, and gets there.
    ann.write_line("ann after the move");
    let after = seq_of(&ann, "ann after the move");
    wait_shown(&bob, "ann after the move");
    assert_eq!(wait_final(&ann, after), "delivered", "{}", both(&ann, &bob));
    let to: Vec<Value> = ann
        .events("sent")
        .into_iter()
        .filter(|s| s["kind"] == "message" && s["seq"] == after)
        .map(|s| s["to"].clone())
        .collect();
    assert!(
        !to.is_empty() && to.iter().all(|t| *t == new.to_string()),
        "ann's message went to {to:?}\n{}",
        both(&ann, &bob)
    );

    end(&mut bob);
    end(&mut ann);
    let copies = bob
        .events("sent")
        .iter()
        .filter(|s| s["kind"] == "message" && s["seq"] == seq)
        .count();
    let figures = Move {
        shown: shown_after,
        followed: followed_after,
        acknowledged: acknowledged_after,
        copies,
    };
    (ann, bob, figures)
}

/// Host B's address changes mid-chat (a new address on its veth, the old
/// one removed), and the next message B types is shown by A and
/// acknowledged within 1.5 s of being typed; A checks the new address and
/// then follows B there (`peer_moved` from the old address to the new),
/// B is told it was seen there (`path_challenged`, `seen` the new address);
/// A's next message goes to B's new address and is delivered; every
/// message is shown exactly once (none lost, none twice), only A says
/// someone moved, and both chats exit 0 (every message delivered).
#[test]
fn a_host_whose_address_changes_is_followed() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let (ann, bob, figures) = move_bob(&lan, "roaming-key");
    // Shown once each, none lost: bob's two messages at ann, ann's two at
    // bob, numbered 1 and 2.
    let from_bob = shown_once(&ann, "bob", &bob);
    let from_ann = shown_once(&bob, "ann", &ann);
    let expected = |who: &str| {
        BTreeMap::from([
            (1, format!("{who} before the move")),
            (2, format!("{who} after the move")),
        ])
    };
    assert_eq!(from_bob, expected("bob"), "{}", both(&ann, &bob));
    assert_eq!(from_ann, expected("ann"), "{}", both(&ann, &bob));
    assert_eq!(ann.events("peer_moved").len(), 1, "{}", both(&ann, &bob));
    assert!(bob.events("peer_moved").is_empty(), "{}", both(&ann, &bob));
    for proc in [&ann, &bob] {
        let summary = proc.first_event("summary");
        assert_eq!(summary["messages"], 2, "{}", both(&ann, &bob));
        assert_eq!(summary["lost"], 0, "{}", both(&ann, &bob));
        assert_eq!(summary["delivered"], 2, "{}", both(&ann, &bob));
        assert_eq!(summary["failed"], 0, "{}", both(&ann, &bob));
    }
    eprintln!(
        "after the move: shown by ann after {:.1} ms, followed after {:.1} ms, acknowledged to bob after {:.1} ms ({} copies sent)",
        figures.shown.as_secs_f64() * 1000.0,
        figures.followed.as_secs_f64() * 1000.0,
        figures.acknowledged.as_secs_f64() * 1000.0,
        figures.copies,
    );
}

/// What people read: after host B's address changed and B said
/// something, A's screen says B moved to its new address, and B's says A
/// sees it there now and checked it (the lines of `peer_moved` and
/// `path_challenged`).
#[test]
fn both_screens_say_who_moved() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let key = keygen("screens-key");
    let mut ann = keyed_chat(&lan, 0, "ann", &key, at(lan.addr(1)), false);
    let mut bob = keyed_chat(&lan, 1, "bob", &key, at(lan.addr(0)), false);
    bob.write_line("bob before the move");
    ann.wait_stdout_contains("bob before the move");
    readdress_bob(&lan);
    bob.write_line("bob after the move");
    ann.wait_stdout_contains("bob after the move");
    ann.wait_stdout_contains(&format!(
        "!! bob ({}) moved to {}",
        at(lan.addr(1)),
        at(NEW_ADDR)
    ));
    bob.wait_stdout_contains(&format!(
        "-- {} sees this side at {} now",
        at(lan.addr(0)),
        at(NEW_ADDR)
    ));
    end(&mut bob);
    end(&mut ann);
    // One move, said once, by the side that followed it.
    assert_eq!(
        ann.stdout().matches("moved to").count(),
        1,
        "{}",
        ann.dump()
    );
    assert_eq!(
        bob.stdout().matches("moved to").count(),
        0,
        "{}",
        bob.dump()
    );
}

/// After a move, the summary has one row for the peer, at its new
/// address, with everything it sent and was sent. (This failed before the
/// peer table learned to merge rows: ann's `sent` event for the path
/// challenge to bob's new address made a row for that address before
/// `peer_moved` came, and the move left bob in two rows.)
#[test]
fn after_a_move_the_summary_has_one_row_for_the_peer() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let (ann, bob, _) = move_bob(&lan, "roaming-summary-key");
    let summary = ann.first_event("summary");
    let rows = summary["peers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", both(&ann, &bob));
    let row = &rows[0];
    assert_eq!(row["peer"], at(NEW_ADDR).to_string(), "{summary}");
    assert_eq!(row["name"], "bob", "{summary}");
    assert_eq!(row["messages"], 2, "{summary}");
    assert_eq!(row["messages_sent"], 2, "{summary}");
    assert_eq!(row["delivered"], 2, "{summary}");
}

/// Prints every UDP datagram arriving on host 0's `eth0` as a JSON line
/// (`from`, destination `port`, payload `hex`): a packet socket sees it
/// before nftables does, so it sees the datagrams a rule then drops.
const SNIFFER: &str = r#"
import json, socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("eth0", 0))
print("ready", flush=True)
while True:
    packet, where = s.recvfrom(65535)
    if where[2] == socket.PACKET_OUTGOING or packet[9] != 17:
        continue
    start = (packet[0] & 15) * 4
    udp = packet[start:int.from_bytes(packet[2:4], "big")]
    source = "%s:%d" % (socket.inet_ntoa(packet[12:16]), int.from_bytes(udp[0:2], "big"))
    port = int.from_bytes(udp[2:4], "big")
    print(json.dumps({"from": source, "port": port, "hex": udp[8:].hex()}), flush=True)
"#;

/// On the third host: sends each hex line of its input from port 7000 to
/// `argv[1]`, port 9000, and prints every datagram that comes to it (JSON:
/// `from`, `len`) until its input ends.
const THIRD_HOST: &str = r#"
import json, socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 7000))
def listen():
    while True:
        data, peer = s.recvfrom(65535)
        print(json.dumps({"from": "%s:%d" % peer, "len": len(data)}), flush=True)
threading.Thread(target=listen, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    s.sendto(bytes.fromhex(line.strip()), (sys.argv[1], 9000))
"#;

/// The secured datagrams (kind 7) the sniffer saw come from `from` to port
/// 9000, from the `skip`th line it printed on, as bytes in hex.
fn captured(sniffer: &Proc, from: SocketAddr, skip: usize) -> Vec<String> {
    sniffer
        .stdout()
        .lines()
        .skip(skip)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|d| d["from"] == from.to_string() && d["port"] == PORT)
        .filter_map(|d| d["hex"].as_str().map(str::to_string))
        .filter(|hex| hex.starts_with("f50107"))
        .collect()
}

/// A third host sends ann copies of bob's authentic datagrams. A copy of
/// one ann took already (a replay) is refused as `replay`, answered with
/// nothing, and moves nothing. A copy of one withheld from ann (nftables
/// drops everything from bob's host for a moment, after a packet socket
/// saw it on the wire) and sent first from the third host is authentic and
/// the newest: ann shows it and challenges the third host, which cannot
/// answer for bob, so nothing moves there either: no `peer_moved`, no
/// `path_challenged` at bob, the third host gets no more bytes than the
/// withheld copy it sent, every message of ann's still goes to bob's own
/// address and is delivered, and each message is shown exactly once.
#[test]
fn a_copy_sent_from_a_third_host_moves_nothing() {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let mut sniffer = lan.spawn(0, "python3", &["-c", SNIFFER]);
    sniffer.wait_stdout_contains("ready");
    let ann_addr = at(lan.addr(0)).ip().to_string();
    let mut third = lan.spawn(2, "python3", &["-c", THIRD_HOST, &ann_addr]);
    third.wait_stdout_contains("ready");
    let third_addr: SocketAddr = format!("{}:7000", lan.addr(2)).parse().unwrap();
    let (mut ann, mut bob) = ann_and_bob(&lan, "spoof-key");
    let bob_addr = at(lan.addr(1));

    bob.write_line("bob first");
    wait_shown(&ann, "bob first");
    assert_eq!(wait_final(&bob, seq_of(&bob, "bob first")), "delivered");

    // A replay: the longest (the message) of what ann took from bob.
    let replay = captured(&sniffer, bob_addr, 0)
        .into_iter()
        .max_by_key(String::len)
        .unwrap_or_else(|| panic!("nothing captured from bob\n{}", sniffer.dump()));
    third.write_line(&replay);
    let rejected = wait_for(
        "ann to refuse the replay",
        || both(&ann, &third),
        || ann.events("rejected").into_iter().next(),
    );
    assert_eq!(rejected["reason"], "replay", "{}", ann.dump());
    assert_eq!(rejected["from"], third_addr.to_string(), "{}", ann.dump());
    assert_eq!(rejected["len"], replay.len() / 2, "{}", ann.dump());

    // Withheld: bob's next message never reaches ann from bob; its first
    // copy goes to ann from the third host.
    lan.drop_arriving(0, &format!("ip saddr {}", lan.addr(1)))
        .expect("nftables rule");
    let seen_before = sniffer.stdout().lines().count();
    bob.write_line("bob withheld");
    let withheld = wait_for(
        "bob's withheld message on the wire",
        || sniffer.dump(),
        || captured(&sniffer, bob_addr, seen_before).into_iter().next(),
    );
    third.write_line(&withheld);
    wait_shown(&ann, "bob withheld");
    // The third host was challenged (its copy was the newest), and that is
    // all it can do.
    wait_for(
        "a challenge at the third host",
        || third.dump(),
        || {
            third
                .stdout()
                .contains(&format!("\"from\": \"{ann_addr}:{PORT}\""))
                .then_some(())
        },
    );
    lan.command(0, "nft", &["delete", "table", "inet", "loss"])
        .status()
        .expect("nft runs");
    assert_eq!(
        wait_final(&bob, seq_of(&bob, "bob withheld")),
        "delivered",
        "{}",
        both(&ann, &bob)
    );
    ann.write_line("ann still here");
    wait_shown(&bob, "ann still here");
    assert_eq!(
        wait_final(&ann, seq_of(&ann, "ann still here")),
        "delivered",
        "{}",
        both(&ann, &bob)
    );
    end(&mut bob);
    end(&mut ann);
    third.close_stdin();
    third.finish();
    sniffer.kill();

    assert!(ann.events("peer_moved").is_empty(), "{}", both(&ann, &bob));
    assert!(
        bob.events("path_challenged").is_empty(),
        "{}",
        both(&ann, &bob)
    );
    let refused: Vec<Value> = ann.events("rejected");
    assert_eq!(refused.len(), 1, "{}", ann.dump());
    // What went to the third host: no more than the withheld copy paid
    // for (the replay pays for nothing).
    let to_third: u64 = third
        .stdout()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|d| d["len"].as_u64().unwrap())
        .sum();
    assert!(
        to_third > 0 && to_third <= withheld.len() as u64 / 2,
        "{to_third} bytes to the third host for a {}-byte copy\n{}",
        withheld.len() / 2,
        third.dump()
    );
    // Every message of ann's went to bob where bob is.
    for sent in ann.events("sent") {
        let to = sent["to"].as_str().unwrap();
        assert!(
            to == bob_addr.to_string()
                || (to == third_addr.to_string() && sent["kind"] != "message"),
            "ann sent {sent}\n{}",
            ann.dump()
        );
    }
    let from_bob = shown_once(&ann, "bob", &bob);
    assert_eq!(
        from_bob,
        BTreeMap::from([
            (1, "bob first".to_string()),
            (2, "bob withheld".to_string())
        ]),
        "{}",
        both(&ann, &bob)
    );
    assert_eq!(
        shown_once(&bob, "ann", &ann),
        BTreeMap::from([(1, "ann still here".to_string())]),
        "{}",
        both(&ann, &bob)
    );
    eprintln!(
        "third host: a replay refused ({}), a withheld copy of {} bytes shown and challenged there; {to_third} bytes went back to it; no move",
        rejected["reason"],
        withheld.len() / 2
    );
}
