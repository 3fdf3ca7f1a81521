//! `dgram lab`: each experiment's verdict and invariants (counts add up,
//! 65,507 passes and 65,508 fails, effective = twice the request below the
//! clamp), the `--json` shape, the Markdown report and the SVG chart. No
//! timing is asserted.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{has, run, temp_path};

/// Runs `dgram lab --json ARGS…` and returns the reports by experiment.
fn lab(args: &[&str]) -> BTreeMap<String, Value> {
    let mut all = vec!["lab", "--json"];
    all.extend_from_slice(args);
    let proc = run(&all);
    assert!(proc.finish_ok(), "{}", proc.dump());
    proc.stdout()
        .lines()
        .map(|line| {
            let report: Value = serde_json::from_str(line).expect("one JSON object per line");
            (report["experiment"].as_str().unwrap().to_string(), report)
        })
        .collect()
}

/// The verdict of the finding whose claim contains `words`.
fn verdict(report: &Value, words: &str) -> String {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["claim"].as_str().unwrap().contains(words))
        .unwrap_or_else(|| panic!("no claim with {words:?} in {report}"))["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every experiment runs, each report has the same shape (experiment,
/// what, prediction, a table whose rows fit its columns, findings with a
/// claim, a verdict and why, facts), and the verdicts and invariants hold.
#[test]
fn every_experiment_holds_its_invariants() {
    let reports = lab(&[]);
    let names: Vec<&str> = reports.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "boundaries",
            "buffers",
            "downed",
            "empty",
            "loss",
            "max-payload",
            "truncation"
        ]
    );
    for (name, report) in &reports {
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
            "{name}"
        );
        let columns = report["table"]["columns"].as_array().unwrap().len();
        for row in report["table"]["rows"].as_array().unwrap() {
            assert_eq!(row.as_array().unwrap().len(), columns, "{name}: {row}");
        }
        for finding in report["findings"].as_array().unwrap() {
            for key in ["claim", "verdict", "why"] {
                assert!(finding[key].is_string(), "{name}: {finding}");
            }
        }
    }
    // boundaries: as many datagrams as sent, same sizes and bytes.
    let b = &reports["boundaries"];
    assert_eq!(b["facts"]["udp_received"], b["facts"]["sent"]);
    assert_eq!(b["facts"]["udp_intact"], true);
    let sent_bytes: u64 = b["facts"]["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .sum();
    assert_eq!(
        b["facts"]["tcp_bytes"], sent_bytes,
        "TCP loses nothing either"
    );
    assert_eq!(verdict(b, "never sticks"), "true");
    // empty: a message of length 0; the stream has nothing.
    let e = &reports["empty"];
    assert_eq!(e["facts"]["udp_received"], 0);
    assert_eq!(e["facts"]["tcp_readable"], false);
    assert_eq!(verdict(e, "empty datagram"), "true");
    // truncation: 100 of 1000 delivered, the next read the next datagram.
    let t = &reports["truncation"];
    assert_eq!(t["facts"]["delivered"], 100);
    assert_eq!(t["facts"]["truncated"], true);
    assert_eq!(t["facts"]["next"], "next");
    if has("true_length") {
        assert_eq!(t["facts"]["true_length"], 1000);
    }
    // max-payload: 65,507 passes, 65,508 fails with EMSGSIZE.
    let m = &reports["max-payload"];
    assert_eq!(m["facts"]["results"]["IPv4"]["largest_passes"], true);
    assert_eq!(m["facts"]["results"]["IPv4"]["one_more_fails"], "EMSGSIZE");
    assert_eq!(verdict(m, "IPv4 is 65,507"), "true");
    // buffers: effective = twice the request below the clamp.
    let buffers = &reports["buffers"];
    if let Some(max) = buffers["facts"]["rmem_max"].as_u64() {
        for row in buffers["facts"]["rows"].as_array().unwrap() {
            let requested = row["requested"].as_u64().unwrap();
            if (1152..=max).contains(&requested) {
                assert_eq!(row["effective"].as_u64(), Some(2 * requested), "{row}");
            }
        }
        assert_eq!(buffers["facts"]["all_predicted"], true, "{buffers}");
    }
    // loss: received + dropped = sent, row by row.
    let l = &reports["loss"];
    let sent = l["facts"]["sent"].as_u64().unwrap();
    for row in l["facts"]["rows"].as_array().unwrap() {
        let received = row["received"].as_u64().unwrap();
        assert!(received >= 1 && received <= sent, "{row}");
        if has("drop_count") {
            assert_eq!(received + row["dropped"].as_u64().unwrap(), sent, "{row}");
            assert_eq!(row["dropped"], row["proc_drops"], "{row}");
            assert_eq!(row["predicted"], row["received"], "{row}");
        }
    }
    // downed: an unconnected sendto hears nothing unless it asks.
    let d = &reports["downed"];
    assert_eq!(d["facts"]["unconnected_silent"], true);
    assert_eq!(d["facts"]["connected_error"], "ECONNREFUSED");
    assert_eq!(d["facts"]["recverr_heard"], has("icmp_errors"));
}

/// `--report` writes a Markdown document with a section and a table per
/// experiment; `--chart` writes an SVG with the loss series (a point per
/// buffer size, for both series) and labelled axes.
#[test]
fn report_and_chart_are_written() {
    let report = temp_path("lab.md");
    let chart = temp_path("lab.svg");
    let proc = run(&[
        "lab",
        "loss",
        "empty",
        "--report",
        report.to_str().unwrap(),
        "--chart",
        chart.to_str().unwrap(),
    ]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    let md = std::fs::read_to_string(&report).unwrap();
    for section in [
        "## loss",
        "## empty",
        "| requested | effective |",
        "**Prediction:**",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    for label in [
        "effective SO_RCVBUF (KiB)",
        "datagrams lost (%)",
        "datagrams received",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    let rows = proc
        .stdout()
        .lines()
        .filter(|l| l.starts_with("  2048 ") || l.starts_with("  8192 "))
        .count();
    assert_eq!(rows, 2, "{}", proc.dump());
    assert!(
        svg.matches("<circle").count() >= 2 * 7,
        "a point per row and series"
    );
}

/// `--list` names every experiment; an unknown one is a usage error that
/// names them; `--chart` without the loss experiment says what to do.
#[test]
fn experiments_are_named() {
    let list = run(&["lab", "--list"]);
    assert!(list.finish_ok(), "{}", list.dump());
    for name in [
        "boundaries",
        "empty",
        "truncation",
        "max-payload",
        "buffers",
        "loss",
        "downed",
    ] {
        assert!(list.stdout().contains(name), "{}", list.dump());
    }
    let unknown = run(&["lab", "sticky"]);
    assert_eq!(unknown.code(), Some(2), "{}", unknown.dump());
    assert!(unknown.stderr().contains("there is no experiment 'sticky'"));
    let chart = run(&["lab", "empty", "--chart", "/tmp/never.svg"]);
    assert_eq!(chart.code(), Some(2), "{}", chart.dump());
    assert!(chart.stderr().contains("--chart draws the loss experiment"));
}

/// `--report` and `--chart` paths are checked before any experiment runs,
/// as `--log` is: a missing directory, a directory or a FIFO is a usage
/// error (status 2) at once, with nothing measured. A FIFO used to block
/// the end of the run forever (no reader), and a missing directory to fail
/// only after every experiment had run.
#[test]
fn report_and_chart_paths_are_checked_first() {
    let dir = temp_path("lab-paths");
    let fifo = dir.with_file_name("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let missing = dir.with_file_name("no-such-dir").join("r.md");
    let parent = dir.parent().unwrap().to_path_buf();
    for (args, reason) in [
        (
            vec!["empty", "--report", missing.to_str().unwrap()],
            "does not exist",
        ),
        (
            vec!["empty", "--report", parent.to_str().unwrap()],
            "a directory",
        ),
        (vec!["empty", "--report", fifo.to_str().unwrap()], "a FIFO"),
        (vec!["loss", "--chart", fifo.to_str().unwrap()], "a FIFO"),
    ] {
        let mut proc = crate::util::Proc::dgram(&[&["lab"][..], &args].concat());
        proc.close_stdin();
        assert_eq!(
            proc.finish_within(std::time::Duration::from_secs(10))
                .code(),
            Some(2),
            "{}",
            proc.dump()
        );
        let stderr = proc.stderr();
        assert!(
            stderr.starts_with("error: cannot use the ") && stderr.contains(reason),
            "{}",
            proc.dump()
        );
        assert!(
            proc.stdout().is_empty(),
            "nothing measured: {}",
            proc.dump()
        );
    }
}
