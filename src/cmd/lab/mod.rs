//! `dgram lab`: every UDP claim of the classic socket course, as an
//! experiment on loopback that states the claim, predicts, measures and
//! gives a verdict with the evidence.
//!
//! - [`experiments`]: the experiments ([`EXPERIMENTS`]).
//! - [`fragments`]: `dgram lab fragments`, a datagram above the path MTU
//!   sent as IP fragments and lost whole with one of them (root; network
//!   namespaces of its own; only when named).
//! - [`nat`]: `dgram lab nat`, what a NAT does to UDP, in network
//!   namespaces it builds and removes (root; only when named).
//! - this module: choosing them, and showing their reports as text,
//!   `--json`, a Markdown report and an SVG chart.

pub mod experiments;
pub mod fragments;
pub mod nat;

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use self::experiments::{EXPERIMENTS, Run};
use crate::Error;
use crate::cmd::files;
use crate::model::lab::{LabReport, Table};
use crate::output::{Format, Sink, sink};
use crate::runtime::Shutdown;

/// The command line of `dgram lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Experiments to run (all on loopback when none is named; nat runs
    /// only when named; --list names them).
    #[arg(value_name = "EXPERIMENT")]
    names: Vec<String>,
    /// List the experiments and what each shows.
    #[arg(long)]
    list: bool,
    /// One JSON object per experiment instead of text.
    #[arg(long)]
    json: bool,
    /// Also write a Markdown report with the tables to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Also draw the loss experiment (loss % and datagrams received against
    /// the receive buffer) as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
}

/// `dgram lab` as the command line asks for it, on stdout.
pub fn main(args: LabArgs) -> Result<(), Error> {
    let options = LabOptions::from_args(args);
    // Only an experiment in namespaces catches signals, to remove them
    // before the process ends; Ctrl-C ends the others at once, as ever.
    let shutdown = if !options.list && chosen(&options.names)?.iter().any(|e| !e.by_default()) {
        Shutdown::from_signals()?
    } else {
        Shutdown::never()
    };
    run(&options, &shutdown, &mut sink::stdout()).map(|_| ())
}

/// What `dgram lab` was asked to do.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The experiments to run (all when empty).
    pub names: Vec<String>,
    /// Only list them.
    pub list: bool,
    /// Text or one JSON object per experiment.
    pub format: Format,
    /// Also write a Markdown report here.
    pub report: Option<PathBuf>,
    /// Also draw the loss experiment's chart here (SVG).
    pub chart: Option<PathBuf>,
}

impl LabOptions {
    /// The options of the command line (the names are checked when the
    /// experiments are chosen, in [`run`]).
    pub fn from_args(args: LabArgs) -> Self {
        LabOptions {
            names: args.names,
            list: args.list,
            format: Format::json(args.json),
            report: args.report,
            chart: args.chart,
        }
    }
}

/// The experiments named, in the order given, or every one on loopback; an unknown
/// name is a usage error that lists the known ones.
fn chosen(names: &[String]) -> Result<Vec<&'static experiments::Experiment>, Error> {
    if names.is_empty() {
        return Ok(EXPERIMENTS.iter().filter(|e| e.by_default()).collect());
    }
    names
        .iter()
        .map(|name| {
            EXPERIMENTS
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| Error::Usage {
                    message: format!(
                        "there is no experiment '{name}': {} (dgram lab --list)",
                        EXPERIMENTS
                            .iter()
                            .map(|e| e.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
        })
        .collect()
}

/// Runs the experiments and shows each report as it comes; returns them.
/// An experiment in namespaces stops early when `shutdown` asks (then
/// the error is [`Error::Interrupted`], after a line on stderr).
pub fn run(
    options: &LabOptions,
    shutdown: &Shutdown,
    out: &mut dyn Sink,
) -> Result<Vec<LabReport>, Error> {
    let experiments = chosen(&options.names)?;
    let write = |out: &mut dyn Sink, lines: &[String]| {
        out.write_lines(lines)
            .map_err(|source| Error::WriteOutput { source })
    };
    if options.list {
        let lines: Vec<String> = EXPERIMENTS
            .iter()
            .map(|e| format!("{:<12} {}", e.name, e.what))
            .collect();
        write(out, &lines)?;
        return Ok(Vec::new());
    }
    if options.chart.is_some() && !experiments.iter().any(|e| e.name == "loss") {
        return Err(Error::Usage {
            message:
                "--chart draws the loss experiment: run it too (dgram lab loss --chart FILE.svg)"
                    .into(),
        });
    }
    // Checked before the experiments run (they take seconds): a path that
    // cannot take the file fails at once, and a FIFO never blocks the end.
    for (what, path) in [("report", &options.report), ("chart", &options.chart)] {
        if let Some(path) = path {
            files::check_target(path).map_err(|e| Error::Usage {
                message: format!("cannot use the {what} file {}: {e}", path.display()),
            })?;
        }
    }
    let mut reports = Vec::new();
    for experiment in experiments {
        let made = match experiment.run {
            Run::Loopback(run) => vec![run()?],
            Run::Namespaces(run) => run(shutdown).inspect_err(|e| {
                if matches!(e, Error::Interrupted { .. }) {
                    let _ = sink::stderr().write_lines(&[format!(
                        "{}: interrupted; its network namespaces are removed",
                        experiment.name
                    )]);
                }
            })?,
        };
        for report in made {
            let lines = match options.format {
                Format::Json => vec![serde_json::to_string(&report).expect("a report serialises")],
                Format::Human => text(&report),
            };
            write(out, &lines)?;
            reports.push(report);
        }
    }
    if let Some(path) = &options.report {
        write_file(path, &markdown(&reports))?;
    }
    if let (Some(path), Some(loss)) = (
        &options.chart,
        reports.iter().find(|r| r.experiment == "loss"),
    ) {
        write_file(path, &chart(loss))?;
    }
    Ok(reports)
}

/// Writes `contents` to `path`, replacing what was there: only a regular
/// file, opened without blocking (the path may have become a FIFO since it
/// was checked).
fn write_file(path: &Path, contents: &str) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    files::open_regular(path, &mut options)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })
}

/// A table as aligned text columns.
fn table_lines(table: &Table) -> Vec<String> {
    let widths: Vec<usize> = (0..table.columns.len())
        .map(|i| {
            std::iter::once(&table.columns[i])
                .chain(table.rows.iter().map(|r| &r[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut text = String::from("  ");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        text.trim_end().to_string()
    };
    let mut lines = vec![line(&table.columns)];
    lines.extend(table.rows.iter().map(|r| line(r)));
    lines
}

/// A report for people: the claims, the prediction, the table, the
/// verdicts.
pub fn text(report: &LabReport) -> Vec<String> {
    let mut lines = vec![format!("== {}: {}", report.experiment, report.what)];
    lines.push(format!("prediction: {}", report.prediction));
    // A report that measured nothing has no table, not an empty line.
    if !report.table.columns.is_empty() {
        lines.extend(table_lines(&report.table));
    }
    for finding in &report.findings {
        lines.push(format!("claim: \"{}\"", finding.claim));
        lines.push(format!(
            "  verdict: {}. {}",
            finding.verdict.label(),
            finding.why
        ));
    }
    lines.push(String::new());
    lines
}

/// The reports as one Markdown document.
pub fn markdown(reports: &[LabReport]) -> String {
    let mut md = String::from(
        "# dgram lab\n\nEvery claim tested on this machine: on loopback, or (nat) in network namespaces of its own.\n\n",
    );
    let cell = |c: &str| c.replace('|', "\\|");
    for report in reports {
        let _ = writeln!(
            md,
            "## {}\n\n{}\n\n**Prediction:** {}\n",
            report.experiment, report.what, report.prediction
        );
        let t = &report.table;
        if !t.columns.is_empty() {
            let _ = writeln!(
                md,
                "| {} |",
                t.columns
                    .iter()
                    .map(|c| cell(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            let _ = writeln!(md, "|{}|", vec!["---"; t.columns.len()].join("|"));
            for row in &t.rows {
                let _ = writeln!(
                    md,
                    "| {} |",
                    row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
                );
            }
            md.push('\n');
        }
        for finding in &report.findings {
            let _ = writeln!(
                md,
                "- *\"{}\"*: **{}**. {}",
                finding.claim,
                finding.verdict.label(),
                finding.why
            );
        }
        md.push('\n');
    }
    md
}

/// The loss experiment as an SVG chart: loss % and datagrams received
/// against the effective receive buffer.
pub fn chart(loss: &LabReport) -> String {
    use plotters::prelude::*;
    let rows = loss
        .facts
        .get("rows")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["effective"].as_f64()? / 1024.0,
                r["loss_percent"].as_f64()?,
                r["received"].as_f64()?,
            ))
        })
        .collect();
    let sent = loss
        .facts
        .get("sent")
        .and_then(|s| s.as_f64())
        .unwrap_or(1.0);
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let chart = ChartBuilder::on(&root)
            .caption(
                format!("A burst of {sent} × 1 KiB into a paused reader"),
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .right_y_label_area_size(64)
            .build_cartesian_2d(0f64..max_x, 0f64..100f64)
            .map(|c| c.set_secondary_coord(0f64..max_x, 0f64..sent * 1.05));
        if let Ok(mut chart) = chart {
            let _ = chart
                .configure_mesh()
                .x_desc("effective SO_RCVBUF (KiB)")
                .y_desc("datagrams lost (%)")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw();
            let _ = chart
                .configure_secondary_axes()
                .y_desc("datagrams received")
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw();
            let _ = chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.0, p.1)),
                    RED.stroke_width(2),
                ))
                .map(|s| {
                    s.label("lost (%)")
                        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED))
                });
            let _ = chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, RED.filled())),
            );
            let _ = chart
                .draw_secondary_series(LineSeries::new(
                    points.iter().map(|p| (p.0, p.2)),
                    BLUE.stroke_width(2),
                ))
                .map(|s| {
                    s.label("received")
                        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE))
                });
            let _ = chart.draw_secondary_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.2), 4, BLUE.filled())),
            );
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw();
        }
        let _ = root.present();
    }
    svg
}
