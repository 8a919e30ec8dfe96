//! The plot of a results CSV: claims per second and p99 latency against
//! concurrency, one line per system, side by side in one SVG.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::report::{self, Summary};

/// A line colour per system, in the order the systems first appear.
const COLOURS: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), BLACK];

/// Writes the SVG of the runs in `csv` to `out`.
pub fn plot(csv: &Path, out: &Path) -> anyhow::Result<()> {
    let runs = report::read(csv)?;
    let mut systems: Vec<&str> = Vec::new();
    for r in &runs {
        if !systems.contains(&r.label.as_str()) {
            systems.push(&r.label);
        }
    }
    let mut levels: Vec<f64> = runs.iter().map(|r| r.clients as f64).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let root = SVGBackend::new(out, (1100, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let (left, right) = root.split_horizontally(550);
    panel(&left, &runs, &systems, &levels, "claims/s", |r| r.per_sec)?;
    panel(&right, &runs, &systems, &levels, "p99 latency, ms", |r| r.p99_ms)?;
    root.present().map_err(draw).with_context(|| format!("writing {}", out.display()))
}

/// One chart: `value` of every run against its concurrency, on a log scale
/// whose ticks are the concurrency levels that were run (a log axis's own
/// ticks, 1 2 3 ... 10 20 ..., crowd out levels like 16 and 256).
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    runs: &[Summary],
    systems: &[&str],
    levels: &[f64],
    what: &str,
    value: fn(&Summary) -> f64,
) -> anyhow::Result<()> {
    let (low, high) = (levels.first().copied().unwrap_or(1.0), levels.last().copied().unwrap_or(1.0));
    let top = runs.iter().map(value).fold(0.0, f64::max).max(1e-3) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(what, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d((low / 1.5..high * 1.5).log_scale().with_key_points(levels.to_vec()), 0.0..top)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients (log scale)")
        .y_desc(what)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| if y.abs() < 10.0 { format!("{y:.1}") } else { format!("{y:.0}") })
        .draw()
        .map_err(draw)?;
    for (i, system) in systems.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<(f64, f64)> =
            runs.iter().filter(|r| r.label == *system).map(|r| (r.clients as f64, value(r))).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(draw)?
            .label(*system)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled()))).map_err(draw)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(draw)?;
    Ok(())
}

/// plotters' errors borrow the backend's; keep the message.
fn draw<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_shows_every_system() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("results.csv");
        std::fs::write(
            &csv,
            "label,clients,seconds,ops,errors,claims_per_sec,p50_ms,p90_ms,p99_ms,max_ms,leader_claims,leader_fsyncs,\
             leader_entries_applied,leader_snapshots_built,server_cpu_s_per_1k,loadgen_cpu_s_per_1k\n\
             idem,1,10,8000,0,800,1,1,2,3,8000,8000,8000,0,0.5,0.05\n\
             etcd,1,10,7000,0,700,1,1,2,3,,,,,0.6,0.05\n\
             idem,64,10,60000,0,6000,9,9,20,30,60000,3000,3000,0,0.2,0.04\n\
             etcd,64,10,30000,0,3000,9,9,40,50,,,,,0.3,0.04\n",
        )
        .unwrap();
        let out = dir.path().join("plot.svg");
        plot(&csv, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(texts.contains(&"idem") && texts.contains(&"etcd"), "both systems named in the legend");
        assert!(svg.contains("claims/s") && svg.contains("p99"));
    }
}
