//! `frontier.svg` (`compare --mode free`): the throughput × fairness trade-off. One point per
//! variant, at the median over repeats with its interval (lo–hi) as error bars: acquisitions per
//! second against unfairness, on log axes. One row of panels per placement; on the left the
//! unfairness is the p99 bypass (about the lock alone; a bypass of 0 is drawn at 0.5), on the right the p99.9 wait (the lock and
//! the scheduler). The variants no other variant beats on both axes (the Pareto frontier) are
//! joined by a line.

use std::io;

use plotters::prelude::*;

use super::Exporter;
use super::labels::{Placer, Rect};
use crate::outcome::{CompareReport, Spread, SummaryRow};
use crate::sys::out_dir::OutDir;
use crate::variant::Mode;

pub(super) struct Frontier;

impl Exporter for Frontier {
    fn export(&self, report: &CompareReport, dir: &OutDir) -> io::Result<()> {
        if report.mode() != Mode::Free {
            return Ok(());
        }
        if let Some(svg) = frontier_svg(report).map_err(io::Error::other)? {
            dir.write("frontier.svg", svg.as_bytes())?;
        }
        Ok(())
    }
}

/// One point of a panel: a variant's throughput and unfairness, each a spread over repeats.
#[derive(Clone, Debug)]
struct Point {
    name: String,
    /// Index of the variant in the report, for a colour that is the same in every panel.
    colour: usize,
    x: Spread,
    y: Spread,
}

/// The two unfairness measures, one panel each.
#[derive(Clone, Copy, Debug)]
enum Unfairness {
    BypassP99,
    WaitP999,
}

impl Unfairness {
    fn axis(self) -> &'static str {
        match self {
            Unfairness::BypassP99 => "p99 bypass (acquisitions overtaking a wait; 0 drawn at 0.5)",
            Unfairness::WaitP999 => "p99.9 wait (µs)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Unfairness::BypassP99 => "p99 bypass (about the lock)",
            Unfairness::WaitP999 => "p99.9 wait (lock and scheduler)",
        }
    }

    /// The lowest value its log axis shows: a bypass of 0 is drawn at 0.5.
    fn floor(self) -> f64 {
        match self {
            Unfairness::BypassP99 => 0.5,
            Unfairness::WaitP999 => 0.001,
        }
    }

    /// The row's unfairness spread, if the row has it.
    fn of(self, r: &SummaryRow) -> Option<Spread> {
        match self {
            Unfairness::BypassP99 => (r.order_repeats > 0).then_some(r.order.bypass_p99),
            Unfairness::WaitP999 => {
                let ns = r.wait_p999_ns;
                Some(Spread {
                    median: ns.median / 1e3,
                    min: ns.min / 1e3,
                    max: ns.max / 1e3,
                    lo: ns.lo / 1e3,
                    hi: ns.hi / 1e3,
                    level: ns.level,
                })
            }
        }
    }
}

/// Indices of the points no other point beats: at least as fast and at most as unfair, better
/// on one of the two. Sorted by unfairness, ready to be joined.
fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (xi, yi) = points[i];
            !points
                .iter()
                .any(|&(x, y)| x <= xi && y >= yi && (x < xi || y > yi))
        })
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

fn points(report: &CompareReport, rows: &[SummaryRow], u: Unfairness, p: usize) -> Vec<Point> {
    let placement = report.placements[p];
    rows.iter()
        .filter(|r| r.placement == placement && r.acquisitions_per_sec.median > 0.0)
        .filter_map(|r| {
            Some(Point {
                name: r.variant.to_string(),
                colour: report.variants.iter().position(|v| *v == r.variant)?,
                x: u.of(r)?,
                y: r.acquisitions_per_sec,
            })
        })
        .collect()
}

/// A log range covering `values` (none below `floor`), widened to whole decades.
fn decades(values: impl Iterator<Item = f64>, floor: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| {
        (lo.min(v.max(floor)), hi.max(v.max(floor)))
    });
    let lo = lo.min(hi).max(floor);
    let decade_lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.max(decade_lo * 10.0).log10().ceil());
    decade_lo.min(lo)..hi
}

pub(crate) fn frontier_svg(report: &CompareReport) -> Result<Option<String>, String> {
    let rows = report.summary();
    let placements: Vec<usize> = (0..report.placements.len())
        .filter(|&p| rows.iter().any(|r| r.placement == report.placements[p]))
        .collect();
    if placements.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let size = (1200, 460 * placements.len() as u32);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((placements.len(), 2));
        for (i, &p) in placements.iter().enumerate() {
            for (j, u) in [Unfairness::BypassP99, Unfairness::WaitP999]
                .into_iter()
                .enumerate()
            {
                let pts = points(report, &rows, u, p);
                let title = format!(
                    "placement {}: throughput vs {}",
                    report.placements[p],
                    u.short()
                );
                panel(&panels[i * 2 + j], &title, u, &pts)?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    u: Unfairness,
    pts: &[Point],
) -> Result<(), String> {
    if pts.is_empty() {
        return Ok(());
    }
    let floor = u.floor();
    let xs = decades(pts.iter().flat_map(|p| [p.x.lo, p.x.hi]), floor);
    let ys = decades(pts.iter().flat_map(|p| [p.y.lo, p.y.hi]), 1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        // Room for the last tick label, centred on the axis's end, off the next panel's.
        .margin_right(32)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xs.log_scale(), ys.log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        // Fewer than ten: a tick per decade, never the 2, 3, ... 9 between, whose labels would
        // run into each other on a short axis.
        .x_labels(8)
        .y_labels(8)
        .x_desc(u.axis())
        .y_desc("acquisitions/s")
        .x_label_formatter(&|x| format!("{x}"))
        .y_label_formatter(&|y| crate::report::summary::fmt_rate(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    draw_frontier(&mut chart, pts, floor)?;
    draw_points(&mut chart, pts, floor)
}

/// A panel's chart: both axes logarithmic.
type LogChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<LogCoord<f64>, LogCoord<f64>>>;

/// Where a point is drawn: its medians, unfairness raised to the axis floor.
fn at(p: &Point, floor: f64) -> (f64, f64) {
    (p.x.median.max(floor), p.y.median)
}

/// The Pareto frontier through the panel's points, each of its points ringed (a frontier of one
/// point draws no line).
fn draw_frontier<DB: DrawingBackend>(
    chart: &mut LogChart<'_, DB>,
    pts: &[Point],
    floor: f64,
) -> Result<(), String> {
    let front = pareto(&pts.iter().map(|p| at(p, floor)).collect::<Vec<_>>());
    let on_front = front.iter().map(|&i| at(&pts[i], floor));
    chart
        .draw_series(LineSeries::new(
            on_front.clone(),
            BLACK.mix(0.5).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(on_front.map(|xy| Circle::new(xy, 8, BLACK.mix(0.5).stroke_width(2))))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Each variant's point with its error bars, then the names, placed by [`name_points`].
fn draw_points<DB: DrawingBackend>(
    chart: &mut LogChart<'_, DB>,
    pts: &[Point],
    floor: f64,
) -> Result<(), String> {
    for p in pts {
        let c = super::plots::color(p.colour);
        let (x, y) = at(p, floor);
        chart
            .draw_series(error_bars(p, x, y, floor, c))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series([Circle::new((x, y), 4, c.filled())])
            .map_err(|e| e.to_string())?;
    }
    name_points(chart, pts, floor)
}

/// The font size of the points' names.
const NAME_SIZE: f64 = 13.0;

/// Each point's name, on ground no other name or point covers: beside its point where there is
/// room, else as near as there is, joined to it by a thin line. The frontier's points are named
/// first, so theirs sit nearest.
fn name_points<DB: DrawingBackend>(
    chart: &LogChart<'_, DB>,
    pts: &[Point],
    floor: f64,
) -> Result<(), String> {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let mut placer = Placer::new(Rect {
        x0: f64::from(xs.start) + 2.0,
        y0: f64::from(ys.start) + 2.0,
        x1: f64::from(xs.end) - 2.0,
        y1: f64::from(ys.end) - 2.0,
    });
    let pixel = |p: &Point| {
        let (x, y) = chart.backend_coord(&at(p, floor));
        (f64::from(x), f64::from(y))
    };
    let front = pareto(&pts.iter().map(|p| at(p, floor)).collect::<Vec<_>>());
    for (i, p) in pts.iter().enumerate() {
        let (x, y) = pixel(p);
        // The frontier's ring is wider than a plain point.
        placer.block(Rect::around(
            x,
            y,
            if front.contains(&i) { 9.0 } else { 5.0 },
        ));
    }
    let order = front
        .iter()
        .copied()
        .chain((0..pts.len()).filter(|i| !front.contains(i)));
    let area = chart.plotting_area().strip_coord_spec();
    let (bx, by) = area.get_base_pixel();
    let local = |(x, y): (f64, f64)| (x as i32 - bx, y as i32 - by);
    for i in order {
        let p = &pts[i];
        let c = super::plots::color(p.colour);
        let point = pixel(p);
        // No room left anywhere (dozens of points on one panel): the point goes unnamed rather
        // than named over another.
        let Some(placed) = placer.place(&p.name, NAME_SIZE, point) else {
            continue;
        };
        if let Some(end) = placed.leader {
            area.draw(&PathElement::new(
                vec![local(point), local(end)],
                c.mix(0.6).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        }
        area.draw(&Text::new(
            p.name.clone(),
            local(placed.anchor),
            ("sans-serif", NAME_SIZE).into_font().color(&c),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The median's interval as error bars: vertical for throughput, horizontal for unfairness,
/// each with short end caps (in data units: a fixed fraction of a decade on the log axes).
fn error_bars(p: &Point, x: f64, y: f64, floor: f64, c: RGBColor) -> Vec<PathElement<(f64, f64)>> {
    let style = c.stroke_width(1);
    let (x0, x1) = (p.x.lo.max(floor), p.x.hi.max(floor));
    let (cap_x, cap_y) = (1.06, 1.06);
    vec![
        PathElement::new(vec![(x, p.y.lo), (x, p.y.hi)], style),
        PathElement::new(vec![(x / cap_x, p.y.lo), (x * cap_x, p.y.lo)], style),
        PathElement::new(vec![(x / cap_x, p.y.hi), (x * cap_x, p.y.hi)], style),
        PathElement::new(vec![(x0, y), (x1, y)], style),
        PathElement::new(vec![(x0, y / cap_y), (x0, y * cap_y)], style),
        PathElement::new(vec![(x1, y / cap_y), (x1, y * cap_y)], style),
    ]
}

#[cfg(test)]
mod tests {
    use super::pareto;

    #[test]
    fn the_frontier_keeps_only_undominated_points_sorted_by_unfairness() {
        // (unfairness, throughput): a fair slow lock, a fast unfair one, one in the middle, and
        // one beaten on both axes by the middle one.
        let pts = [(1.0, 10.0), (1000.0, 1000.0), (10.0, 500.0), (50.0, 400.0)];
        assert_eq!(pareto(&pts), vec![0, 2, 1]);
        // Equal points do not dominate each other.
        assert_eq!(pareto(&[(1.0, 1.0), (1.0, 1.0)]).len(), 2);
        assert!(pareto(&[]).is_empty());
    }
}
