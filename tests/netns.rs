//! Hosts of our own: network namespaces that the tests make and remove, so
//! that real loss (nftables on the receiving side's input hook) and real
//! multicast and broadcast (a bridge between veth pairs) can be tried
//! without touching any network but theirs.
//!
//! A [`Lan`] of N hosts: `dgram-h{i}-{id}` namespaces, each with `lo` up and
//! one veth (`eth0`) whose other end sits on a bridge in a switch namespace
//! (`dgram-sw-{id}`), addressed 10.77.0.{i+1}/24. Every LAN is a world of
//! its own, so two tests may use the same addresses at once. The bridge
//! floods multicast to every port (snooping off), as a plain switch would.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::util::{Proc, dgram_path, wait_for};

/// The subnet every LAN uses (each in its own namespaces).
pub const SUBNET: &str = "10.77.0";

/// Runs a setup command; the error says what failed.
pub fn sh(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Namespaces of our own, removed on drop.
pub struct Lan {
    /// The hosts' namespaces, in order.
    names: Vec<String>,
    /// The switch's namespace (absent for a single host).
    switch: Option<String>,
}

impl Lan {
    /// `hosts` namespaces; with more than one, joined by a bridge.
    pub fn new(hosts: usize) -> Result<Lan, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let lan = Lan {
            names: (0..hosts).map(|i| format!("dgram-h{i}-{id}")).collect(),
            switch: (hosts > 1).then(|| format!("dgram-sw-{id}")),
        };
        // Built step by step; on failure, `lan` is dropped and removes what
        // was made.
        for name in lan.names.iter().chain(&lan.switch) {
            sh(&["ip", "netns", "add", name])?;
        }
        for name in &lan.names {
            sh(&["ip", "-n", name, "link", "set", "lo", "up"])?;
            // IPv6 addresses usable at once (no duplicate address
            // detection on a LAN of our own).
            for key in ["all", "default"] {
                let dad = format!("net.ipv6.conf.{key}.accept_dad=0");
                sh(&["ip", "netns", "exec", name, "sysctl", "-qw", &dad])?;
            }
        }
        let Some(switch) = lan.switch.clone() else {
            return Ok(lan);
        };
        sh(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        sh(&[
            "ip",
            "-n",
            &switch,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        sh(&["ip", "-n", &switch, "link", "set", "br0", "up"])?;
        for (i, name) in lan.names.clone().iter().enumerate() {
            // Made in the switch's namespace (names there are ours alone),
            // then one end moved to the host and renamed eth0.
            let (port, dev) = (format!("p{i}"), format!("h{i}"));
            sh(&[
                "ip", "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", &dev,
            ])?;
            sh(&["ip", "-n", &switch, "link", "set", &dev, "netns", name])?;
            sh(&["ip", "-n", name, "link", "set", &dev, "name", "eth0"])?;
            sh(&["ip", "-n", &switch, "link", "set", &port, "master", "br0"])?;
            sh(&["ip", "-n", &switch, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", lan.addr(i));
            sh(&["ip", "-n", name, "addr", "add", &addr, "dev", "eth0"])?;
            sh(&["ip", "-n", name, "link", "set", "eth0", "up"])?;
        }
        Ok(lan)
    }

    /// The LAN, or why there is none. In CI (`CI=true`) namespaces must
    /// work: the test fails rather than skip.
    pub fn or_skip(hosts: usize) -> Option<Lan> {
        match Lan::new(hosts) {
            Ok(lan) => Some(lan),
            Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!(
                    "SKIPPED: network namespaces cannot be made here (root, iproute2 and nftables needed): {why}"
                );
                None
            }
            Err(why) => panic!("network namespaces are needed in CI: {why}"),
        }
    }

    /// Host `i`'s namespace.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Host `i`'s address on the LAN.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        format!("{SUBNET}.{}", i + 1).parse().unwrap()
    }

    /// The LAN's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        format!("{SUBNET}.255").parse().unwrap()
    }

    /// Runs nft in host `i`'s namespace.
    fn nft(&self, i: usize, rest: &[&str]) -> Result<(), String> {
        let mut args = vec!["ip", "netns", "exec", &self.names[i], "nft"];
        args.extend_from_slice(rest);
        sh(&args)
    }

    /// Drops UDP datagrams arriving at host `i` that match `rule` (nft rule
    /// text, before `counter drop`). On the input hook: a drop on output
    /// would fail the sender's `sendto` with `EPERM` instead of losing the
    /// datagram silently, as a network does.
    pub fn drop_arriving(&self, i: usize, rule: &str) -> Result<(), String> {
        self.filter_arriving(i, &format!("{rule} counter drop"))
    }

    /// Answers every UDP datagram arriving at host `i` with an ICMP error
    /// of type `icmp` (nft's names: `net-unreachable`, `admin-prohibited`…)
    /// instead of taking it, as a router or firewall on the way would.
    pub fn reject_arriving(&self, i: usize, icmp: &str) -> Result<(), String> {
        self.filter_arriving(i, &format!("counter reject with icmp type {icmp}"))
    }

    /// Adds `rule` (with its verdict) for UDP arriving at host `i`.
    fn filter_arriving(&self, i: usize, rule: &str) -> Result<(), String> {
        self.nft(i, &["add", "table", "inet", "loss"])?;
        self.nft(
            i,
            &[
                "add",
                "chain",
                "inet",
                "loss",
                "input",
                "{ type filter hook input priority 0; policy accept; }",
            ],
        )?;
        let rule = format!("add rule inet loss input meta l4proto udp {rule}");
        let words: Vec<&str> = rule.split_whitespace().collect();
        self.nft(i, &words)
    }

    /// Drops `percent`% of the UDP datagrams arriving at host `i`, at
    /// random.
    pub fn lose_percent(&self, i: usize, percent: u32) -> Result<(), String> {
        self.drop_arriving(i, &format!("numgen random mod 100 < {percent}"))
    }

    /// The datagrams nftables dropped at host `i`.
    pub fn dropped(&self, i: usize) -> u64 {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.names[i],
                "nft",
                "list",
                "table",
                "inet",
                "loss",
            ])
            .output()
            .expect("nft runs");
        let text = String::from_utf8_lossy(&output.stdout);
        text.split("packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The UDP datagrams host `i`'s kernel dropped because a socket's
    /// receive buffer was full (`RcvbufErrors` in the namespace's own
    /// `/proc/net/snmp`): counted whatever the program could see, so a
    /// build without `SO_RXQ_OVFL` (the portable one) can be checked too.
    pub fn rcvbuf_errors(&self, i: usize) -> u64 {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.names[i], "cat", "/proc/net/snmp"])
            .output()
            .expect("cat /proc/net/snmp runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut udp = text.lines().filter(|line| line.starts_with("Udp: "));
        let (names, values) = (udp.next().unwrap_or(""), udp.next().unwrap_or(""));
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "RcvbufErrors")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or_else(|| panic!("no Udp RcvbufErrors in /proc/net/snmp:\n{text}"))
    }

    /// `program ARGS…` to be run in host `i`'s namespace.
    pub fn command(&self, i: usize, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.names[i], program])
            .args(args);
        command
    }

    /// Starts `dgram ARGS…` in host `i`'s namespace.
    pub fn dgram(&self, i: usize, args: &[&str]) -> Proc {
        Proc::start(self.command(i, dgram_path(), args))
    }

    /// Waits until something in host `i`'s namespace is bound to UDP port
    /// `port` (for peers that do not say when they are ready).
    pub fn wait_bound(&self, i: usize, port: u16, peer: &Proc) {
        let wanted = format!(":{port:04X} ");
        wait_for(
            &format!("UDP port {port} to be bound in {}", self.names[i]),
            || peer.dump(),
            || {
                let output = self.command(i, "cat", &["/proc/net/udp"]).output().ok()?;
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .skip(1)
                    .any(|line| {
                        line.split_whitespace()
                            .nth(1)
                            .is_some_and(|a| format!("{a} ").ends_with(&wanted))
                    })
                    .then_some(())
            },
        );
    }

    /// Starts any program in host `i`'s namespace.
    pub fn spawn(&self, i: usize, program: &str, args: &[&str]) -> Proc {
        Proc::start(self.command(i, program, args))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and so their
        // peers.
        for name in self.names.iter().chain(&self.switch) {
            let _ = sh(&["ip", "netns", "delete", name]);
        }
    }
}
