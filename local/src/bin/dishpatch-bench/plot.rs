//! PNG plots of a load run (plotters' bitmap backend; text drawn with a TrueType font
//! read from the system, so no font library is linked).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::load::Level;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a sans-serif font once; an error when none is found.
fn font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONTS
                .iter()
                .find_map(|p| std::fs::read(p).ok())
                .ok_or_else(|| format!("no TrueType font found (looked for {FONTS:?})"))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the font could not be read".to_owned())
        })
        .clone()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Delivered orders per second against offered, with the ideal diagonal.
pub fn throughput(path: &Path, levels: &[Level]) -> Result<(), String> {
    font()?;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max = levels
        .iter()
        .map(|l| l.offered_per_s.max(l.achieved_per_s))
        .fold(0.5, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Throughput against offered load", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max, 0f64..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered orders/s")
        .y_desc("delivered orders/s")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 0.0), (max, max)],
            BLACK.mix(0.3),
        ))
        .map_err(err)?
        .label("delivered = offered")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.3)));
    let mut points: Vec<(f64, f64)> = levels
        .iter()
        .map(|l| (l.offered_per_s, l.achieved_per_s))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label("delivered")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(points.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// The latency distribution (CDF) of accepted and DISPATCHED at half the peak, and
/// DISPATCHED at every level.
pub fn latency(path: &Path, half: &Level, levels: &[Level]) -> Result<(), String> {
    font()?;
    let root = BitMapBackend::new(path, (900, 550)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let cdf = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len().max(1) as f64;
        s.iter()
            .enumerate()
            .map(|(i, x)| (*x, (i + 1) as f64 / n))
            .collect()
    };
    let all = || {
        levels
            .iter()
            .chain(std::iter::once(half))
            .flat_map(|l| l.dispatched_samples.iter().chain(&l.accepted_samples))
    };
    let min_ms = all().fold(f64::MAX, |a, b| a.min(*b)).clamp(1.0, 1e6) * 0.8;
    let max_ms = levels
        .iter()
        .chain(std::iter::once(half))
        .flat_map(|l| l.dispatched_samples.iter().chain(&l.accepted_samples))
        .fold(10.0f64, |a, b| a.max(*b))
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency distribution (CDF)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((min_ms..max_ms).log_scale(), 0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("milliseconds (log scale)")
        .y_desc("fraction of orders")
        .draw()
        .map_err(err)?;
    let palette = [&RED, &GREEN, &MAGENTA, &CYAN, &BLACK, &YELLOW];
    for (i, l) in levels.iter().enumerate() {
        let color = palette[i % palette.len()].mix(0.5);
        chart
            .draw_series(LineSeries::new(cdf(&l.dispatched_samples), color))
            .map_err(err)?
            .label(format!("DISPATCHED at {:.2}/s offered", l.offered_per_s))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .draw_series(LineSeries::new(
            cdf(&half.accepted_samples),
            BLUE.stroke_width(3),
        ))
        .map_err(err)?
        .label(format!(
            "accepted at half the peak ({:.2}/s)",
            half.offered_per_s
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(
            cdf(&half.dispatched_samples),
            BLUE.mix(0.6).stroke_width(2),
        ))
        .map_err(err)?
        .label("DISPATCHED at half the peak")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.mix(0.6)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
