//! An SVG chart: answers per second by outcome and p90 latency over
//! time, fault windows shaded.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::Report;
use crate::workload::{Outcome, Record};

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn err(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// A chart on `area` with the fault windows shaded.
fn shade<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    report: &Report,
    y_max: f64,
    title: &str,
    y_desc: &str,
) -> Result<Chart<'a, 'b>, String> {
    let x_max = report.duration_s.max(1.0);
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds since load start")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| err(&e))?;
    for w in &report.windows {
        let (s, e) = (
            w.run.began_s.unwrap_or(w.window.start_s),
            w.run.healed_s.unwrap_or(w.window.end_s),
        );
        c.draw_series(std::iter::once(Rectangle::new(
            [(s, 0.0), (e, y_max)],
            RGBColor(255, 200, 120).mix(0.35).filled(),
        )))
        .map_err(|e| err(&e))?;
    }
    Ok(c)
}

/// Writes `chart.svg`.
pub fn write(path: &Path, report: &Report, records: &[Record]) -> Result<(), String> {
    let secs = report.duration_s.max(1.0).ceil() as usize + 1;
    let bucket = 5usize;
    let n = secs.div_ceil(bucket);
    let mut ok = vec![0f64; n];
    let mut warn = vec![0f64; n];
    let mut bad = vec![0f64; n];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); n];
    for r in records {
        let i = ((r.at_s.max(0.0) as usize) / bucket).min(n.saturating_sub(1));
        let slot = match r.outcome {
            Outcome::Exact => ok.get_mut(i),
            Outcome::ExactWarned | Outcome::PartialWarned => warn.get_mut(i),
            Outcome::Failed | Outcome::SilentWrong => bad.get_mut(i),
        };
        if let Some(x) = slot {
            *x += 1.0 / bucket as f64;
        }
        if let Some(l) = lat.get_mut(i) {
            l.push(r.latency_ms);
        }
    }
    let p90: Vec<f64> = lat
        .iter_mut()
        .map(|l| {
            l.sort_by(f64::total_cmp);
            let idx = ((0.9 * l.len() as f64).ceil() as usize).saturating_sub(1);
            l.get(idx).copied().unwrap_or(0.0)
        })
        .collect();
    let max_rate = ok
        .iter()
        .zip(&warn)
        .zip(&bad)
        .map(|((a, b), c)| a + b + c)
        .fold(1.0f64, f64::max)
        * 1.2;
    let max_lat = p90.iter().copied().fold(10.0f64, f64::max) * 1.2;

    let root = SVGBackend::new(path, (1100, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(340);
    let xs = |i: usize| (i * bucket) as f64 + bucket as f64 / 2.0;
    let mut c = shade(
        &top,
        report,
        max_rate,
        "answers per second (5 s buckets); fault windows shaded",
        "queries/s",
    )?;
    for (data, color, name) in [
        (&ok, RGBColor(40, 150, 60), "exact"),
        (&warn, RGBColor(220, 160, 0), "answered with warning"),
        (&bad, RGBColor(200, 30, 30), "failed or wrong"),
    ] {
        c.draw_series(LineSeries::new(
            data.iter().enumerate().map(|(i, v)| (xs(i), *v)),
            color.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    let mut c = shade(&bottom, report, max_lat, "p90 latency (5 s buckets)", "ms")?;
    c.draw_series(LineSeries::new(
        p90.iter().enumerate().map(|(i, v)| (xs(i), *v)),
        BLUE.stroke_width(2),
    ))
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
