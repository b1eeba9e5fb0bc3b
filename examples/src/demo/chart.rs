//! The SVG chart of a run: writes per second, breaker state and queue depth over time,
//! with the outage shaded.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use resilience_core::CircuitState;

use super::error::DemoError;
use super::report::DemoReport;

fn chart_err<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Chart(e.to_string())
}

const OUTAGE_FILL: RGBColor = RGBColor(240, 120, 120);

/// One panel: a line over time, with the outage window shaded.
#[allow(clippy::too_many_arguments)]
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    y_desc: &str,
    y_range: std::ops::Range<f64>,
    t_max: f64,
    outage: Option<(f64, f64)>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    state_labels: bool,
) -> Result<(), DemoError> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, y_range.clone())
        .map_err(chart_err)?;
    let label_state = |v: &f64| match v.round() as i64 {
        0 => "closed".to_owned(),
        1 => "half-open".to_owned(),
        2 => "open".to_owned(),
        _ => String::new(),
    };
    let plain = |v: &f64| format!("{v:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("seconds since start").y_desc(y_desc);
    if state_labels {
        mesh.y_labels(3).y_label_formatter(&label_state);
    } else {
        mesh.y_label_formatter(&plain);
    }
    mesh.draw().map_err(chart_err)?;
    if let Some((a, b)) = outage {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, y_range.start), (b, y_range.end)],
                OUTAGE_FILL.mix(0.25).filled(),
            )))
            .map_err(chart_err)?
            .label("outage")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], OUTAGE_FILL.filled()));
    }
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(chart_err)?
        .label(caption)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(chart_err)?;
    Ok(())
}

/// Writes the chart of `report` to `path` (creating its directory), as SVG.
pub fn draw(path: &Path, report: &DemoReport) -> Result<(), DemoError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let samples = &report.samples;
    let t_max = samples.last().map_or(1.0, |s| s.t.as_secs_f64()).max(0.5);
    let outage = report
        .outage_window
        .map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64()));

    // Writes per second between consecutive samples.
    let rates: Vec<(f64, f64)> = samples
        .windows(2)
        .map(|w| {
            let dt = (w[1].t.as_secs_f64() - w[0].t.as_secs_f64()).max(1e-3);
            (
                w[1].t.as_secs_f64(),
                w[1].writes.saturating_sub(w[0].writes) as f64 / dt,
            )
        })
        .collect();
    let rate_max = rates.iter().map(|r| r.1).fold(1.0, f64::max) * 1.15;

    // The breaker as a step line, from its exact transitions.
    let mut states = vec![(0.0, state_level(CircuitState::Closed))];
    for t in &report.transitions {
        let at = t.at.as_secs_f64();
        states.push((at, state_level(t.from)));
        states.push((at, state_level(t.to)));
    }
    let last = report
        .transitions
        .last()
        .map_or(CircuitState::Closed, |t| t.to);
    states.push((t_max, state_level(last)));

    let depth: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t.as_secs_f64(), s.queue_depth as f64))
        .collect();
    let depth_max = depth.iter().map(|d| d.1).fold(1.0, f64::max) * 1.15;

    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_err)?;
    let title = format!(
        "agent-demo: {} agents x {} steps on {} (outage: {}), lost {}",
        report.agents,
        report.steps,
        report.backend,
        report.outage.as_str(),
        report.lost
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(chart_err)?;
    let panels = root.split_evenly((3, 1));
    panel(
        &panels[0],
        "writes per second",
        "writes/s",
        0.0..rate_max,
        t_max,
        outage,
        rates,
        BLUE,
        false,
    )?;
    panel(
        &panels[1],
        "breaker state",
        "state",
        -0.2..2.3,
        t_max,
        outage,
        states,
        RED,
        true,
    )?;
    panel(
        &panels[2],
        "recovery queue depth",
        "queued writes",
        0.0..depth_max,
        t_max,
        outage,
        depth,
        RGBColor(0, 140, 70),
        false,
    )?;
    root.present().map_err(chart_err)?;
    Ok(())
}

/// The state the chart plots for a breaker state: 0 closed, 1 half-open, 2 open (forced
/// open counts as open, disabled as closed).
pub fn state_level(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed | CircuitState::Disabled => 0.0,
        CircuitState::HalfOpen => 1.0,
        CircuitState::Open | CircuitState::ForcedOpen => 2.0,
        // A state added later: plotted as open, the cautious reading.
        _ => 2.0,
    }
}
