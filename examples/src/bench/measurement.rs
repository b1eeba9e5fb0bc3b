//! One number of the scenarios beyond `setget` ([`Measurement`]), with the target it is
//! held to, and how it is printed (a table row, a JSON line).
//!
//! Every scenario reports in this one shape so that a reader (or a script reading the
//! `--json` lines) needs one parser: the `scenario` field says where it comes from, `metric`
//! what it is, `value` and `unit` the number, `target` and `pass` what it is held to.

use std::fmt::Write as _;

use serde::Serialize;

use super::error::BenchError;

/// What a measured value is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
}

impl Goal {
    /// Whether `value` meets the goal.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(min) => value >= min,
            Goal::AtMost(max) => value <= max,
        }
    }

    /// The goal as text: `">= 50000"`, `"<= 10"`.
    pub fn describe(self) -> String {
        match self {
            Goal::AtLeast(min) => format!(">= {min}"),
            Goal::AtMost(max) => format!("<= {max}"),
        }
    }
}

/// One measured number of a scenario; serialises to one JSON line.
///
/// ```json
/// {"scenario":"tiers","backend":"redis-rs","metric":"store","concurrency":64,"ops":64000,"value":61234.5,"unit":"ops/s","p50_us":900.0,"p99_us":2500.0,"target":">= 50000","pass":true}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The scenario: `tiers`, `recovery`, `drain`, `open`, or `setget` for the
    /// `redis-benchmark` comparison.
    pub scenario: &'static str,
    /// `"redis-rs"`, `"fred"`, or `"redis-benchmark"`.
    pub backend: &'static str,
    /// What is measured (`store`, `recent20`, `stm_to_im`, `to_first_success`, `to_closed`,
    /// `drain`, `rejected_call`, `set`, `get`).
    pub metric: &'static str,
    /// What ran, where a scenario compares two ways of doing the same thing (`tiers`,
    /// `hand-rolled`, or the ratio of the two, `tiers/hand-rolled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// Concurrent tasks (or connections) of the load.
    pub concurrency: usize,
    /// Operations (calls, memories, writes) the value is computed from.
    pub ops: u64,
    /// The number.
    pub value: f64,
    /// Its unit: `ops/s`, `ms`, `us`, or `x` for a ratio.
    pub unit: &'static str,
    /// The value again when it is a throughput (unit `ops/s`), under the name the
    /// `setget` lines use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<f64>,
    /// Median latency of one operation, in microseconds, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th percentile latency of one operation, in microseconds, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// The target the value is held to, as text (`">= 50000"`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the value meets its target, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<bool>,
    /// Settings that shaped the number (e.g. `batch_size=1024`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// CPU time of this process per operation, in microseconds (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<f64>,
    /// CPU time of the redis-server per operation, in microseconds, where measured
    /// ([`super::server_cpu`]); `1e6` over it is the most operations per second that
    /// server can give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_us_per_op: Option<f64>,
}

impl Measurement {
    /// A measurement with no latencies, target or detail yet.
    pub fn new(
        scenario: &'static str,
        backend: &'static str,
        metric: &'static str,
        concurrency: usize,
        ops: u64,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Measurement {
            scenario,
            backend,
            metric,
            mode: None,
            concurrency,
            ops,
            value,
            unit,
            ops_per_sec: (unit == "ops/s").then_some(value),
            p50_us: None,
            p99_us: None,
            target: None,
            pass: None,
            detail: None,
            cpu_us_per_op: None,
            server_us_per_op: None,
        }
    }

    /// Holds the value to `goal` (fills `target` and `pass`).
    pub fn goal(mut self, goal: Goal) -> Self {
        self.target = Some(goal.describe());
        self.pass = Some(goal.met_by(self.value));
        self
    }

    /// Adds p50 and p99 latencies (microseconds).
    pub fn latencies(mut self, p50_us: f64, p99_us: f64) -> Self {
        self.p50_us = Some(p50_us);
        self.p99_us = Some(p99_us);
        self
    }

    /// Says what ran (see [`Measurement::mode`]).
    pub fn mode(mut self, mode: &'static str) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Adds a note on the settings.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the CPU time per operation.
    pub fn cpu(mut self, cpu_us_per_op: Option<f64>) -> Self {
        self.cpu_us_per_op = cpu_us_per_op;
        self
    }

    /// Adds the server's CPU time per operation.
    pub fn server_cpu(mut self, server_us_per_op: Option<f64>) -> Self {
        self.server_us_per_op = server_us_per_op;
        self
    }

    /// The measurement as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> Result<String, BenchError> {
        serde_json::to_string(self).map_err(|e| BenchError::InvalidConfig(e.to_string()))
    }
}

/// A table of measurements for people, one row each.
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = String::new();
    if measurements.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<9} {:<15} {:<30} {:>5} {:>8} {:>12} {:<5} {:>9} {:>9} {:>9} {:>9}  {:<10} {:<4} note",
        "scenario",
        "backend",
        "metric (mode)",
        "conc",
        "ops",
        "value",
        "unit",
        "p50 µs",
        "p99 µs",
        "cpu µs/op",
        "srv µs/op",
        "target",
        "ok"
    );
    let opt =
        |v: Option<f64>, prec: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"));
    for m in measurements {
        let value = if m.value >= 1000.0 {
            format!("{:.0}", m.value)
        } else if m.unit == "x" {
            format!("{:.3}", m.value)
        } else {
            format!("{:.2}", m.value)
        };
        let _ = writeln!(
            out,
            "{:<9} {:<15} {:<30} {:>5} {:>8} {:>12} {:<5} {:>9} {:>9} {:>9} {:>9}  {:<10} {:<4} {}",
            m.scenario,
            m.backend,
            match m.mode {
                Some(mode) => format!("{} ({mode})", m.metric),
                None => m.metric.to_owned(),
            },
            m.concurrency,
            m.ops,
            value,
            m.unit,
            opt(m.p50_us, 1),
            opt(m.p99_us, 1),
            opt(m.cpu_us_per_op, 2),
            opt(m.server_us_per_op, 2),
            m.target.as_deref().unwrap_or("-"),
            match m.pass {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            },
            m.detail.as_deref().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn goals_judge_and_describe() {
        assert!(Goal::AtLeast(10.0).met_by(10.0));
        assert!(!Goal::AtLeast(10.0).met_by(9.9));
        assert!(Goal::AtMost(10.0).met_by(3.0));
        assert!(!Goal::AtMost(10.0).met_by(10.5));
        assert_eq!(Goal::AtLeast(50000.0).describe(), ">= 50000");
    }

    #[test]
    fn json_line_carries_scenario_and_skips_empty_fields() {
        let m = Measurement::new("drain", "fred", "drain", 1, 100, 12.5, "ops/s")
            .goal(Goal::AtLeast(100.0))
            .cpu(Some(1.0));
        let v: serde_json::Value = serde_json::from_str(&m.to_json_line().unwrap()).unwrap();
        assert_eq!(v["scenario"], "drain");
        assert_eq!(v["pass"], false);
        assert_eq!(v["target"], ">= 100");
        assert!(v.get("p99_us").is_none());
        assert!(v.get("mode").is_none());
        assert_eq!(v["cpu_us_per_op"], 1.0);
        assert_eq!(v["ops_per_sec"], 12.5);
        assert!(table(&[m]).contains("NO"));
    }

    #[test]
    fn a_mode_shows_in_the_line_and_the_table() {
        let m = Measurement::new("tiers", "redis-rs", "store", 64, 10, 0.93, "x")
            .mode("tiers/hand-rolled");
        let v: serde_json::Value = serde_json::from_str(&m.to_json_line().unwrap()).unwrap();
        assert_eq!(v["mode"], "tiers/hand-rolled");
        assert!(
            v.get("ops_per_sec").is_none(),
            "a ratio is not a throughput"
        );
        assert!(table(&[m]).contains("store (tiers/hand-rolled)"));
    }
}
