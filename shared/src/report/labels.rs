//! Where a plot's own labels go, so that none covers another: a label's box estimated from its
//! characters (DejaVu Sans's advances, rounded up, so the box is never smaller than a browser
//! draws it), and a placer that puts each label where it covers no label or point placed before,
//! as near its point as it can.

/// A rectangle in pixels: `x0 ≤ x1`, `y0 ≤ y1`, y growing downwards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    /// The square of half-side `r` around (x, y).
    pub fn around(x: f64, y: f64, r: f64) -> Rect {
        Rect {
            x0: x - r,
            y0: y - r,
            x1: x + r,
            y1: y + r,
        }
    }

    /// True if the two share more than an edge.
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn within(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }

    /// The point of this rectangle nearest to (x, y): where a leader line ends.
    pub fn nearest_to(&self, x: f64, y: f64) -> (f64, f64) {
        (x.clamp(self.x0, self.x1), y.clamp(self.y0, self.y1))
    }

    fn distance_to(&self, x: f64, y: f64) -> f64 {
        let (nx, ny) = self.nearest_to(x, y);
        (nx - x).hypot(ny - y)
    }
}

/// The em, in pixels, of plotters' font size `size`: its SVG backend writes `font-size` as
/// size / 1.24.
fn em(size: f64) -> f64 {
    size / 1.24
}

/// An advance a little over DejaVu Sans's (the `sans-serif` of Debian's Chromium), in em.
fn advance(c: char) -> f64 {
    match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.34,
        'f' | 't' | 'r' | '-' | '(' | ')' | '/' => 0.46,
        'm' | 'w' | '%' | 'M' | 'W' | '@' => 1.02,
        'A'..='Z' => 0.8,
        _ => 0.68,
    }
}

/// The width in pixels of `text` drawn at plotters' font size `size`.
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(advance).sum::<f64>() * em(size) + 2.0
}

/// The box of `text` drawn at font size `size` with its top-left anchor at (x, y): plotters puts
/// the baseline 0.76 em below y, and a browser's box runs from the font's ascent above it to
/// its descent below (0.93 and 0.24 em in DejaVu Sans).
pub(super) fn label_box(text: &str, size: f64, (x, y): (f64, f64)) -> Rect {
    let em = em(size);
    Rect {
        x0: x - 1.0,
        y0: y - 0.22 * em,
        x1: x + text_width(text, size),
        y1: y + 1.06 * em,
    }
}

/// Where a label went: the top-left anchor to draw it at, and whether it is far enough from its
/// point to need a leader line (then the line's end on the label's box).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Placed {
    pub anchor: (f64, f64),
    pub leader: Option<(f64, f64)>,
}

/// Labels placed one by one inside an area, each on free ground.
#[derive(Debug)]
pub(super) struct Placer {
    area: Rect,
    taken: Vec<Rect>,
}

/// Gap between a point and its label, in pixels.
const GAP: f64 = 5.0;

impl Placer {
    /// Labels will stay inside `area`.
    pub fn new(area: Rect) -> Placer {
        Placer {
            area,
            taken: Vec::new(),
        }
    }

    /// Marks `r` (a point's marker) as ground no label may cover.
    pub fn block(&mut self, r: Rect) {
        self.taken.push(r);
    }

    /// Finds free ground for `text` (font size `size`) near the point (px, py) and takes it:
    /// beside the point if it can, else the free spot nearest to it, with a leader line. `None`
    /// if the area has no room left at all.
    pub fn place(&mut self, text: &str, size: f64, (px, py): (f64, f64)) -> Option<Placed> {
        // The box for an anchor at (0, 0): where the text's box sits relative to its anchor.
        let unit = label_box(text, size, (0.0, 0.0));
        let (w, h) = (unit.x1 - unit.x0, unit.y1 - unit.y0);
        let free = |b: &Rect| b.within(&self.area) && !self.taken.iter().any(|t| t.intersects(b));
        let chosen = beside(px, py, w, h)
            .into_iter()
            .chain(rings(px, py, w, h))
            .find(|b| free(b))
            .or_else(|| {
                grid(&self.area, w, h)
                    .filter(|b| free(b))
                    .min_by(|a, b| a.distance_to(px, py).total_cmp(&b.distance_to(px, py)))
            })?;
        self.taken.push(chosen);
        let near = chosen.distance_to(px, py) <= 2.0 * GAP;
        Some(Placed {
            anchor: (chosen.x0 - unit.x0, chosen.y0 - unit.y0),
            leader: (!near).then(|| chosen.nearest_to(px, py)),
        })
    }
}

/// The eight spots right beside a point, the ones off its horizontal error bar first.
fn beside(px: f64, py: f64, w: f64, h: f64) -> [Rect; 8] {
    let at = |x0: f64, y0: f64| Rect {
        x0,
        y0,
        x1: x0 + w,
        y1: y0 + h,
    };
    let (right, left, centre) = (px + GAP, px - GAP - w, px - w / 2.0);
    [
        at(right, py - 2.0 - h),
        at(right, py + 2.0),
        at(left, py - 2.0 - h),
        at(left, py + 2.0),
        at(right, py - h / 2.0),
        at(left, py - h / 2.0),
        at(centre, py - GAP - h),
        at(centre, py + GAP),
    ]
}

/// Spots on widening rings around a point: 16 directions, every 8 pixels out to 240.
fn rings(px: f64, py: f64, w: f64, h: f64) -> impl Iterator<Item = Rect> {
    (1..=30).flat_map(move |ring| {
        let d = GAP + 8.0 * ring as f64;
        (0..16).map(move |k| {
            let angle = std::f64::consts::TAU * k as f64 / 16.0;
            // The box's nearest edge at distance d: its centre further out by half its size.
            let cx = px + angle.cos() * (d + w / 2.0);
            let cy = py + angle.sin() * (d + h / 2.0);
            Rect {
                x0: cx - w / 2.0,
                y0: cy - h / 2.0,
                x1: cx + w / 2.0,
                y1: cy + h / 2.0,
            }
        })
    })
}

/// Every spot of the area on a 4-pixel grid: the last resort.
fn grid(area: &Rect, w: f64, h: f64) -> impl Iterator<Item = Rect> {
    let (cols, rows) = (
        ((area.x1 - area.x0 - w) / 4.0).max(0.0) as usize,
        ((area.y1 - area.y0 - h) / 4.0).max(0.0) as usize,
    );
    let (x0, y0) = (area.x0, area.y0);
    (0..=rows).flat_map(move |r| {
        (0..=cols).map(move |c| {
            let (x, y) = (x0 + 4.0 * c as f64, y0 + 4.0 * r as f64);
            Rect {
                x0: x,
                y0: y,
                x1: x + w,
                y1: y + h,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area() -> Rect {
        Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 400.0,
            y1: 300.0,
        }
    }

    #[test]
    fn a_label_goes_beside_its_point_when_there_is_room() {
        let mut p = Placer::new(area());
        let placed = p.place("ticket", 13.0, (100.0, 100.0)).unwrap();
        assert!(placed.leader.is_none());
        let b = label_box("ticket", 13.0, placed.anchor);
        assert!(b.distance_to(100.0, 100.0) <= 2.0 * GAP, "{b:?}");
    }

    #[test]
    fn labels_of_points_on_one_spot_never_overlap_and_stay_inside() {
        let mut p = Placer::new(area());
        let names = [
            "seed",
            "ofd",
            "posix",
            "lockf",
            "flock",
            "eventfd",
            "futex",
            "pipe",
            "ticket",
            "spin-futex",
            "tokio-eventfd",
            "pi-futex",
            "robust-mutex",
            "fair-futex",
            "starvation-futex",
            "uring-futex",
        ];
        for n in names {
            p.block(Rect::around(200.0, 150.0, 5.0));
            let placed = p.place(n, 13.0, (200.0, 150.0)).expect("room for all");
            let b = label_box(n, 13.0, placed.anchor);
            assert!(b.within(&area()), "{n}: {b:?}");
        }
        // Every box placed (and the blocked markers) is disjoint from every other.
        let labels: Vec<&Rect> = p.taken.iter().filter(|r| r.x1 - r.x0 > 10.0).collect();
        assert_eq!(labels.len(), names.len());
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.intersects(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_full_area_has_no_room() {
        let mut p = Placer::new(Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 60.0,
            y1: 20.0,
        });
        assert!(
            p.place("a long label that cannot fit", 13.0, (10.0, 10.0))
                .is_none()
        );
    }

    #[test]
    fn wider_text_is_wider() {
        assert!(text_width("starvation-futex", 13.0) > text_width("pipe", 13.0));
        assert!(text_width("mmm", 13.0) > text_width("iii", 13.0));
    }
}
