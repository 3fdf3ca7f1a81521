//! NAT in namespaces, the first piece of the NAT lab (issue 19): a home
//! host behind a router namespace that masquerades onto a LAN of
//! [`Lan`], with a home router's input policy (drop what is not an answer
//! or from inside) and a short UDP conntrack timeout, so that a mapping
//! that is not kept open expires within the test.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::netns::{Lan, sh};
use serde_json::Value;

use crate::util::{Proc, dgram_path, keygen, temp_path};

/// The home network behind a router.
const HOME_NET: &str = "192.168.77";

/// A host behind a NAT router, in a namespace of its own, removed on drop.
struct Home {
    name: String,
}

impl Home {
    /// A home host behind LAN host `router`, which becomes its NAT: its
    /// LAN side (`eth0`, the "internet") masquerades what the home sends,
    /// its input and forward chains drop what is neither from the home nor
    /// an answer, and UDP mappings expire after `timeout_s` seconds.
    fn behind(lan: &Lan, router: usize, timeout_s: u32) -> Result<Home, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let home = Home {
            name: format!("dgram-home-{}-{n}", std::process::id()),
        };
        let router_ns = lan.name(router);
        sh(&["ip", "netns", "add", &home.name])?;
        sh(&["ip", "-n", &home.name, "link", "set", "lo", "up"])?;
        sh(&[
            "ip", "-n", router_ns, "link", "add", "lan", "type", "veth", "peer", "name", "hh",
        ])?;
        sh(&[
            "ip", "-n", router_ns, "link", "set", "hh", "netns", &home.name,
        ])?;
        sh(&["ip", "-n", &home.name, "link", "set", "hh", "name", "eth0"])?;
        let router_lan = format!("{HOME_NET}.1/24");
        let host = format!("{HOME_NET}.2/24");
        sh(&[
            "ip",
            "-n",
            router_ns,
            "addr",
            "add",
            &router_lan,
            "dev",
            "lan",
        ])?;
        sh(&["ip", "-n", router_ns, "link", "set", "lan", "up"])?;
        sh(&["ip", "-n", &home.name, "addr", "add", &host, "dev", "eth0"])?;
        sh(&["ip", "-n", &home.name, "link", "set", "eth0", "up"])?;
        let gateway = format!("{HOME_NET}.1");
        sh(&[
            "ip", "-n", &home.name, "route", "add", "default", "via", &gateway,
        ])?;
        // `fwd` is an nft keyword: the chain is called `forward`.
        let rules = temp_path(&format!("{}.nft", home.name));
        std::fs::write(
            &rules,
            "table ip nat {\n\
               chain post { type nat hook postrouting priority srcnat; oifname \"eth0\" masquerade; }\n\
             }\n\
             table inet home {\n\
               chain input { type filter hook input priority 0; policy drop;\n\
                 iifname \"lo\" accept; iifname \"lan\" accept; ct state established,related accept; }\n\
               chain forward { type filter hook forward priority 0; policy drop;\n\
                 iifname \"lan\" accept; ct state established,related accept; }\n\
             }\n",
        )
        .map_err(|e| format!("{}: {e}", rules.display()))?;
        let rules = rules.to_str().unwrap().to_string();
        sh(&["ip", "netns", "exec", router_ns, "nft", "-f", &rules])?;
        // The conntrack sysctls exist once the rules above loaded it; a
        // flow with answers is a "stream" and has its own timeout.
        for key in [
            "net.ipv4.ip_forward=1".to_string(),
            format!("net.netfilter.nf_conntrack_udp_timeout={timeout_s}"),
            format!("net.netfilter.nf_conntrack_udp_timeout_stream={timeout_s}"),
        ] {
            sh(&["ip", "netns", "exec", router_ns, "sysctl", "-qw", &key])?;
        }
        Ok(home)
    }

    /// Starts `dgram ARGS…` on the home host.
    fn dgram(&self, args: &[&str]) -> Proc {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name, dgram_path()])
            .args(args);
        Proc::start(command)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "delete", &self.name]);
    }
}

/// A keyed chat between the home host (port 9001, with `near_extra`
/// options) and LAN host 1 (port 9000, which has the home router's public
/// address as its peer and tries its own handshake once), both piped with
/// `--json`, once both said their session opened. Returns (outside host,
/// home host, the home host's public address).
fn keyed_pair(lan: &Lan, home: &Home, key: &str, near_extra: &[&str]) -> (Proc, Proc, String) {
    let public = format!("{}:9001", lan.addr(0));
    let outside = format!("{}:9000", lan.addr(1));
    let mut far = lan.dgram(
        1,
        &[
            "chat",
            "--bind",
            "0.0.0.0:9000",
            "--peer",
            &public,
            "--key-file",
            key,
            "--json",
            "--no-history",
            "--retries",
            "1",
            "--linger",
            "0",
        ],
    );
    lan.wait_bound(1, 9000, &far);
    let mut args = vec![
        "chat",
        "--bind",
        "0.0.0.0:9001",
        "--peer",
        &outside,
        "--key-file",
        key,
        "--json",
        "--no-history",
        "--linger",
        "0",
    ];
    args.extend_from_slice(near_extra);
    let mut near = home.dgram(&args);
    let opened = far.next("session_opened");
    assert_eq!(
        opened["peer"].as_str(),
        Some(public.as_str()),
        "the router kept the home's port\n{}",
        far.dump()
    );
    near.next("session_opened");
    (far, near, public)
}

/// A keyed chat from a home host behind a NAT (UDP mappings expire after
/// 3 s) to a host on the other side, which can reach it only through the
/// router's mapping. Both idle for 7 s after the session opened; then the
/// outside host sends a message. With `--keepalive 1s` at the home host
/// the mapping stays open and the message arrives (and the outside host
/// counted the keepalives); without it the mapping expired, the router
/// drops the message, and it fails after its tries, never shown at home
/// (the outside host saw at most the keepalive that confirms the keys).
#[test]
fn a_keepalive_keeps_the_nat_mapping_open() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let home = Home::behind(&lan, 0, 3).expect("a home behind host 0");
    let key = keygen("nat-keepalive.key");
    let key = key.to_str().unwrap();
    for keepalive in [true, false] {
        let extra: &[&str] = if keepalive {
            &["--keepalive", "1s"]
        } else {
            &[]
        };
        let (mut far, mut near, _) = keyed_pair(&lan, &home, key, extra);
        // The idle time is what is tested: more than twice the mapping's
        // timeout.
        let idle = Instant::now();
        std::thread::sleep(Duration::from_secs(7));
        assert!(idle.elapsed() >= Duration::from_secs(7));
        far.write_line("after the idle");
        let receipt = far.next("receipt");
        far.close_stdin();
        near.close_stdin();
        assert!(far.finish().code().is_some(), "{}", far.dump());
        near.finish();
        let shown: Vec<String> = near
            .events("message")
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect();
        let keepalives = far
            .events("control")
            .iter()
            .filter(|c| c["what"] == "keepalive")
            .count();
        if keepalive {
            assert_eq!(receipt["status"], "delivered", "{}", far.dump());
            assert_eq!(shown, ["after the idle"], "{}", near.dump());
            assert!(keepalives >= 5, "{keepalives} keepalives\n{}", far.dump());
        } else {
            assert_eq!(receipt["status"], "failed", "{}", far.dump());
            assert!(shown.is_empty(), "{}", near.dump());
            // At most the one that confirms the keys when the home host
            // began the handshake with nothing to send.
            assert!(keepalives <= 1, "{keepalives} keepalives\n{}", far.dump());
        }
    }
}

/// A NAT that rebinds mid-chat: the home host's mapping expires while the
/// chat is idle, and its old public port is taken (a socket on the router
/// sends from it to the outside host, who refuses that plain datagram),
/// so the router maps the home host's next datagram to another port.
/// The outside host shows that message once, challenges the new address, the home host answers from it, and the conversation moves
/// there (`peer_moved` outside, `path_challenged` at home); the outside
/// host's next message reaches the home host through the new mapping.
#[test]
fn a_nat_that_rebinds_moves_the_peer() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let home = Home::behind(&lan, 0, 2).expect("a home behind host 0");
    let key = keygen("nat-rebind.key");
    let key = key.to_str().unwrap();
    let (mut far, mut near, public) = keyed_pair(&lan, &home, key, &[]);
    // The mapping expires (2 s) while nobody sends; then something on the
    // router takes its public port towards the outside host (a flow from
    // that port to that host: the router has to map the home host to
    // another port).
    std::thread::sleep(Duration::from_secs(5));
    let holder = lan.spawn(
        0,
        "python3",
        &[
            "-c",
            &format!(
                "import socket, time\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.bind(('{}', 9001))\n\
                 s.sendto(b'x', ('{}', 9000))\n\
                 print('bound', flush=True)\n\
                 time.sleep(60)",
                lan.addr(0),
                lan.addr(1)
            ),
        ],
    );
    lan.wait_bound(0, 9001, &holder);
    near.write_line("from a new mapping");
    let message = far.next("message");
    assert_eq!(message["text"], "from a new mapping", "{}", far.dump());
    let moved = far.next("peer_moved");
    let new_public = moved["to"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        moved["from"].as_str(),
        Some(public.as_str()),
        "{}",
        far.dump()
    );
    assert_ne!(new_public, public, "{}", far.dump());
    assert!(
        new_public.starts_with(&format!("{}:", lan.addr(0))),
        "{new_public}"
    );
    let challenged = near.next("path_challenged");
    assert_eq!(
        challenged["seen"].as_str(),
        Some(new_public.as_str()),
        "{}",
        near.dump()
    );
    far.write_line("back through it");
    let back = near.next("message");
    assert_eq!(back["text"], "back through it", "{}", near.dump());
    // The home host's message is acknowledged through the new mapping
    // (its first receipt went to the old one: what came from the new
    // address paid for the challenge first), before either side ends.
    let receipt = near.next("receipt");
    assert_eq!(receipt["status"], "delivered", "{}", near.dump());
    near.close_stdin();
    far.close_stdin();
    assert!(near.finish().success(), "{}", near.dump());
    assert!(far.finish().success(), "{}", far.dump());
    let shown_far: Vec<Value> = far.events("message");
    assert_eq!(
        shown_far.iter().filter(|m| m["duplicate"] == false).count(),
        1
    );
    for (proc, who) in [(&near, "near"), (&far, "far")] {
        let receipts = proc.events("receipt");
        assert!(
            receipts.iter().all(|r| r["status"] == "delivered"),
            "{who}: {}",
            proc.dump()
        );
        assert_eq!(receipts.len(), 1, "{who}: {}", proc.dump());
    }
    drop(holder);
}
