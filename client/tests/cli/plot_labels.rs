//! No label of a plot covers another: headless Chromium lays out every SVG of two real reports
//! (a `turns` compare of every default variant, a `free` one with four contenders), a script in
//! the test's own page writes the box of every `<text>` (tick labels, axis titles, captions,
//! legends, the variants' names) into the page, and the test reads them back from the DOM and
//! checks them pairwise. A control plot with two labels on one spot proves the check sees an
//! overlap.

use std::path::Path;

use crate::report_html::{chromium_or_skip, render};
use crate::util::{TestDir, compare, placements};

/// A label's box as the browser laid it out, in page pixels.
#[derive(Debug)]
pub(crate) struct LabelBox {
    svg: String,
    text: String,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl LabelBox {
    /// More than a hair in common: boxes that only touch do not count.
    fn overlaps(&self, o: &LabelBox) -> bool {
        const HAIR: f64 = 0.5;
        self.x0 < o.x1 - HAIR
            && o.x0 < self.x1 - HAIR
            && self.y0 < o.y1 - HAIR
            && o.y0 < self.y1 - HAIR
    }
}

/// Asserts that no two labels of any of `svgs` (name, SVG text) overlap, as `browser` lays
/// them out, and that each of `named` (svg, label) is a label of its plot.
pub(crate) fn assert_no_label_overlaps(
    browser: &Path,
    svgs: &[(String, String)],
    named: &[(&str, &str)],
) {
    let boxes = label_boxes(browser, svgs);
    for (svg, label) in named {
        assert!(
            boxes.iter().any(|b| b.svg == *svg && b.text == *label),
            "{label} is a label of {svg}"
        );
    }
    let found = overlapping(&boxes);
    assert!(found.is_empty(), "labels overlap:\n{found:#?}");
}

/// Two labels on one spot: the check must see them.
const CONTROL: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"50\">\
    <text x=\"10\" y=\"30\" font-size=\"14\">control one</text>\
    <text x=\"20\" y=\"32\" font-size=\"14\">control two</text></svg>";

/// Writes every label's box into `<pre id="boxes">` as JSON.
const SCRIPT: &str = r#"<script>
const boxes = [];
for (const figure of document.querySelectorAll("div[data-svg]")) {
  for (const t of figure.querySelectorAll("text")) {
    const text = t.textContent.trim();
    const r = t.getBoundingClientRect();
    if (text === "" || r.width === 0 || r.height === 0) continue;
    boxes.push({svg: figure.dataset.svg, text, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom});
  }
}
const pre = document.createElement("pre");
pre.id = "boxes";
pre.textContent = JSON.stringify(boxes);
document.body.appendChild(pre);
</script>"#;

/// The boxes of every label of `svgs` (name, SVG text), laid out by `browser`.
pub(crate) fn label_boxes(browser: &Path, svgs: &[(String, String)]) -> Vec<LabelBox> {
    let dir = TestDir::new("labels");
    let mut page = String::from("<!DOCTYPE html><html><body style=\"margin:0\">");
    for (name, svg) in svgs {
        page.push_str(&format!("<div data-svg=\"{name}\">{svg}</div>"));
    }
    page.push_str(SCRIPT);
    page.push_str("</body></html>");
    let path = dir.path().join("labels.html");
    std::fs::write(&path, page).unwrap();
    let dom = render(browser, &path).dom;
    let start =
        dom.find("<pre id=\"boxes\">").expect("the script ran") + "<pre id=\"boxes\">".len();
    let json = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let all: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let f = |b: &serde_json::Value, k: &str| b[k].as_f64().unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .map(|b| LabelBox {
            svg: b["svg"].as_str().unwrap().to_string(),
            text: b["text"].as_str().unwrap().to_string(),
            x0: f(b, "x0"),
            y0: f(b, "y0"),
            x1: f(b, "x1"),
            y1: f(b, "y1"),
        })
        .collect()
}

/// Every pair of labels of one SVG that overlap, as "svg: `a` over `b`".
pub(crate) fn overlapping(boxes: &[LabelBox]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            if a.svg == b.svg && a.overlaps(b) {
                found.push(format!(
                    "{}: `{}` over `{}` ({a:?} {b:?})",
                    a.svg, a.text, b.text
                ));
            }
        }
    }
    found
}

/// The SVG files of a report folder, by name.
pub(crate) fn svgs_of(report: &Path) -> Vec<(String, String)> {
    let mut svgs: Vec<(String, String)> = std::fs::read_dir(report)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    svgs.sort();
    svgs
}

/// A compare into `dir/name`, which must succeed.
fn report(runtime: &Path, dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let out_dir = dir.join(name);
    let mut all = args.to_vec();
    all.extend(["--out", out_dir.to_str().unwrap()]);
    let out = compare(runtime, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir
}

#[test]
fn no_label_of_any_plot_overlaps_another() {
    let Some(browser) = chromium_or_skip("no_label_of_any_plot_overlaps_another") else {
        return;
    };
    let runtime = TestDir::new("labels-rt");
    let dir = TestDir::new("labels-out");
    let places = placements().join(",");
    // Every default variant: the longest names and the most crowded panels.
    let turns = report(
        runtime.path(),
        dir.path(),
        "turns",
        &[
            "--placements",
            &places,
            "--rounds",
            "30",
            "--max-seconds",
            "0.1",
            "--repeats",
            "1",
        ],
    );
    // Two repeats: the frontier's points get error bars.
    let free = report(
        runtime.path(),
        dir.path(),
        "free",
        &[
            "--mode",
            "free",
            "--contenders",
            "4",
            "--placements",
            "same-cpu,free",
            "--rounds",
            "2000",
            "--max-seconds",
            "0.1",
            "--repeats",
            "2",
        ],
    );
    let mut svgs = vec![("control.svg".to_string(), CONTROL.to_string())];
    for (folder, report) in [("turns", &turns), ("free", &free)] {
        for (name, svg) in svgs_of(report) {
            svgs.push((format!("{folder}/{name}"), svg));
        }
    }
    let names: Vec<&str> = svgs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "turns/whoops.svg",
        "free/frontier.svg",
        "free/latency-free.svg",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let boxes = label_boxes(&browser, &svgs);
    // Every variant is named in the whoops chart and on the frontier.
    for (svg, variant) in [
        ("turns/whoops.svg", "starvation-futex"),
        ("free/frontier.svg", "ticket"),
    ] {
        assert!(
            boxes.iter().any(|b| b.svg == svg && b.text == variant),
            "{variant} is a label of {svg}"
        );
    }
    let found = overlapping(&boxes);
    assert_eq!(
        found
            .iter()
            .filter(|f| f.starts_with("control.svg"))
            .count(),
        1,
        "the control's two labels overlap, and the check sees it: {found:?}"
    );
    let real: Vec<&String> = found
        .iter()
        .filter(|f| !f.starts_with("control.svg"))
        .collect();
    assert!(real.is_empty(), "labels overlap:\n{real:#?}");
}
