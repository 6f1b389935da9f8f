//! `--plot FILE.svg`: NAV over time, one line per portfolio, drawn with
//! plotters.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime};
use plotters::coord::types::RangedDateTime;
use plotters::prelude::*;

/// Points kept per line; longer series are thinned evenly.
pub const MAX_POINTS: usize = 2000;

/// One line: its label and its (seconds since the epoch, NAV) points.
pub type Series = (String, Vec<(i64, f64)>);

/// Keeps at most [`MAX_POINTS`] points, evenly spread, first and last
/// included.
pub fn thin(points: &mut Vec<(i64, f64)>) {
    if points.len() <= MAX_POINTS {
        return;
    }
    let last = points.len() - 1;
    let kept: Vec<(i64, f64)> = (0..MAX_POINTS).map(|i| points[i * last / (MAX_POINTS - 1)]).collect();
    *points = kept;
}

fn when(seconds: i64) -> NaiveDateTime {
    DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc()).unwrap_or_default()
}

/// Draws `series` into an SVG file at `path`.
pub fn draw(path: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    let points = series.iter().flat_map(|(_, points)| points.iter());
    let (t0, t1, y0, y1) = points
        .fold((i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY), |(t0, t1, y0, y1), (t, y)| {
            (t0.min(*t), t1.max(*t), y0.min(*y), y1.max(*y))
        });
    if t0 > t1 {
        return Err("nothing to plot: no rows in the interval".to_string());
    }
    let (t1, pad) = (t1.max(t0 + 1), ((y1 - y0) * 0.05).max(1.0));
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    let error = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    root.fill(&WHITE).map_err(error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(95)
        .build_cartesian_2d(RangedDateTime::from(when(t0)..when(t1)), (y0 - pad)..(y1 + pad))
        .map_err(error)?;
    chart
        .configure_mesh()
        .x_desc("time (UTC)")
        .y_desc("NAV (currency units)")
        .x_labels(6)
        .x_label_formatter(&|t| t.format("%m-%d %H:%M").to_string())
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(error)?;
    for (index, (label, points)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().map(|(t, y)| (when(*t), *y)), color.stroke_width(2)))
            .map_err(error)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(error)?;
    root.present().map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_bound() {
        let mut points: Vec<(i64, f64)> = (0..10_000).map(|i| (i, i as f64)).collect();
        thin(&mut points);
        assert_eq!(points.len(), MAX_POINTS);
        assert_eq!((points[0].0, points[MAX_POINTS - 1].0), (0, 9_999));
    }

    #[test]
    fn draws_an_svg_with_axes_and_a_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nav.svg");
        let series = vec![
            ("Investor 2 · 2.1".to_string(), vec![(1_764_000_000, 1_000_000.0), (1_764_000_020, 1_010_000.0)]),
            ("Investor 2 · 2.2".to_string(), vec![(1_764_000_000, 900_000.0), (1_764_000_020, 880_000.0)]),
        ];
        draw(&path, "NAV", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("Investor 2 · 2.1") && svg.contains("NAV (currency units)") && svg.contains("time (UTC)"));
        assert!(svg.matches("<polyline").count() >= 2, "one line per series");
        assert_eq!(draw(&path, "NAV", &[]).unwrap_err(), "nothing to plot: no rows in the interval");
    }
}
