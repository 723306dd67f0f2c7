//! Links to every data file beside the page: the `.hgrm` histograms per cell, and the JSON,
//! Markdown and SVG files (whatever exporter wrote them).

use std::collections::BTreeMap;
use std::io;

use super::page::{esc, file_href};
use super::{Input, Section};
use crate::placement::Placement;
use crate::variant::Variant;

/// Files people open beside the page, by extension.
const LINKED: [&str; 5] = ["json", "md", "svg", "csv", "txt"];

pub fn files(p: &Input) -> io::Result<Option<Section>> {
    let mut body = String::new();
    let others = other_files(p)?;
    if !others.is_empty() {
        body.push_str("<ul class=\"files\">\n");
        for name in &others {
            body.push_str(&link_item(name, name));
        }
        body.push_str("</ul>\n");
    }
    let hgrm = histogram_files(p);
    if !hgrm.is_empty() {
        body.push_str(
            "<p>Latency histograms (HdrHistogram percentile tables), per variant and placement:</p>\n\
             <div class=\"scroll\"><table>\n<tbody>\n",
        );
        for (cell, links) in &hgrm {
            body.push_str(&format!("<tr><td>{}</td><td>", esc(cell)));
            let links: Vec<String> = links
                .iter()
                .map(|(label, name)| format!("<a href=\"{}\">{}</a>", file_href(name), esc(label)))
                .collect();
            body.push_str(&links.join(" · "));
            body.push_str("</td></tr>\n");
        }
        body.push_str("</tbody></table></div>\n");
    }
    Ok((!body.is_empty()).then(|| Section::new("files", "Files", body)))
}

fn link_item(label: &str, name: &str) -> String {
    format!(
        "<li><a href=\"{}\">{}</a></li>\n",
        file_href(name),
        esc(label)
    )
}

/// The `.hgrm` files that exist, grouped by cell in the tables' order (placement, then
/// variant): "ofd split" → [("server handoff", name)].
fn histogram_files(p: &Input) -> Vec<(String, Vec<(String, String)>)> {
    let mut cells: BTreeMap<(Placement, Variant), Vec<(String, String)>> = BTreeMap::new();
    for ((v, pl, who, m), _) in p.report.histograms() {
        let name = super::super::hgrm_file_name(*v, *pl, *who, *m);
        if p.dir.is_file(&name) {
            cells
                .entry((*pl, *v))
                .or_default()
                .push((format!("{} {}", who.name(), m.name()), name));
        }
    }
    cells
        .into_iter()
        .map(|((pl, v), links)| (format!("{v} {pl}"), links))
        .collect()
}

/// The other data files in the folder, sorted by name.
fn other_files(p: &Input) -> io::Result<Vec<String>> {
    let mut names = p.dir.file_names()?;
    names.retain(|name| {
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        LINKED.contains(&ext)
    });
    Ok(names)
}
