//! `compare --kernel-trace` in `report.html`: the kernel's account of every traced cell, with
//! lockfair's barging rate (its waiting-bit proxy) beside the kernel's regrant rate, and each
//! cell's timeline picture.

use std::io;

use super::page::{esc, figure, file_href, paragraphs, table_html};
use super::{Input, Section};
use crate::report::kernel::{compare_kernel_table, kernel_notes};
use crate::report::timeline::timeline_file_name;

/// The section, when the comparison ran with `--kernel-trace`.
pub fn kernel(p: &Input) -> io::Result<Option<Section>> {
    let notes = kernel_notes(p.report);
    let Some(mut table) = compare_kernel_table(p.report) else {
        // Asked for but not taken: say why once.
        return Ok(notes
            .first()
            .map(|n| Section::new("kernel", "Kernel's account", paragraphs(&[n]))));
    };
    let mut body = paragraphs(&[
        "What the kernel recorded (tracefs) for every traced cell and repeat. Lockfair's \
         barging rate: its proxy, from the waiting bits. The kernel's regrant rate: grants to the contender \
         that released last while another contender was queued in the kernel. Barges: a queued \
         waiter released by an unlock, beaten to the lock and queued again, confirmed one by \
         one. A mechanism that takes no file lock shows no grants.",
    ]);
    // Named in full here: the page has room for it.
    for h in &mut table.headers {
        match h.as_str() {
            "proxy rate" => *h = "lockfair barging rate".into(),
            "kernel rate" => *h = "kernel regrant rate".into(),
            _ => {}
        }
    }
    body.push_str(&table_html(&table));
    if let Some(n) = notes.first() {
        body.push_str(&paragraphs(&[format!(
            "{} cells had no trace; the first says: {n}",
            notes.len()
        )]));
    }
    for &placement in &p.report.placements {
        for &variant in &p.report.variants {
            body.push_str(&timeline(p, &timeline_file_name(variant, placement))?);
        }
    }
    Ok(Some(Section::new("kernel", "Kernel's account", body)))
}

/// A cell's timeline from the report folder, inline when it is a self-contained SVG (no link,
/// no script), else linked; nothing if the cell was not traced.
fn timeline(p: &Input, name: &str) -> io::Result<String> {
    let svg = match p.dir.read_to_string(name) {
        Ok(svg) => svg,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let caption = format!(
        "A few milliseconds of the first repeat as the kernel saw them, one lane per \
         contender ({name})"
    );
    if self_contained(&svg) {
        return Ok(figure(&svg, &caption));
    }
    Ok(format!(
        "<p><a href=\"{}\">{}</a></p>\n",
        file_href(name),
        esc(&caption)
    ))
}

/// True if `svg` is one `<svg>` element that loads nothing and runs nothing.
fn self_contained(svg: &str) -> bool {
    let lower = svg.to_ascii_lowercase();
    lower.trim_start().starts_with("<svg")
        && lower.trim_end().ends_with("</svg>")
        && ["<script", "href", "url(", "<foreignobject", "<image"]
            .iter()
            .all(|bad| !lower.contains(bad))
        && !has_event_attribute(&lower)
}

/// An `on…=` attribute (`onload=`, `onclick =`): words like "on CPU" in the text are fine.
fn has_event_attribute(svg: &str) -> bool {
    svg.match_indices(" on").any(|(i, _)| {
        let rest = svg[i + 3..].trim_start_matches(|c: char| c.is_ascii_alphabetic());
        rest.len() < svg.len() - i - 3 && rest.trim_start().starts_with('=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_self_contained_svg_is_inlined() {
        assert!(self_contained(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>\n"
        ));
        assert!(!self_contained("<svg><script>x()</script></svg>"));
        assert!(!self_contained("<svg><image href=\"http://x\"/></svg>"));
        assert!(!self_contained("<svg><rect onload=\"x()\"/></svg>"));
        assert!(!self_contained("<html><svg></svg></html>"));
        assert!(self_contained(
            "<svg><text>ran on cpu 1 = fine?</text></svg>"
        ));
    }
}
