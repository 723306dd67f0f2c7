//! Text helpers with no lockfair type in them: a plain table, rendered aligned for the terminal
//! or as Markdown (the terminal and `summary.md` show the same rows), and durations a person reads
//! at a glance. Below everything that prints, so `experiment::bench` and `report` share them.

/// Rows of cells under a header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns (by index) to align left; the rest, numbers, align right.
    pub left: Vec<usize>,
}

impl Table {
    /// A table with these column names; the first `left` columns are text, aligned left.
    pub fn new(headers: &[&str], left: usize) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: (0..left).collect(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(cell.chars().count());
                }
            }
        }
        w
    }

    fn line(&self, cells: &[String], widths: &[usize], sep: &str) -> String {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let pad = w.saturating_sub(c.chars().count());
                if self.left.contains(&i) {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join(sep)
            .trim_end()
            .to_string()
    }

    /// The same table with only the columns whose header is in `keep` (in the table's order).
    pub fn only(&self, keep: &[&str]) -> Table {
        let kept: Vec<usize> = (0..self.headers.len())
            .filter(|&i| keep.contains(&self.headers[i].as_str()))
            .collect();
        let pick = |cells: &[String]| -> Vec<String> {
            kept.iter().filter_map(|&i| cells.get(i).cloned()).collect()
        };
        Table {
            headers: pick(&self.headers),
            rows: self.rows.iter().map(|r| pick(r)).collect(),
            left: (0..kept.len())
                .filter(|&j| self.left.contains(&kept[j]))
                .collect(),
        }
    }

    /// The width of [`Table::to_text`]'s widest line, in characters.
    pub fn text_width(&self) -> usize {
        self.to_text()
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    }

    /// Aligned columns for a terminal.
    pub fn to_text(&self) -> String {
        let widths = self.widths();
        let mut out = self.line(&self.headers, &widths, "  ");
        out.push('\n');
        for row in &self.rows {
            out.push_str(&self.line(row, &widths, "  "));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let widths = self.widths();
        let cell = |cells: &[String]| format!("| {} |\n", self.line_md(cells, &widths));
        let mut out = cell(&self.headers);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if self.left.contains(&i) {
                    format!(":{}", "-".repeat(w.max(3) - 1))
                } else {
                    format!("{}:", "-".repeat(w.max(3) - 1))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&cell(row));
        }
        out
    }

    fn line_md(&self, cells: &[String], widths: &[usize]) -> String {
        cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let c = c.replace('|', "\\|");
                let pad = w.max(3).saturating_sub(c.chars().count());
                if self.left.contains(&i) {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// A duration in nanoseconds with a unit a person reads at a glance: `850 ns`, `3.41 µs`,
/// `12.3 ms`, `1.20 s`.
pub fn fmt_ns(ns: f64) -> String {
    let (divisor, unit) = time_unit(ns);
    format!("{} {unit}", fmt_3(ns / divisor, unit == "ns"))
}

/// `ns` in the unit of `like` (without the unit), so a range reads `3.30–3.52` beside `3.41 µs`.
pub fn fmt_ns_as(ns: f64, like: f64) -> String {
    let (divisor, unit) = time_unit(like);
    fmt_3(ns / divisor, unit == "ns")
}

fn time_unit(ns: f64) -> (f64, &'static str) {
    if ns < 1e3 {
        (1.0, "ns")
    } else if ns < 1e6 {
        (1e3, "µs")
    } else if ns < 1e9 {
        (1e6, "ms")
    } else {
        (1e9, "s")
    }
}

/// Three significant figures (whole numbers when `integer`).
fn fmt_3(value: f64, integer: bool) -> String {
    if integer {
        format!("{value:.0}")
    } else {
        three_figures(value)
    }
}

/// `text` with each of its lines broken at spaces into lines of at most `width` characters (a
/// word longer than that stands alone): prose under a table, for a terminal.
pub fn wrap(text: &str, width: usize) -> String {
    text.split('\n')
        .map(|line| {
            let mut out = String::new();
            let mut len = 0;
            for word in line.split(' ').filter(|w| !w.is_empty()) {
                let n = word.chars().count();
                if len > 0 && len + 1 + n > width {
                    out.push('\n');
                    len = 0;
                } else if len > 0 {
                    out.push(' ');
                    len += 1;
                }
                out.push_str(word);
                len += n;
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A count with its thousands set apart: `950`, `1,250`, `10,000`.
pub fn fmt_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Seconds as a person writes them: `10 s`, `0.25 s`, `1.5 s`.
pub fn fmt_seconds(seconds: f64) -> String {
    let s = format!("{seconds:.3}");
    format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Three significant figures for a value under 1000 (`0.54` → `0.54`, `12.34` → `12.3`), and
/// the whole number from 100 up.
pub fn three_figures(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_ns(850.0), "850 ns");
        assert_eq!(fmt_ns(3_412.0), "3.41 µs");
        assert_eq!(fmt_ns(12_300_000.0), "12.3 ms");
        assert_eq!(fmt_ns(1_200_000_000.0), "1.20 s");
    }

    #[test]
    fn a_table_keeps_only_the_columns_asked_for_in_its_own_order() {
        let mut t = Table::new(&["variant", "placement", "a", "b"], 2);
        t.push(vec!["ofd".into(), "free".into(), "1".into(), "2".into()]);
        let narrow = t.only(&["b", "variant"]);
        assert_eq!(narrow.headers, ["variant", "b"]);
        assert_eq!(narrow.rows, [["ofd", "2"]]);
        assert_eq!(narrow.left, [0]);
        assert_eq!(narrow.text_width(), "variant  b".len());
    }

    /// Words to lines of at most `width` characters.
    #[test]
    fn prose_wraps_at_word_boundaries() {
        let text = "one two three four five";
        assert_eq!(wrap(text, 9), "one two\nthree\nfour five");
        assert_eq!(wrap("a\n\nb", 9), "a\n\nb");
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            "averyveryverylongword\nx"
        );
    }

    #[test]
    fn counts_and_seconds_read_naturally() {
        assert_eq!(fmt_thousands(0), "0");
        assert_eq!(fmt_thousands(950), "950");
        assert_eq!(fmt_thousands(1_250), "1,250");
        assert_eq!(fmt_thousands(10_000), "10,000");
        assert_eq!(fmt_thousands(1_234_567), "1,234,567");
        assert_eq!(fmt_seconds(10.0), "10 s");
        assert_eq!(fmt_seconds(0.25), "0.25 s");
        assert_eq!(fmt_seconds(1.5), "1.5 s");
    }

    #[test]
    fn text_and_markdown_carry_the_same_cells() {
        let mut t = Table::new(&["variant", "whoops"], 1);
        t.push(vec!["ofd".into(), "12".into()]);
        assert_eq!(t.to_text(), "variant  whoops\nofd          12\n");
        assert_eq!(
            t.to_markdown(),
            "| variant | whoops |\n| :------ | -----: |\n| ofd     |     12 |\n"
        );
    }
}
