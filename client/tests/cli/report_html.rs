//! `report.html` in a real browser: headless Chromium renders it, and the test reads the
//! rendered DOM (every section, table and plot there and not empty, text escaped, links to
//! files that exist) and Chromium's own network log (no request made by the page).
//!
//! Why the network log: Chromium itself talks to Google services in the background (component
//! updates, network time, accounts) whatever the flags, so "no connection at all" cannot be
//! asserted. Its net log tells the two apart: a request a page made carries the page's origin
//! as `initiator` (`"null"` for a file:// page), a browser request carries "not an origin". The
//! test loads a control page with two remote images first, to prove the log shows page
//! requests in this Chromium; then nothing leaves the machine anyway: every host name resolves
//! to nothing (`--host-resolver-rules`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{TestDir, compare, run_within};

/// Chromium, if installed: `$LOCKFAIR_CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LOCKFAIR_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium or a clear skip. The message goes straight to stderr (not through the test
/// harness's capture), so a skip is never silent; `LOCKFAIR_REQUIRE_CHROMIUM=1` (CI) makes a
/// missing browser a failure instead.
pub(crate) fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        crate::util::skip(
            crate::util::Needs::Chromium,
            test,
            "no chromium on PATH (install Debian's `chromium` package, or set LOCKFAIR_CHROMIUM)",
        );
    }
    found
}

/// What one headless render gave: the DOM after load, and the requests pages made.
pub(crate) struct Render {
    pub(crate) dom: String,
    page_requests: Vec<String>,
}

/// Renders `page` headless, offline, with a fresh profile, logging the network.
pub(crate) fn render(browser: &Path, page: &Path) -> Render {
    let profile = TestDir::new("chromium");
    let netlog = profile.path().join("netlog.json");
    let out = run_within(
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--virtual-time-budget=2000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("p").display()
            ))
            .arg(format!("--log-net-log={}", netlog.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&netlog).expect("chromium wrote its net log");
    Render {
        dom: String::from_utf8(out.stdout).expect("the DOM is UTF-8"),
        page_requests: page_requests(&log),
    }
}

/// The URLs of network requests a page started, from a Chromium net log (which may end
/// unclosed if the browser exited mid-write).
fn page_requests(log: &str) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(log)
        .or_else(|_| {
            let body = log.trim_end().trim_end_matches(',');
            serde_json::from_str(&format!("{body}]}}"))
        })
        .expect("the net log is JSON");
    json["events"]
        .as_array()
        .expect("the net log lists events")
        .iter()
        .filter_map(|e| {
            let url = e["params"]["url"].as_str()?;
            let initiator = e["params"]["initiator"].as_str()?;
            (initiator != "not an origin").then(|| url.to_string())
        })
        .collect()
}

/// The text of every `<section id="...">` of the page, by id.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id} in the page"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").expect("sections are closed")]
}

/// Attribute values named `attr` in `html`.
fn attributes<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let v = &html[i + needle.len()..];
            &v[..v.find('"').unwrap_or(0)]
        })
        .collect()
}

#[test]
fn the_control_page_shows_that_page_requests_are_seen() {
    let Some(browser) = chromium_or_skip("the_control_page_shows_that_page_requests_are_seen")
    else {
        return;
    };
    let dir = TestDir::new("html-control");
    let page = dir.path().join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><p>control</p><img src=\"http://lockfair-control.invalid/a.png\">\
         <img src=\"https://lockfair-control.invalid/b.png\">",
    )
    .unwrap();
    let r = render(&browser, &page);
    assert!(r.dom.contains("control"), "{}", r.dom);
    for img in ["a.png", "b.png"] {
        assert!(
            r.page_requests.iter().any(|u| u.ends_with(img)),
            "the net log shows the control page's request for {img}: {:?}",
            r.page_requests
        );
    }
}

#[test]
fn report_html_renders_every_section_offline_with_text_escaped() {
    let Some(browser) =
        chromium_or_skip("report_html_renders_every_section_offline_with_text_escaped")
    else {
        return;
    };
    let runtime = TestDir::new("html-rt");
    let dir = TestDir::new("html");
    // The folder's name is in the command line the page shows: it must come out as text.
    let report = dir.path().join("run <b>&'\"");
    let out = compare(
        runtime.path(),
        &[
            "--variants",
            "ofd,pipe,ticket",
            "--placements",
            "same-cpu,free",
            "--rounds",
            "200",
            "--max-seconds",
            "0.2",
            "--repeats",
            "1",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let page = report.join("report.html");
    assert!(
        stderr.contains(&page.display().to_string()),
        "compare prints the page's path: {stderr}"
    );
    let r = render(&browser, &page);
    assert!(
        r.page_requests.is_empty(),
        "the page made requests: {:?}",
        r.page_requests
    );
    check_offline(&r.dom);
    check_sections(&r.dom);
    check_links(&r.dom, &report);
    // The command line as text: no <b> element, the characters escaped.
    let machine = section(&r.dom, "machine");
    assert!(!r.dom.contains("<b>"), "the folder name became markup");
    assert!(machine.contains("run &lt;b&gt;&amp;"), "{machine}");
}

/// Nothing on the page could load anything: no script, no embedded resource, a CSP that
/// forbids every load.
fn check_offline(dom: &str) {
    assert!(
        dom.contains("Content-Security-Policy") && dom.contains("default-src 'none'"),
        "the page forbids loads itself"
    );
    for tag in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "url(", "@import",
    ] {
        assert!(!dom.contains(tag), "the page contains {tag}");
    }
    assert!(attributes(dom, "src").is_empty() && attributes(dom, "srcset").is_empty());
}

/// Every section is there and holds what it should: the tables have a row per cell, every
/// placement has a latency plot with a curve per variant, and whoops have their plot.
fn check_sections(dom: &str) {
    // The page opens with the answer: the first section, a recommendation per need, and the
    // mechanisms' table with a row per variant.
    let first = dom
        .find("<section id=\"")
        .map(|at| &dom[at..])
        .unwrap_or_default();
    assert!(
        first.starts_with("<section id=\"what-to-use\">"),
        "the page opens with: {}",
        &first[..first.len().min(80)]
    );
    let answer = section(dom, "what-to-use");
    assert!(answer.contains("What to use"), "{answer}");
    assert_eq!(
        answer.matches("<li>").count(),
        4,
        "a recommendation per need: {answer}"
    );
    assert_eq!(
        answer.matches("<tr>").count(),
        1 + 3,
        "a header and a row per variant"
    );
    let verdict = section(dom, "verdict");
    assert!(
        ["ofd", "pipe", "ticket"]
            .iter()
            .any(|v| verdict.contains(v)),
        "the verdict names cells: {verdict}"
    );
    for id in ["table", "contenders"] {
        let rows = section(dom, id).matches("<tr>").count();
        assert_eq!(rows, 1 + 3 * 2, "{id}: a header and a row per cell");
    }
    let latency = section(dom, "latency");
    assert_eq!(latency.matches("<svg").count(), 2, "a plot per placement");
    for plot in latency.split("<svg").skip(1) {
        assert!(
            plot.matches("<polyline").count() >= 3,
            "a curve per variant"
        );
        for v in ["ofd", "pipe", "ticket"] {
            assert!(
                plot.contains(&format!(">\n{v}\n<")) || plot.contains(&format!(">{v}<")),
                "{v} in the legend"
            );
        }
    }
    let whoops = section(dom, "whoops");
    assert_eq!(whoops.matches("<svg").count(), 1);
    assert!(whoops.matches("<rect").count() > 1, "whoops has bars");
    let machine = section(dom, "machine");
    assert!(machine.contains("Linux") && machine.contains("lockfair-client compare"));
}

/// Every link points at a file beside the page, and every `.hgrm` and JSON file there is
/// linked.
fn check_links(dom: &str, report: &Path) {
    let files = section(dom, "files");
    let linked: Vec<String> = attributes(files, "href")
        .into_iter()
        .map(|h| {
            h.strip_prefix("./")
                .unwrap_or_else(|| panic!("{h} is not a file beside the page"))
                .to_string()
        })
        .collect();
    for name in &linked {
        assert!(
            !name.contains(':') && report.join(name).is_file(),
            "{name} exists"
        );
    }
    for entry in std::fs::read_dir(report).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".hgrm") || name.ends_with(".json") {
            assert!(linked.contains(&name), "{name} is linked");
        }
    }
    for href in attributes(dom, "href") {
        assert!(href.starts_with('#') || href.starts_with("./"), "{href}");
    }
}
