//! The bench's chart: ops/s of the raw driver and the resilient client side by side, per
//! backend and concurrency (scenario `setget`), with `redis-benchmark` when it ran, as an
//! SVG file (plotters). `bench --chart target/bench.svg` writes it.

use std::path::Path;

use plotters::prelude::*;

use super::{BenchError, Report};

const RAW: RGBColor = RGBColor(120, 144, 156);
const RESILIENT: RGBColor = RGBColor(30, 136, 229);
const YARDSTICK: RGBColor = RGBColor(251, 140, 0);

fn chart_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::InvalidConfig(format!("chart: {e}"))
}

/// One group of bars: a label and (colour, value, legend name) per bar.
type Group = (String, Vec<(RGBColor, f64)>);

fn groups(report: &Report) -> Vec<Group> {
    let mut out: Vec<Group> = report
        .comparisons
        .iter()
        .map(|c| {
            (
                format!("{} c={} ({:.2})", c.backend, c.concurrency, c.ratio()),
                vec![
                    (RAW, c.raw.ops_per_sec),
                    (RESILIENT, c.resilient.ops_per_sec),
                ],
            )
        })
        .collect();
    let yardstick: Vec<(RGBColor, f64)> = report
        .measurements
        .iter()
        .filter(|m| m.backend == "redis-benchmark")
        .map(|m| (YARDSTICK, m.value))
        .collect();
    if !yardstick.is_empty() {
        out.push(("redis-benchmark set, get".to_owned(), yardstick));
    }
    out
}

/// Writes the chart of `report` to `path` (creating its directory), as SVG. A report
/// without `setget` results gives an error.
pub fn draw(path: &Path, report: &Report) -> Result<(), BenchError> {
    let groups = groups(report);
    if groups.is_empty() {
        return Err(BenchError::InvalidConfig(
            "chart: no setget results to draw (run the setget scenario)".into(),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(chart_err)?;
    }
    let max = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|(_, v)| *v))
        .fold(1.0f64, f64::max);
    let n = groups.len() as f64;
    let width = (160 * groups.len()).max(640) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    // Below zero: room for the group labels inside the plotting area.
    let floor = -max * 0.10;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "SET/GET ops/s: raw driver vs ResilientClient (ratio resilient/raw in brackets)",
            ("sans-serif", 18),
        )
        .margin(12)
        .y_label_area_size(80)
        .x_label_area_size(10)
        .build_cartesian_2d(0f64..n, floor..max * 1.15)
        .map_err(chart_err)?;
    let ylabel = |v: &f64| {
        if *v < 0.0 {
            String::new()
        } else {
            format!("{:.0}k", v / 1000.0)
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("operations per second")
        .y_label_formatter(&ylabel)
        .draw()
        .map_err(chart_err)?;
    for (i, (label, bars)) in groups.iter().enumerate() {
        let left = i as f64 + 0.1;
        let w = 0.8 / bars.len().max(1) as f64;
        for (j, (color, value)) in bars.iter().enumerate() {
            let x0 = left + w * j as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + w * 0.92, *value)],
                    color.filled(),
                )))
                .map_err(chart_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.0}k", value / 1000.0),
                    (x0, value + max * 0.02),
                    ("sans-serif", 12),
                )))
                .map_err(chart_err)?;
        }
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (left, floor * 0.45),
                ("sans-serif", 12),
            )))
            .map_err(chart_err)?;
    }
    for (color, name) in [
        (RAW, "raw driver"),
        (RESILIENT, "ResilientClient"),
        (YARDSTICK, "redis-benchmark (50 connections)"),
    ] {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, 0.0), (0.0, 0.0)],
                color.filled(),
            )))
            .map_err(chart_err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(chart_err)?;
    root.present().map_err(chart_err)?;
    Ok(())
}

/// Rebuilds the `setget` part of a report (and the `redis-benchmark` measurements) from the
/// JSON lines a `bench --json` run printed, so the chart of a past run can be drawn again
/// (`bench --chart-from run.jsonl --chart out.svg`). Lines of other scenarios are skipped.
pub fn report_from_json_lines(text: &str) -> Result<Report, BenchError> {
    use super::{Comparison, Mode, SCENARIO_SETGET, Sample};
    let bad = |e: String| BenchError::InvalidConfig(format!("chart input: {e}"));
    let backend = |name: &str| match name {
        "redis-rs" => Ok("redis-rs"),
        "fred" => Ok("fred"),
        "redis-benchmark" => Ok("redis-benchmark"),
        other => Err(bad(format!("unknown backend {other:?}"))),
    };
    let mut report = Report::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if v["scenario"] != SCENARIO_SETGET {
            continue;
        }
        let b = backend(v["backend"].as_str().unwrap_or_default())?;
        let num = |k: &str| v[k].as_f64().unwrap_or_default();
        if b == "redis-benchmark" {
            let metric = if v["metric"] == "set" { "set" } else { "get" };
            report.measurements.push(super::Measurement::new(
                SCENARIO_SETGET,
                b,
                metric,
                num("concurrency") as usize,
                num("ops") as u64,
                num("value"),
                "ops/s",
            ));
            continue;
        }
        let mode = match v["mode"].as_str() {
            Some("raw") => Mode::Raw,
            Some("resilient") => Mode::Resilient,
            _ => continue,
        };
        report.samples.push(Sample {
            scenario: SCENARIO_SETGET,
            backend: b,
            mode,
            concurrency: num("concurrency") as usize,
            ops: num("ops") as u64,
            ops_per_sec: num("ops_per_sec"),
            p50_us: num("p50_us"),
            p99_us: num("p99_us"),
            cpu_us_per_op: None,
        });
    }
    let raws: Vec<Sample> = report
        .samples
        .iter()
        .filter(|s| s.mode == Mode::Raw)
        .cloned()
        .collect();
    for raw in raws {
        if let Some(resilient) = report.samples.iter().find(|s| {
            s.mode == Mode::Resilient
                && s.backend == raw.backend
                && s.concurrency == raw.concurrency
        }) {
            report.comparisons.push(Comparison {
                scenario: SCENARIO_SETGET,
                backend: raw.backend,
                concurrency: raw.concurrency,
                resilient: resilient.clone(),
                raw,
                backend_only: None,
                runs: Vec::new(),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_rebuild_the_comparisons() {
        let text = r#"{"scenario":"setget","backend":"fred","mode":"raw","concurrency":16,"ops":10,"ops_per_sec":200.0,"p50_us":1.0,"p99_us":2.0}
{"scenario":"setget","backend":"fred","mode":"resilient","concurrency":16,"ops":10,"ops_per_sec":150.0,"p50_us":1.0,"p99_us":2.0}
{"scenario":"setget","backend":"redis-benchmark","metric":"set","concurrency":50,"ops":10,"value":300.0,"unit":"ops/s"}
{"scenario":"open","backend":"fred","metric":"rejected_call","concurrency":64,"ops":10,"value":0.2,"unit":"us"}
"#;
        let report = report_from_json_lines(text).unwrap();
        assert_eq!(report.comparisons.len(), 1);
        assert!((report.comparisons[0].ratio() - 0.75).abs() < 1e-9);
        assert_eq!(report.measurements.len(), 1);
        assert!(report_from_json_lines("not json").is_err());
    }
}
