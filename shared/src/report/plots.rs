//! SVG plots (plotters, SVG backend: text is SVG text, no fonts needed).
//!
//! - `latency-<placement>.svg`: the classic HdrHistogram plot, one curve per variant: the wait
//!   (handoff latency in `turns` mode, the wait for the lock in `free` mode; all contenders, all
//!   repeats) against the percentile, with x as 1/(1-p) on a log axis so the tail gets the room
//!   it deserves.
//! - `whoops.svg` (`turns` mode): whoops per round for each variant, one bar per placement, log
//!   axis.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::{Exporter, write_atomically};
use crate::outcome::{CompareReport, SummaryRow};
use crate::placement::Placement;
use crate::variant::Variant;

pub(super) struct Plots;

impl Exporter for Plots {
    fn export(&self, report: &CompareReport, dir: &Path) -> io::Result<()> {
        for &placement in &report.placements {
            if let Some(svg) = latency_svg(report, placement).map_err(io::Error::other)? {
                write_atomically(
                    &dir.join(format!("latency-{placement}.svg")),
                    svg.as_bytes(),
                )?;
            }
        }
        // Whoops only exist where there is a turn to miss.
        if report.mode() == crate::variant::Mode::Free {
            return Ok(());
        }
        if let Some(svg) = whoops_svg(report).map_err(io::Error::other)? {
            write_atomically(&dir.join("whoops.svg"), svg.as_bytes())?;
        }
        Ok(())
    }
}

const SIZE: (u32, u32) = (960, 600);

pub(super) fn color(i: usize) -> RGBColor {
    // Distinct on white; the Tableau 10 palette plus two.
    const C: [(u8, u8, u8); 12] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (0, 0, 0),
        (255, 187, 120),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// "99.9%" for x = 1/(1-p) = 1000.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p <= 0.0 {
        "0%".into()
    } else {
        let s = format!("{p:.4}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

fn latency_svg(report: &CompareReport, placement: Placement) -> Result<Option<String>, String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = report
        .variants
        .iter()
        .filter_map(|&v| {
            let h = report.wait(v, placement)?;
            let pts: Vec<(f64, f64)> = h
                .iter_quantiles(5)
                .map(|q| (q.quantile_iterated_to(), q.value_iterated_to()))
                .filter(|&(q, _)| q < 1.0)
                .map(|(q, ns)| (1.0 / (1.0 - q), (ns as f64 / 1e3).max(0.001)))
                .collect();
            (!pts.is_empty()).then(|| (v.to_string(), pts))
        })
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let x_max = all.clone().map(|p| p.0).fold(10.0, f64::max);
    let (y_min, y_max) = all.fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let x_max = 10f64.powf(x_max.log10().ceil());
    let (y_min, y_max) = (
        10f64.powf(y_min.log10().floor()),
        10f64.powf(y_max.log10().ceil()).max(y_min * 10.0),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                match report.mode() {
                    crate::variant::Mode::Turns => {
                        format!("Wait for the turn (handoff latency) by percentile, placement {placement}")
                    }
                    crate::variant::Mode::Free => {
                        format!("Wait for the lock by percentile, placement {placement}")
                    }
                },
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d((1.0..x_max).log_scale(), (y_min..y_max).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("wait (µs)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, pts)) in curves.iter().enumerate() {
            let style = color(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

/// The legend both plots use: a framed, mostly opaque box of the series' labels.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// The cells `whoops.svg` shows: the variants and placements with at least one summary row, in
/// report order, and those rows.
struct WhoopsCells {
    rows: Vec<SummaryRow>,
    variants: Vec<Variant>,
    placements: Vec<Placement>,
}

impl WhoopsCells {
    fn of(report: &CompareReport) -> Option<WhoopsCells> {
        let rows = report.summary();
        if rows.is_empty() {
            return None;
        }
        let variants = report
            .variants
            .iter()
            .copied()
            .filter(|v| rows.iter().any(|r| r.variant == *v))
            .collect();
        let placements = report
            .placements
            .iter()
            .copied()
            .filter(|p| rows.iter().any(|r| r.placement == *p))
            .collect();
        Some(WhoopsCells {
            rows,
            variants,
            placements,
        })
    }

    /// The median whoops per round of one cell, if it ran.
    fn median(&self, v: Variant, p: Placement) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.variant == v && r.placement == p)
            .map(|r| r.whoops_per_round.median)
    }

    /// The width of one bar: the placements share 0.8 of a variant's slot.
    fn bar_width(&self) -> f64 {
        0.8 / self.placements.len().max(1) as f64
    }

    /// Where placement `pi`'s bar of variant `vi` starts.
    fn bar_x(&self, vi: usize, pi: usize) -> f64 {
        vi as f64 + 0.1 + pi as f64 * self.bar_width()
    }
}

/// The lowest value on the whoops axis: a log axis cannot show zero.
const WHOOPS_FLOOR: f64 = 0.01;

fn whoops_svg(report: &CompareReport) -> Result<Option<String>, String> {
    let Some(cells) = WhoopsCells::of(report) else {
        return Ok(None);
    };
    let top = cells
        .rows
        .iter()
        .map(|r| r.whoops_per_round.median)
        .fold(1.0, f64::max);
    let top = 10f64.powf(top.log10().ceil() + 0.3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = cells.variants.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("Whoops per round (median over repeats)", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..n, (WHOOPS_FLOOR..top).log_scale())
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = cells.variants.iter().map(|v| v.to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(cells.variants.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                    names[i].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("whoops per round")
            .y_label_formatter(&|y| format!("{y}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (pi, &placement) in cells.placements.iter().enumerate() {
            let c = color(pi);
            chart
                .draw_series(whoops_bars(&cells, pi, placement, c))
                .map_err(|e| e.to_string())?
                .label(placement.to_string())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
            chart
                .draw_series(zero_labels(&cells, pi, placement, c))
                .map_err(|e| e.to_string())?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

/// One placement's bars, one per variant that ran there.
fn whoops_bars(
    cells: &WhoopsCells,
    pi: usize,
    placement: Placement,
    c: RGBColor,
) -> Vec<Rectangle<(f64, f64)>> {
    let width = cells.bar_width();
    cells
        .variants
        .iter()
        .enumerate()
        .filter_map(|(vi, &v)| {
            let y = cells.median(v, placement)?.max(WHOOPS_FLOOR);
            let x0 = cells.bar_x(vi, pi);
            Some(Rectangle::new(
                [(x0, WHOOPS_FLOOR), (x0 + width * 0.9, y)],
                c.filled(),
            ))
        })
        .collect()
}

/// A zero has no height on a log axis: a "0" where one placement's bar would be, to say it.
fn zero_labels(
    cells: &WhoopsCells,
    pi: usize,
    placement: Placement,
    c: RGBColor,
) -> Vec<Text<'static, (f64, f64), String>> {
    cells
        .variants
        .iter()
        .enumerate()
        .filter(|&(_, &v)| cells.median(v, placement) == Some(0.0))
        .map(|(vi, _)| {
            let x = cells.bar_x(vi, pi) + cells.bar_width() * 0.3;
            Text::new(
                "0".to_string(),
                (x, WHOOPS_FLOOR * 1.6),
                ("sans-serif", 16).into_font().color(&c),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percentile_label;

    #[test]
    fn percentiles_read_naturally() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }
}
