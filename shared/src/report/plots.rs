//! SVG plots (plotters, SVG backend: text is SVG text, no fonts needed).
//!
//! - `latency-<placement>.svg`: see [`super::latency`].
//! - `whoops.svg` (`turns` mode): whoops per round for each variant, one bar per placement, log
//!   axis.
//!
//! Both keep their legend in a strip of its own beside the data ([`side_legend`]).

use std::io;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use thiserror::Error;

use super::Exporter;
use super::latency::latency_svg;
use crate::outcome::{CompareReport, SummaryRow};
use crate::placement::Placement;
use crate::sys::out_dir::OutDir;
use crate::variant::Variant;

pub(super) struct Plots;

/// What plotters says when drawing on the SVG backend fails.
pub(super) type DrawError = DrawingAreaErrorKind<io::Error>;

/// Why a plot could not be drawn. plotters draws into a string here, so this is rare (a layout
/// that does not fit); the plot is named, plotters' reason is the source.
#[derive(Debug, Error)]
#[error("cannot draw {plot}")]
pub struct PlotError {
    plot: String,
    #[source]
    source: DrawError,
}

impl PlotError {
    /// Names the plot that `source` stopped.
    pub(super) fn drawing(plot: impl Into<String>) -> impl FnOnce(DrawError) -> PlotError {
        move |source| PlotError {
            plot: plot.into(),
            source,
        }
    }
}

impl Exporter for Plots {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        for &placement in &report.placements {
            if let Some(svg) = latency_svg(report, placement).map_err(io::Error::other)? {
                dir.write(&format!("latency-{placement}.svg"), svg.as_bytes())?;
            }
        }
        // Whoops only exist where there is a turn to miss.
        if report.mode() == crate::variant::Mode::Free {
            return Ok(());
        }
        if let Some(svg) = whoops_svg(report).map_err(io::Error::other)? {
            dir.write("whoops.svg", svg.as_bytes())?;
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

/// A curve's look: a colour and, for every other curve, a dash pattern, so curves that run
/// together stay apart for any eye (and in grey).
#[derive(Clone, Copy, Debug)]
pub(super) struct LineStyle {
    pub color: RGBColor,
    /// Dash and gap lengths in pixels; `None` is a solid line.
    pub dash: Option<(u32, u32)>,
}

impl LineStyle {
    pub fn stroke(self) -> ShapeStyle {
        self.color.stroke_width(2)
    }
}

/// The `i`th curve of a panel: six colours (Okabe–Ito, safe for colour-blind readers), three
/// dash patterns.
pub(super) fn line_style(i: usize) -> LineStyle {
    const C: [(u8, u8, u8); 6] = [
        (0, 114, 178),
        (213, 94, 0),
        (0, 158, 115),
        (204, 121, 167),
        (230, 159, 0),
        (0, 0, 0),
    ];
    const DASH: [Option<(u32, u32)>; 3] = [None, Some((10, 5)), Some((3, 3))];
    let (r, g, b) = C[i % C.len()];
    LineStyle {
        color: RGBColor(r, g, b),
        dash: DASH[i % DASH.len()],
    }
}

/// What a legend entry shows beside its label.
#[derive(Clone, Copy, Debug)]
pub(super) enum Swatch {
    Line(LineStyle),
    Box(RGBColor),
}

/// A legend drawn in its own area beside the plot, so it never covers data.
pub(super) fn side_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[(String, Swatch)],
) -> Result<(), DrawError> {
    let font = ("sans-serif", 14).into_font();
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = 44 + 22 * i as i32;
        let (x0, x1) = (8, 44);
        let text_x = match swatch {
            Swatch::Line(_) => x1 + 8,
            Swatch::Box(_) => x0 + 22,
        };
        match *swatch {
            Swatch::Line(s) => match s.dash {
                None => area.draw(&PathElement::new(vec![(x0, y), (x1, y)], s.stroke())),
                Some((on, off)) => area.draw(&DashedPathElement::new(
                    vec![(x0, y), (x1, y)],
                    on,
                    off,
                    s.stroke(),
                )),
            },
            Swatch::Box(c) => {
                area.draw(&Rectangle::new([(x0, y - 6), (x0 + 14, y + 6)], c.filled()))
            }
        }?;
        area.draw(&Text::new(label.clone(), (text_x, y - 7), font.clone()))?;
    }
    Ok(())
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

/// The SVG text of `whoops.svg`, or `None` before any cell has finished.
pub(super) fn whoops_svg(report: &CompareReport) -> Result<Option<String>, PlotError> {
    let Some(cells) = WhoopsCells::of(report) else {
        return Ok(None);
    };
    let mut svg = String::new();
    draw_whoops_page(&mut svg, &cells).map_err(PlotError::drawing("whoops.svg"))?;
    Ok(Some(svg))
}

/// The whole page of `whoops.svg`: title, bars, legend.
fn draw_whoops_page(svg: &mut String, cells: &WhoopsCells) -> Result<(), DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled("Whoops per round (median over repeats)", ("sans-serif", 22))?;
    let (plot, legend) = body.split_horizontally(SIZE.0 - 150);
    draw_whoops(&plot, cells)?;
    let entries: Vec<(String, Swatch)> = cells
        .placements
        .iter()
        .enumerate()
        .map(|(pi, p)| (p.to_string(), Swatch::Box(color(pi))))
        .collect();
    side_legend(&legend, &entries)?;
    root.present()
}

/// The bars, and a "0" where a bar has no height.
fn draw_whoops(
    area: &DrawingArea<SVGBackend, Shift>,
    cells: &WhoopsCells,
) -> Result<(), DrawError> {
    let top = cells
        .rows
        .iter()
        .map(|r| r.whoops_per_round.median)
        .fold(1.0, f64::max);
    let top = 10f64.powf(top.log10().ceil() + 0.3);
    let n = cells.variants.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, (WHOOPS_FLOOR..top).log_scale())?;
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
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .y_desc("whoops per round")
        .y_label_formatter(&|y| count_tick(*y))
        .draw()?;
    for (pi, &placement) in cells.placements.iter().enumerate() {
        let c = color(pi);
        chart.draw_series(whoops_bars(cells, pi, placement, c))?;
        chart.draw_series(zero_labels(cells, pi, placement, c))?;
    }
    Ok(())
}

/// A tick on a count axis: `0.01`, `1`, `100`, `10k`.
fn count_tick(x: f64) -> String {
    if x >= 1e3 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
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
