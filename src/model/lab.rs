//! What a `dgram lab` experiment found: the claim it tests (as courses
//! state it), what it predicted, the measured table, the verdict and why,
//! and the figures the verdict rests on (for `--json`, the tests and the
//! chart).

use serde::Serialize;

/// How a claim fared on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "condition", rename_all = "snake_case")]
pub enum Verdict {
    /// The claim holds here.
    True,
    /// It holds only under a condition, stated.
    TrueOnlyWhen(String),
    /// It does not hold here.
    FalseHere,
    /// It could not be measured here (no IPv6, no drop counter, …).
    NotMeasured(String),
}

impl Verdict {
    /// The verdict as a line shows it.
    pub fn label(&self) -> String {
        match self {
            Verdict::True => "true".to_string(),
            Verdict::TrueOnlyWhen(condition) => format!("true only when {condition}"),
            Verdict::FalseHere => "false here".to_string(),
            Verdict::NotMeasured(why) => format!("not measured here: {why}"),
        }
    }
}

/// One claim and its verdict (an experiment may test several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The claim, quoted as courses state it.
    pub claim: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Why, in one line, with the evidence.
    pub why: String,
}

/// A table of measurements: column names and rows of cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as many cells as there are columns.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns and no rows yet.
    pub fn new(columns: &[&str]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }
}

/// One experiment's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabReport {
    /// The experiment's name (`boundaries`, `loss`, …).
    pub experiment: &'static str,
    /// What it does, in one line.
    pub what: &'static str,
    /// What the experiment predicts before measuring.
    pub prediction: String,
    /// The measurements.
    pub table: Table,
    /// The claims tested and their verdicts.
    pub findings: Vec<Finding>,
    /// The figures behind the verdicts, by name (for `--json`, tests and
    /// charts).
    pub facts: serde_json::Map<String, serde_json::Value>,
}

impl LabReport {
    /// A report with no measurements yet.
    pub fn new(experiment: &'static str, what: &'static str, prediction: String) -> LabReport {
        LabReport {
            experiment,
            what,
            prediction,
            table: Table::default(),
            findings: Vec::new(),
            facts: serde_json::Map::new(),
        }
    }

    /// Records a claim's verdict.
    pub fn finding(&mut self, claim: &str, verdict: Verdict, why: String) {
        self.findings.push(Finding {
            claim: claim.to_string(),
            verdict,
            why,
        });
    }

    /// Records a figure.
    pub fn fact(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.facts.insert(name.to_string(), value.into());
    }
}
