//! `contenders-<measure>.svg` (a contender sweep): one measure against the number of
//! contenders, on a log axis (one tick per count), a curve per variant at the median over
//! repeats. One panel per placement, its legend beside it, off the data.

use std::io;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use super::Exporter;
use super::plots::{DrawError, PlotError, Swatch, line_style, side_legend};
use super::summary::fmt_rate;
use crate::outcome::CompareReport;
use crate::outcome::sweep::{SweepMeasure, SweepRow};
use crate::placement::Placement;
use crate::sys::out_dir::OutDir;
use crate::text::fmt_ns;
use crate::variant::Variant;

pub(super) struct SweepPlots;

impl Exporter for SweepPlots {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        for m in SweepMeasure::ALL {
            if let Some(svg) = sweep_svg(report, m).map_err(io::Error::other)? {
                dir.write(&file_name(m), svg.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// `contenders-<slug>.svg`.
pub fn file_name(m: SweepMeasure) -> String {
    format!("contenders-{}.svg", m.slug())
}

const WIDTH: u32 = 960;
const CAPTION: u32 = 44;
const PANEL: u32 = 300;
const LEGEND: u32 = 190;
/// Where a bypass of 0 is drawn on the log axis.
const ZERO_BYPASS: f64 = 0.5;

/// A variant's points: (log2 of the count, value).
struct Curve {
    variant: Variant,
    /// The variant's place in the report, so it has the same look in every plot.
    style: usize,
    points: Vec<(f64, f64)>,
}

/// The SVG text of one measure's plot, or `None` with no sweep or no point to draw.
pub(super) fn sweep_svg(
    report: &CompareReport,
    m: SweepMeasure,
) -> Result<Option<String>, PlotError> {
    let Some(sweep) = report.sweep.as_ref() else {
        return Ok(None);
    };
    let rows = sweep.rows(&report.variants, &report.placements);
    let panels: Vec<(Placement, Vec<Curve>)> = report
        .placements
        .iter()
        .map(|&p| (p, curves(report, &rows, p, m)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let exps: Vec<f64> = sweep
        .sorted_counts()
        .iter()
        .map(|&n| (n as f64).log2())
        .collect();
    let mut svg = String::new();
    draw_page(&mut svg, m, &panels, &exps).map_err(PlotError::drawing(file_name(m)))?;
    Ok(Some(svg))
}

fn curves(report: &CompareReport, rows: &[SweepRow], p: Placement, m: SweepMeasure) -> Vec<Curve> {
    report
        .variants
        .iter()
        .enumerate()
        .filter_map(|(style, &variant)| {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| (r.variant, r.placement) == (variant, p))
                .filter_map(|r| Some(((r.contenders as f64).log2(), y_value(m, m.of(r)?.median)?)))
                .collect();
            (!points.is_empty()).then_some(Curve {
                variant,
                style,
                points,
            })
        })
        .collect()
}

/// The value as drawn: a log axis has no zero (a bypass of 0 at [`ZERO_BYPASS`]; a rate or a
/// CPU time of 0 is not drawn).
fn y_value(m: SweepMeasure, v: f64) -> Option<f64> {
    match m {
        SweepMeasure::Jain => Some(v),
        SweepMeasure::BypassP99 | SweepMeasure::BypassMax => Some(v.max(ZERO_BYPASS)),
        _ => (v > 0.0).then_some(v),
    }
}

fn y_desc(m: SweepMeasure) -> &'static str {
    match m {
        SweepMeasure::AcquisitionsPerSec => "acquisitions/s",
        SweepMeasure::BypassP99 | SweepMeasure::BypassMax => "acquisitions (0 at 0.5)",
        SweepMeasure::Jain => "Jain's index",
        SweepMeasure::CpuPerAcquisition => "CPU per acquisition",
    }
}

fn y_tick(m: SweepMeasure, y: f64) -> String {
    match m {
        SweepMeasure::AcquisitionsPerSec => fmt_rate(y),
        SweepMeasure::CpuPerAcquisition => fmt_ns(y),
        SweepMeasure::Jain => format!("{y:.1}"),
        _ if y < 1.0 => format!("{y}"),
        _ => fmt_rate(y),
    }
}

fn draw_page(
    svg: &mut String,
    m: SweepMeasure,
    panels: &[(Placement, Vec<Curve>)],
    exps: &[f64],
) -> Result<(), DrawError> {
    let height = CAPTION + PANEL * panels.len() as u32;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&format!("{} by contenders", m.title()), ("sans-serif", 20))?;
    let areas = body.split_evenly((panels.len(), 1));
    let all: Vec<f64> = panels
        .iter()
        .flat_map(|(_, c)| c.iter().flat_map(|c| c.points.iter().map(|p| p.1)))
        .collect();
    for ((placement, curves), area) in panels.iter().zip(&areas) {
        draw_panel(area, m, *placement, curves, exps, &all)?;
    }
    root.present()
}

/// The y range every panel shares: whole decades on a log axis, 0–1 for Jain's index.
fn y_range(m: SweepMeasure, all: &[f64]) -> (f64, f64) {
    if m == SweepMeasure::Jain {
        return (0.0, 1.05);
    }
    let lo = all.iter().copied().fold(f64::MAX, f64::min);
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let lo = 10f64.powf(lo.log10().floor());
    (lo, 10f64.powf(hi.log10().ceil()).max(lo * 10.0))
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    m: SweepMeasure,
    placement: Placement,
    curves: &[Curve],
    exps: &[f64],
    all: &[f64],
) -> Result<(), DrawError> {
    let (plot, legend) = area.split_horizontally(WIDTH - LEGEND);
    let (x0, x1) = (exps[0] - 0.3, exps[exps.len() - 1] + 0.3);
    let x = x0..x1;
    let (y0, y1) = y_range(m, all);
    let mut builder = ChartBuilder::on(&plot);
    builder
        .caption(format!("placement {placement}"), ("sans-serif", 16))
        .margin_top(4)
        .margin_left(8)
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(84);
    // The axis is log2 of the count: label the whole powers of two, nothing between.
    let x_tick = |x: &f64| {
        let whole = (x.round() - x).abs() < 1e-6;
        if whole {
            format!("{:.0}", 2f64.powf(x.round()))
        } else {
            String::new()
        }
    };
    if m == SweepMeasure::Jain {
        let mut chart = builder.build_cartesian_2d(x, y0..y1)?;
        mesh(&mut chart, m, &x_tick)?;
        draw_curves(&mut chart, curves, &legend)
    } else {
        let mut chart = builder.build_cartesian_2d(x, (y0..y1).log_scale())?;
        mesh(&mut chart, m, &x_tick)?;
        draw_curves(&mut chart, curves, &legend)
    }
}

fn mesh<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    m: SweepMeasure,
    x_tick: &dyn Fn(&f64) -> String,
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let octaves = 1 + (chart.x_range().end - chart.x_range().start).floor() as usize;
    chart
        .configure_mesh()
        .x_labels(octaves.max(2))
        .y_labels(8)
        .x_desc("contenders (log scale)")
        .y_desc(y_desc(m))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .x_label_formatter(x_tick)
        .y_label_formatter(&|y| y_tick(m, *y))
        .draw()
}

fn draw_curves<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    curves: &[Curve],
    legend: &DrawingArea<SVGBackend<'a>, Shift>,
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let mut entries = Vec::new();
    for c in curves {
        let style = line_style(c.style);
        let points = c.points.iter().copied();
        match style.dash {
            None => chart.draw_series(LineSeries::new(points, style.stroke())),
            Some((on, off)) => {
                chart.draw_series(DashedLineSeries::new(points, on, off, style.stroke()))
            }
        }?;
        chart.draw_series(
            c.points
                .iter()
                .map(|&p| Circle::new(p, 3, style.color.filled())),
        )?;
        entries.push((c.variant.to_string(), Swatch::Line(style)));
    }
    side_legend(legend, &entries)
}
