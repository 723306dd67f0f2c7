//! `latency-<placement>.svg`: the classic HdrHistogram plot of the wait (handoff latency in
//! `turns` mode, the wait for the lock in `free` mode; all contenders, all repeats) against the
//! percentile, with x as 1/(1-p) on a log axis so the tail gets the room it deserves.
//!
//! Small multiples: one panel per [`Family`], all on the same axes so panels compare, each curve
//! with its own colour and dash pattern, and each panel's legend beside it, off the data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::family::Family;
use super::plots::{DrawError, PlotError, Swatch, line_style, side_legend};
use crate::outcome::CompareReport;
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

/// One variant's curve: (1/(1-p), wait in ns).
struct Curve {
    variant: Variant,
    points: Vec<(f64, f64)>,
}

/// One family's curves.
struct Panel {
    family: Family,
    curves: Vec<Curve>,
}

/// The ranges every panel shares: x up to a power of ten, y between powers of ten (ns).
#[derive(Clone, Copy)]
struct Axes {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

const WIDTH: u32 = 960;
const CAPTION: u32 = 44;
const PANEL: u32 = 260;
/// The legend strip right of each panel.
const LEGEND: u32 = 190;

/// The SVG text of one placement's plot, or `None` if no cell of it has a histogram yet.
pub(super) fn latency_svg(
    report: &CompareReport,
    placement: Placement,
) -> Result<Option<String>, PlotError> {
    let panels = panels(report, placement);
    let Some(axes) = axes(&panels) else {
        return Ok(None);
    };
    let title = match report.mode() {
        Mode::Turns => format!("Wait for the turn (handoff latency) by percentile, {placement}"),
        Mode::Free => format!("Wait for the lock by percentile, {placement}"),
    };
    let mut svg = String::new();
    draw_page(&mut svg, &title, &panels, axes)
        .map_err(PlotError::drawing(format!("latency-{placement}.svg")))?;
    Ok(Some(svg))
}

/// The whole page: the title, then one panel per family, stacked.
fn draw_page(svg: &mut String, title: &str, panels: &[Panel], axes: Axes) -> Result<(), DrawError> {
    let height = CAPTION + PANEL * panels.len() as u32;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, ("sans-serif", 22))?;
    let areas = body.split_evenly((panels.len(), 1));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(area, panel, axes)?;
    }
    root.present()
}

/// The families that have at least one curve on `placement`, in report order.
fn panels(report: &CompareReport, placement: Placement) -> Vec<Panel> {
    Family::ALL
        .iter()
        .map(|&family| Panel {
            family,
            curves: family
                .members(&report.variants)
                .into_iter()
                .filter_map(|v| curve(report, v, placement))
                .collect(),
        })
        .filter(|p| !p.curves.is_empty())
        .collect()
}

fn curve(report: &CompareReport, variant: Variant, placement: Placement) -> Option<Curve> {
    let h = report.wait(variant, placement)?;
    let points: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .map(|q| (q.quantile_iterated_to(), q.value_iterated_to()))
        .filter(|&(q, _)| q < 1.0)
        // A log axis has no zero: a wait under 1 ns is drawn at 1 ns.
        .map(|(q, ns)| (1.0 / (1.0 - q), (ns as f64).max(1.0)))
        .collect();
    (!points.is_empty()).then_some(Curve { variant, points })
}

fn axes(panels: &[Panel]) -> Option<Axes> {
    let all: Vec<(f64, f64)> = panels
        .iter()
        .flat_map(|p| p.curves.iter().flat_map(|c| c.points.iter().copied()))
        .collect();
    if all.is_empty() {
        return None;
    }
    let x_max = all.iter().map(|p| p.0).fold(10.0, f64::max);
    let (lo, hi) = all
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let y_min = 10f64.powf(lo.log10().floor());
    Some(Axes {
        x_max: 10f64.powf(x_max.log10().ceil()),
        y_min,
        y_max: 10f64.powf(hi.log10().ceil()).max(y_min * 10.0),
    })
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    panel: &Panel,
    axes: Axes,
) -> Result<(), DrawError> {
    let (plot, legend) = area.split_horizontally(WIDTH - LEGEND);
    let mut chart = ChartBuilder::on(&plot)
        .caption(panel.family.title(), ("sans-serif", 17))
        .margin_top(4)
        .margin_left(8)
        // Room for the last percentile label ("99.999%"), centred on the right edge.
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(76)
        .build_cartesian_2d(
            (1.0..axes.x_max).log_scale(),
            (axes.y_min..axes.y_max).log_scale(),
        )?;
    chart
        .configure_mesh()
        // Fewer than ten: a tick per decade, never the 2, 3, ... 9 between, whose labels would
        // run into each other when a cell has only a decade or two.
        .x_labels(8)
        .y_labels(8)
        .x_desc("percentile")
        .y_desc("wait")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| ns_tick(*y))
        .draw()?;
    let mut entries = Vec::new();
    for (i, c) in panel.curves.iter().enumerate() {
        let style = line_style(i);
        let points = c.points.iter().copied();
        match style.dash {
            None => chart.draw_series(LineSeries::new(points, style.stroke())),
            Some((on, off)) => {
                chart.draw_series(DashedLineSeries::new(points, on, off, style.stroke()))
            }
        }?;
        entries.push((c.variant.to_string(), Swatch::Line(style)));
    }
    side_legend(&legend, &entries)
}

/// "99.9%" for x = 1/(1-p) = 1000.
pub(super) fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p <= 0.0 {
        "0%".into()
    } else {
        let s = format!("{p:.4}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A tick on the wait axis: `100 ns`, `1 µs`, `10 ms`.
fn ns_tick(ns: f64) -> String {
    let (divisor, unit) = match ns {
        n if n < 1e3 => (1.0, "ns"),
        n if n < 1e6 => (1e3, "µs"),
        n if n < 1e9 => (1e6, "ms"),
        _ => (1e9, "s"),
    };
    let v = format!("{:.2}", ns / divisor);
    format!("{} {unit}", v.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::{ns_tick, percentile_label};

    #[test]
    fn percentiles_read_naturally() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }

    #[test]
    fn wait_ticks_read_naturally() {
        assert_eq!(ns_tick(100.0), "100 ns");
        assert_eq!(ns_tick(1_000.0), "1 µs");
        assert_eq!(ns_tick(10_000_000.0), "10 ms");
        assert_eq!(ns_tick(2_500.0), "2.5 µs");
    }
}
