//! `dgram lab nat` through the real binary: the facts it measures in the
//! namespaces it builds (masquerade keeps one mapping, fully-random makes
//! one per destination; unsolicited datagrams stay out; an expired mapping
//! drops the late answer and keepalives keep it; only easy–easy punches),
//! that no namespace of its own is left afterwards (also when a signal
//! stops it mid-run), and that without root it says it measured nothing.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::util::{Proc, dgram_path, has, have, wait_for};

/// The namespaces of dgram process `pid`'s NAT lab that exist now.
fn left_by(pid: i32) -> Vec<String> {
    let prefix = format!("dgram-labnat-{pid}-");
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// True when the NAT lab can be measured here (root, `ip`, `nft`, the
/// Linux build); otherwise one SKIPPED line, or a failure in CI.
fn can_measure() -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if !have("ip") {
        Some("ip (iproute2)")
    } else if !have("nft") {
        Some("nft (nftables)")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: dgram lab nat needs {what}");
            false
        }
        Some(what) => panic!("dgram lab nat must be measured in CI: it needs {what}"),
    }
}

/// The reports of one `dgram lab nat --json` run, by part.
fn reports(proc: &Proc) -> Vec<Value> {
    proc.stdout()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn part<'a>(reports: &'a [Value], name: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["experiment"] == name)
        .unwrap_or_else(|| panic!("no {name} report in {reports:?}"))
}

/// As root, `dgram lab nat --json` reports the four parts with the facts a
/// Linux NAT makes true: masquerade gives one socket the same public
/// address (its own port) for three destinations and fully-random three
/// ports; from outside only the server address the host sent to gets in;
/// with a 3 s UDP timeout an answer after 1 s gets in, one after 4.5 s
/// does not, and one after 4.5 s with keepalives does; easy–easy punches
/// through, easy–hard and hard–hard do not. Afterwards no namespace of the
/// run is left, and one left by an ended run (as SIGKILL leaves them) is
/// removed too.
#[test]
fn nat_lab_measures_mapping_filtering_lifetime_and_punching() {
    if !has("icmp_errors") {
        eprintln!("SKIPPED: the portable build measures no NAT (see the test below)");
        return;
    }
    if !can_measure() {
        return;
    }
    // What a run killed with SIGKILL would leave: a namespace of a
    // process that has ended.
    let mut ended = Command::new("true").spawn().unwrap();
    ended.wait().unwrap();
    let stale = format!("dgram-labnat-{}-net", ended.id());
    crate::netns::sh(&["ip", "netns", "add", &stale]).unwrap();
    let mut proc = Proc::dgram(&["lab", "nat", "--json"]);
    let status = proc.finish_within(Duration::from_secs(60));
    let stale_left = !left_by(ended.id() as i32).is_empty();
    if stale_left {
        let _ = crate::netns::sh(&["ip", "netns", "delete", &stale]);
    }
    assert!(status.success(), "{}", proc.dump());
    let pid = proc.pid().as_raw();
    assert_eq!(left_by(pid), Vec::<String>::new(), "{}", proc.dump());
    assert!(!stale_left, "{stale} was left: {}", proc.dump());
    let reports = reports(&proc);
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "nat-mapping",
            "nat-filtering",
            "nat-lifetime",
            "nat-punching"
        ],
        "{}",
        proc.dump()
    );
    for report in &reports {
        // The shape of every lab report (tests/lab.rs).
        let keys: Vec<&str> = report
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "experiment",
                "facts",
                "findings",
                "prediction",
                "table",
                "what"
            ],
            "{report}"
        );
        assert_eq!(report["facts"]["measured"], true, "{report}");
        let columns = report["table"]["columns"].as_array().unwrap().len();
        let rows = report["table"]["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{report}");
        for row in rows {
            assert_eq!(row.as_array().unwrap().len(), columns, "{report}");
        }
    }

    let mapping = &part(&reports, "nat-mapping")["facts"];
    let easy = &mapping["masquerade"];
    let seen: Vec<&str> = easy["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), 3, "{mapping}");
    assert!(seen.iter().all(|s| *s == seen[0]), "{mapping}");
    assert!(
        seen[0].ends_with(&format!(":{}", easy["local_port"])),
        "masquerade keeps the port: {mapping}"
    );
    assert_eq!(easy["same_mapping"], true, "{mapping}");
    let hard = &mapping["fully_random"];
    let mut ports: Vec<&str> = hard["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().rsplit(':').next().unwrap())
        .collect();
    assert_eq!(ports.len(), 3, "{mapping}");
    ports.sort_unstable();
    ports.dedup();
    // Three random ports of ~64,000 could repeat, once in millions of runs.
    assert!(ports.len() >= 2, "fully-random: {mapping}");
    assert_eq!(hard["same_mapping"], false, "{mapping}");

    let filtering = &part(&reports, "nat-filtering")["facts"];
    let sent = filtering["sent_per_source"].as_u64().unwrap();
    let rows = filtering["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{filtering}");
    for kind in ["masquerade", "fully_random"] {
        assert_eq!(rows[0][kind].as_u64(), Some(sent), "{filtering}");
        for row in &rows[1..] {
            assert_eq!(row[kind], 0, "unsolicited, not received: {filtering}");
        }
    }
    assert_eq!(filtering["unsolicited_received"], 0, "{filtering}");

    let lifetime = &part(&reports, "nat-lifetime")["facts"];
    assert_eq!(lifetime["timeout_s"], 3, "{lifetime}");
    assert_eq!(lifetime["early_received"], true, "{lifetime}");
    assert_eq!(lifetime["late_received"], false, "{lifetime}");
    assert_eq!(lifetime["kept_received"], true, "{lifetime}");
    assert!(lifetime["keepalives"].as_u64().unwrap() >= 3, "{lifetime}");

    let pairs = &part(&reports, "nat-punching")["facts"]["pairs"];
    let easy_easy = &pairs["easy-easy"];
    assert_eq!(easy_easy["connected"], true, "{pairs}");
    assert!(easy_easy["a_received"].as_u64().unwrap() > 0, "{pairs}");
    assert!(easy_easy["b_received"].as_u64().unwrap() > 0, "{pairs}");
    for pair in ["easy-hard", "hard-hard"] {
        assert_eq!(pairs[pair]["connected"], false, "{pair}: {pairs}");
        assert_eq!(pairs[pair]["a_received"], 0, "{pair}: {pairs}");
        assert_eq!(pairs[pair]["b_received"], 0, "{pair}: {pairs}");
    }
}

/// SIGTERM or Ctrl-C (SIGINT) while `dgram lab nat` measures: it stops
/// within seconds with 128 + the signal, says so on stderr, and leaves
/// none of its namespaces behind.
#[test]
fn nat_lab_removes_its_namespaces_when_stopped_by_a_signal() {
    if !has("icmp_errors") {
        eprintln!("SKIPPED: the portable build makes no namespace");
        return;
    }
    if !can_measure() {
        return;
    }
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let mut proc = Proc::dgram(&["lab", "nat", "--json"]);
        let pid = proc.pid().as_raw();
        // The last namespace made: the world is built, the parts run.
        let last = format!("dgram-labnat-{pid}-h-hard-b");
        wait_for(
            "the NAT lab's last namespace",
            || proc.dump(),
            || left_by(pid).contains(&last).then_some(()),
        );
        proc.signal(signal);
        let status = proc.finish_within(Duration::from_secs(15));
        assert_eq!(status.code(), Some(code), "{signal}: {}", proc.dump());
        assert!(
            proc.stderr()
                .contains("interrupted; its network namespaces are removed"),
            "{}",
            proc.dump()
        );
        assert_eq!(left_by(pid), Vec::<String>::new(), "{}", proc.dump());
    }
}

/// Ctrl-C at a terminal signals the whole process group: dgram and the
/// `ip` or `nft` it runs at that moment, which then fails. Sent while the
/// namespaces are being made, it is still an interruption (status 130, not
/// a setup error), and nothing is left.
#[test]
fn nat_lab_ctrl_c_during_setup_is_an_interruption() {
    use std::os::unix::process::CommandExt as _;
    if !has("icmp_errors") {
        eprintln!("SKIPPED: the portable build makes no namespace");
        return;
    }
    if !can_measure() {
        return;
    }
    let mut command = Command::new(dgram_path());
    command.args(["lab", "nat", "--json"]).process_group(0);
    let mut proc = Proc::start(command);
    let pid = proc.pid().as_raw();
    wait_for(
        "the NAT lab's first namespace",
        || proc.dump(),
        || (!left_by(pid).is_empty()).then_some(()),
    );
    nix::sys::signal::killpg(proc.pid(), Signal::SIGINT).unwrap();
    let status = proc.finish_within(Duration::from_secs(15));
    assert_eq!(status.code(), Some(130), "{}", proc.dump());
    assert!(
        proc.stderr()
            .contains("interrupted; its network namespaces are removed"),
        "{}",
        proc.dump()
    );
    assert_eq!(left_by(pid), Vec::<String>::new(), "{}", proc.dump());
}

/// Without root (dropped with setpriv when the tests run as root), or in
/// the portable build, `dgram lab nat` makes no namespace, says for each
/// part "not measured here: needs …" (root, or the Linux build), and ends
/// with status 0.
#[test]
fn nat_lab_without_root_is_not_measured() {
    let root = nix::unistd::geteuid().is_root();
    let portable = !has("icmp_errors");
    if root && !portable && !have("setpriv") {
        eprintln!("SKIPPED: running as root, and no setpriv to drop root");
        return;
    }
    let start = |args: &[&str]| {
        if root && !portable {
            let mut command = Command::new("setpriv");
            command
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    dgram_path(),
                ])
                .args(args);
            Proc::start(command)
        } else {
            Proc::dgram(args)
        }
    };
    let needs = if portable {
        "needs Linux"
    } else {
        "needs root"
    };
    let mut text = start(&["lab", "nat"]);
    assert!(
        text.finish_within(Duration::from_secs(10)).success(),
        "{}",
        text.dump()
    );
    assert_eq!(
        text.stdout()
            .matches(&format!("verdict: not measured here: {needs}"))
            .count(),
        4,
        "{}",
        text.dump()
    );
    let mut json = start(&["lab", "nat", "--json"]);
    assert!(
        json.finish_within(Duration::from_secs(10)).success(),
        "{}",
        json.dump()
    );
    let reports = reports(&json);
    assert_eq!(reports.len(), 4, "{}", json.dump());
    for report in &reports {
        assert_eq!(report["facts"]["measured"], false, "{report}");
        for finding in report["findings"].as_array().unwrap() {
            assert_eq!(finding["verdict"], "not_measured", "{finding}");
            assert!(
                finding["condition"].as_str().unwrap().starts_with(needs),
                "{finding}"
            );
        }
    }
    if have("ip") {
        assert_eq!(left_by(json.pid().as_raw()), Vec::<String>::new());
    }
}
