//! SVG plots (plotters, SVG backend: text is SVG text, no fonts needed).
//!
//! - `latency-<placement>.svg`: see [`super::latency`].
//! - `whoops.svg` (`turns` mode): whoops per round for each variant, one bar per placement, log
//!   axis; a row per variant, its name written across, so that long names never collide.
//!
//! Both keep their legend in a strip of its own beside the data ([`side_legend`]).

use std::io;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use super::latency::latency_svg;
use super::{Exporter, labels};
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
/// dash patterns. The dash shifts by one every six curves, so the first 18 curves all differ
/// (the mutexes' panel has seven).
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
        dash: DASH[(i + i / C.len()) % DASH.len()],
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

    /// The pixel height of one variant's row: a bar per placement and a gap.
    fn row_height(&self) -> u32 {
        BAR * self.placements.len().max(1) as u32 + ROW_GAP
    }

    /// The page's height: a row per variant below the title, above the x axis.
    fn height(&self) -> u32 {
        CHROME + self.row_height() * self.variants.len() as u32
    }

    /// The vertical span (in rows, the axis running from 0 at the bottom to one per variant at
    /// the top) of placement `pi`'s bar of variant `vi`: variants from the top down, each row's
    /// placements in legend order.
    fn bar_span(&self, vi: usize, pi: usize) -> (f64, f64) {
        let row = f64::from(self.row_height());
        let top = (self.variants.len() - vi) as f64
            - f64::from(ROW_GAP) / 2.0 / row
            - pi as f64 * f64::from(BAR) / row;
        (top - 0.85 * f64::from(BAR) / row, top)
    }

    /// The middle of a variant's row.
    fn row_centre(&self, vi: usize) -> f64 {
        (self.variants.len() - vi) as f64 - 0.5
    }
}

/// The lowest value on the whoops axis: a log axis cannot show zero.
const WHOOPS_FLOOR: f64 = 0.01;
/// Pixels per placement's bar; a "0" label (font 12) fits in it.
const BAR: u32 = 14;
/// Pixels between two variants' rows.
const ROW_GAP: u32 = 12;
/// The page's height besides the rows: title, margins, the x axis and its labels.
const CHROME: u32 = 44 + 24 + 56;
/// The variant names' font size.
const NAME_SIZE: f64 = 15.0;

/// The SVG text of `whoops.svg`, or `None` before any cell has finished.
pub(super) fn whoops_svg(report: &CompareReport) -> Result<Option<String>, PlotError> {
    let Some(cells) = WhoopsCells::of(report) else {
        return Ok(None);
    };
    let mut svg = String::new();
    draw_whoops_page(&mut svg, &cells).map_err(PlotError::drawing("whoops.svg"))?;
    Ok(Some(svg))
}

/// The whole page of `whoops.svg`: title, one row of bars per variant (the names written
/// across, so long ones never collide), the legend.
fn draw_whoops_page(svg: &mut String, cells: &WhoopsCells) -> Result<(), DrawError> {
    let size = (SIZE.0, cells.height());
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
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

/// The bars, the variant names beside their rows, and a "0" where a bar has no length.
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
    let longest = cells
        .variants
        .iter()
        .map(|v| labels::text_width(&v.to_string(), NAME_SIZE))
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(longest as u32 + 16)
        .build_cartesian_2d(
            (WHOOPS_FLOOR..top).log_scale(),
            0.0..cells.variants.len() as f64,
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        // Fewer than ten: a tick per decade, never the 2, 3, ... 9 between.
        .x_labels(8)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .x_desc("whoops per round (log scale; a 0 is written where a bar would start)")
        .x_label_formatter(&|x| count_tick(*x))
        .draw()?;
    for (pi, &placement) in cells.placements.iter().enumerate() {
        let c = color(pi);
        chart.draw_series(whoops_bars(cells, pi, placement, c))?;
        chart.draw_series(zero_labels(cells, pi, placement, c))?;
    }
    variant_names(area, &chart, cells)
}

/// Each variant's name, right-aligned against the axis at the middle of its row.
fn variant_names(
    area: &DrawingArea<SVGBackend, Shift>,
    chart: &ChartContext<SVGBackend, Cartesian2d<LogCoord<f64>, RangedCoordf64>>,
    cells: &WhoopsCells,
) -> Result<(), DrawError> {
    let (base_x, base_y) = area.get_base_pixel();
    let font = TextStyle::from(("sans-serif", NAME_SIZE).into_font())
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (vi, v) in cells.variants.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(WHOOPS_FLOOR, cells.row_centre(vi)));
        area.draw(&Text::new(
            v.to_string(),
            (x - base_x - 8, y - base_y),
            font.clone(),
        ))?;
    }
    Ok(())
}

/// A tick on a count axis: `0.01`, `1`, `100`, `10k`, `1M`.
fn count_tick(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 {
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
    cells
        .variants
        .iter()
        .enumerate()
        .filter_map(|(vi, &v)| {
            let x = cells.median(v, placement)?.max(WHOOPS_FLOOR);
            let (y0, y1) = cells.bar_span(vi, pi);
            Some(Rectangle::new([(WHOOPS_FLOOR, y0), (x, y1)], c.filled()))
        })
        .collect()
}

/// A zero has no length on a log axis: a "0" where one placement's bar would start, to say it.
fn zero_labels(
    cells: &WhoopsCells,
    pi: usize,
    placement: Placement,
    c: RGBColor,
) -> Vec<Text<'static, (f64, f64), String>> {
    let font = ("sans-serif", 14)
        .into_font()
        .color(&c)
        .pos(Pos::new(HPos::Left, VPos::Center));
    cells
        .variants
        .iter()
        .enumerate()
        .filter(|&(_, &v)| cells.median(v, placement) == Some(0.0))
        .map(|(vi, _)| {
            let (y0, y1) = cells.bar_span(vi, pi);
            Text::new(
                "0".to_string(),
                (WHOOPS_FLOOR * 1.15, (y0 + y1) / 2.0),
                font.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_eighteen_curves_of_a_panel_all_look_different() {
        let looks: Vec<String> = (0..18)
            .map(|i| {
                let s = line_style(i);
                format!("{:?} {:?}", s.color, s.dash)
            })
            .collect();
        let distinct: std::collections::BTreeSet<&String> = looks.iter().collect();
        assert_eq!(distinct.len(), 18, "{looks:?}");
    }

    #[test]
    fn count_ticks_read_naturally() {
        assert_eq!(count_tick(0.01), "0.01");
        assert_eq!(count_tick(100.0), "100");
        assert_eq!(count_tick(10_000.0), "10k");
        assert_eq!(count_tick(1e6), "1M");
    }
}
