//! `timeline.svg`: a few milliseconds of a run as the kernel saw them, one lane per contender.
//!
//! Each lane has a thin bar for the scheduler (running, runnable, sleeping) over a thick bar for
//! the lock (waiting in the kernel's queue, holding it for its turn, holding it for nothing: a
//! whoop). Every barge is drawn as a numbered chain: the releaser's unlock (●), the waiter's
//! wakeup (▲), someone else's grant (■), the waiter queued again (✕). Hand-written SVG: plain
//! shapes and `<title>` tooltips, readable without script or fonts beyond the default.

use std::fmt::Write;

use crate::outcome::kernel::{BargeChain, CpuState, LockState, Span, Timeline};
use crate::text::fmt_ns;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 140.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 56.0;
const LANE: f64 = 64.0;
const CPU_BAR: f64 = 10.0;
const LOCK_BAR: f64 = 26.0;
/// Chains drawn at most: more would hide the lanes.
const MAX_CHAINS: usize = 24;

/// Where things go on the page.
struct Page {
    start_ns: u64,
    ns_per_px: f64,
}

impl Page {
    fn new(t: &Timeline) -> Page {
        let span = t.end_ns.saturating_sub(t.start_ns).max(1) as f64;
        Page {
            start_ns: t.start_ns,
            ns_per_px: span / (WIDTH - LEFT - RIGHT),
        }
    }

    fn x(&self, ns: u64) -> f64 {
        LEFT + ns.saturating_sub(self.start_ns) as f64 / self.ns_per_px
    }

    fn lane_top(lane: usize) -> f64 {
        TOP + lane as f64 * LANE
    }

    fn lock_mid(lane: usize) -> f64 {
        Page::lane_top(lane) + CPU_BAR + 4.0 + LOCK_BAR / 2.0
    }
}

/// `compare --kernel-trace`'s picture of one cell, in the report folder (`report.html` shows it).
pub fn timeline_file_name(v: crate::variant::Variant, p: crate::placement::Placement) -> String {
    format!("timeline-{v}-{p}.svg")
}

/// The whole picture.
pub fn timeline_svg(t: &Timeline, title: &str) -> String {
    let page = Page::new(t);
    let height = TOP + t.lanes.len() as f64 * LANE + 70.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="15">{}</text><text x="{LEFT}" y="40" fill="#555">{} barges in this window; the kernel's trace clock, microsecond resolution</text>"##,
        escape(title),
        t.chains.len()
    );
    for lane in &t.lanes {
        lane_svg(
            &mut svg,
            &page,
            lane.contender,
            &lane.cpu,
            &lane.lock,
            lane.tid,
        );
    }
    for (i, chain) in t.chains.iter().take(MAX_CHAINS).enumerate() {
        chain_svg(&mut svg, &page, i + 1, chain);
    }
    axis_svg(&mut svg, &page, t, TOP + t.lanes.len() as f64 * LANE);
    legend_svg(&mut svg, height - 22.0);
    svg.push_str("</svg>\n");
    svg
}

fn lane_svg(
    svg: &mut String,
    page: &Page,
    lane: usize,
    cpu: &[Span<CpuState>],
    lock: &[Span<LockState>],
    tid: i32,
) {
    let top = Page::lane_top(lane);
    let _ = write!(
        svg,
        r##"<text x="8" y="{}">contender {lane}</text><text x="8" y="{}" fill="#777" font-size="10">tid {tid}</text>"##,
        top + CPU_BAR + 14.0,
        top + CPU_BAR + 28.0
    );
    for (x0, x1, s) in merged(page, cpu) {
        rect(svg, x0, top, x1 - x0, CPU_BAR, cpu_color(s));
    }
    let lock_top = top + CPU_BAR + 4.0;
    for (x0, x1, s) in merged(page, lock) {
        rect(svg, x0, lock_top, x1 - x0, LOCK_BAR, lock_color(s));
    }
}

/// Spans as pixel runs, neighbours of one state closer than half a pixel joined: a whoop storm
/// of microsecond holds becomes one bar.
fn merged<S: Copy + PartialEq>(page: &Page, spans: &[Span<S>]) -> Vec<(f64, f64, S)> {
    let mut out: Vec<(f64, f64, S)> = Vec::new();
    for s in spans {
        let (x0, x1) = (
            page.x(s.start_ns),
            page.x(s.end_ns).max(page.x(s.start_ns) + 0.5),
        );
        match out.last_mut() {
            Some(last) if last.2 == s.state && x0 - last.1 < 0.5 => last.1 = last.1.max(x1),
            _ => out.push((x0, x1, s.state)),
        }
    }
    out
}

fn rect(svg: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = write!(
        svg,
        r#"<rect x="{x:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}" fill="{fill}"/>"#
    );
}

fn cpu_color(s: CpuState) -> &'static str {
    match s {
        CpuState::Running => "#38a169",
        CpuState::Runnable => "#ecc94b",
        CpuState::Sleeping => "#e2e8f0",
    }
}

fn lock_color(s: LockState) -> &'static str {
    match s {
        LockState::Holding => "#2b6cb0",
        LockState::Whooping => "#dd6b20",
        LockState::Waiting => "#fc8181",
    }
}

/// One barge: unlock → wake → another's grant → queued again, as a numbered path.
fn chain_svg(svg: &mut String, page: &Page, n: usize, c: &BargeChain) {
    let unlock = (page.x(c.unlock_ns), Page::lock_mid(c.unlocker));
    let wake = c
        .wake_ns
        .map(|ns| (page.x(ns), Page::lane_top(c.waiter) + CPU_BAR / 2.0));
    let grant = (page.x(c.grant_ns), Page::lock_mid(c.granted_to));
    let requeue = (page.x(c.requeued_ns), Page::lock_mid(c.waiter));
    let points: Vec<(f64, f64)> = [Some(unlock), wake, Some(grant), Some(requeue)]
        .into_iter()
        .flatten()
        .collect();
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.2},{y:.1}"))
        .collect();
    let _ = write!(
        svg,
        r##"<g class="barge"><title>barge {n}: contender {} unlocked at {}, contender {} was woken{}, contender {} was granted the lock {} later, and contender {} was queued again {} after the unlock</title><polyline points="{}" fill="none" stroke="#1a202c" stroke-width="1.2" stroke-dasharray="3,2"/>"##,
        c.unlocker,
        fmt_ns(c.unlock_ns.saturating_sub(page.start_ns) as f64),
        c.waiter,
        if c.wake_ns.is_some() {
            ""
        } else {
            " (it had not slept yet)"
        },
        c.granted_to,
        fmt_ns(c.grant_ns.saturating_sub(c.unlock_ns) as f64),
        c.waiter,
        fmt_ns(c.requeued_ns.saturating_sub(c.unlock_ns) as f64),
        path.join(" ")
    );
    let _ = write!(
        svg,
        r##"<circle cx="{:.2}" cy="{:.1}" r="4" fill="#1a202c"/>"##,
        unlock.0, unlock.1
    );
    if let Some((x, y)) = wake {
        let _ = write!(
            svg,
            r##"<path d="M{:.2},{:.1} l4,7 h-8 z" fill="#1a202c"/>"##,
            x,
            y - 4.0
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{:.2}" y="{:.1}" width="7" height="7" fill="#1a202c"/><path d="M{:.2},{:.1} l8,8 m0,-8 l-8,8" stroke="#c53030" stroke-width="2.5"/><text x="{:.2}" y="{:.1}" font-size="10" fill="#c53030">{n}</text></g>"##,
        grant.0 - 3.5,
        grant.1 - 3.5,
        requeue.0 - 4.0,
        requeue.1 - 4.0,
        requeue.0 + 5.0,
        requeue.1 - 6.0
    );
}

/// Ticks at a round step under the lanes, as time since the window's start.
fn axis_svg(svg: &mut String, page: &Page, t: &Timeline, y: f64) {
    let span = t.end_ns.saturating_sub(t.start_ns).max(1);
    let step = [
        1_000u64, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
        2_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000,
    ]
    .into_iter()
    .find(|s| span / s <= 10)
    .unwrap_or(100_000_000);
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    let mut at = 0;
    while at <= span {
        let x = page.x(t.start_ns + at);
        let _ = write!(
            svg,
            r##"<line x1="{x:.2}" y1="{y}" x2="{x:.2}" y2="{}" stroke="#333"/><text x="{x:.2}" y="{}" text-anchor="middle" font-size="10">{}</text>"##,
            y + 5.0,
            y + 17.0,
            fmt_ns(at as f64)
        );
        at += step;
    }
}

fn legend_svg(svg: &mut String, y: f64) {
    let items = [
        (cpu_color(CpuState::Running), "running"),
        (cpu_color(CpuState::Runnable), "runnable (preempted)"),
        (cpu_color(CpuState::Sleeping), "sleeping"),
        (
            lock_color(LockState::Waiting),
            "waiting (queued in the kernel)",
        ),
        (lock_color(LockState::Holding), "holding the lock"),
        (
            lock_color(LockState::Whooping),
            "whooping (held, not its turn)",
        ),
    ];
    let mut x = LEFT;
    for (color, label) in items {
        rect(svg, x, y - 10.0, 12.0, 12.0, color);
        let _ = write!(svg, r#"<text x="{}" y="{y}">{label}</text>"#, x + 16.0);
        x += 22.0 + label.len() as f64 * 6.2;
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{}" fill="#555" font-size="11">barge: ● unlock, ▲ waiter woken, ■ another's grant, ✕ waiter queued again</text>"##,
        y + 16.0
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::kernel::Lane;

    fn span<S>(start_ns: u64, end_ns: u64, state: S) -> Span<S> {
        Span {
            start_ns,
            end_ns,
            state,
        }
    }

    fn sample() -> Timeline {
        Timeline {
            start_ns: 1_000_000,
            end_ns: 3_000_000,
            lanes: vec![
                Lane {
                    contender: 0,
                    tid: 10,
                    lock: vec![span(1_000_000, 1_500_000, LockState::Holding)],
                    cpu: vec![span(1_000_000, 3_000_000, CpuState::Running)],
                },
                Lane {
                    contender: 1,
                    tid: 11,
                    lock: (0..1000)
                        .map(|i| {
                            span(
                                1_600_000 + i * 1_000,
                                1_600_500 + i * 1_000,
                                LockState::Whooping,
                            )
                        })
                        .chain([span(1_200_000, 1_500_000, LockState::Waiting)])
                        .collect(),
                    cpu: vec![span(1_200_000, 1_500_000, CpuState::Sleeping)],
                },
            ],
            chains: vec![BargeChain {
                waiter: 1,
                unlocker: 0,
                unlock_ns: 1_500_000,
                wake_ns: Some(1_499_000),
                granted_to: 0,
                grant_ns: 1_501_000,
                requeued_ns: 1_540_000,
            }],
        }
    }

    #[test]
    fn draws_every_lane_the_chain_and_the_legend() {
        let svg = timeline_svg(&sample(), "ofd <same-cpu>");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("contender 0") && svg.contains("contender 1"));
        assert!(svg.contains("ofd &lt;same-cpu&gt;"));
        assert_eq!(svg.matches(r#"class="barge""#).count(), 1);
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        for color in ["#2b6cb0", "#dd6b20", "#fc8181", "#38a169", "#e2e8f0"] {
            assert!(svg.contains(color), "{color}");
        }
    }

    #[test]
    fn a_whoop_storm_becomes_a_few_bars_not_a_thousand() {
        let t = sample();
        let page = Page::new(&t);
        let storm = merged(&page, &t.lanes[1].lock[..1000]);
        assert!(storm.len() < 10, "{}", storm.len());
        assert!(
            storm
                .iter()
                .all(|(x0, x1, _)| x0 < x1 && *x1 <= WIDTH - RIGHT + 1.0)
        );
    }
}
