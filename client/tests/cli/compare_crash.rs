//! `compare --crash`: after the cells, the holder-death experiment for the variants compared,
//! in summary.json (`holder_death`, `crash --json`'s shape), summary.md and report.html beside
//! speed and fairness. Off by default.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::crash::processes_with_env;
use crate::util::{TestDir, client_bin, run_within};

/// Runs `compare` with `args` into `out`, tagged so that no child of it may outlive it.
fn compare_into(out: &Path, args: &[&str]) -> Value {
    let runtime = TestDir::new("cc-rt");
    let tag = format!(
        "cc-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let result = run_within(
        Command::new(client_bin())
            .arg("compare")
            .args(args)
            .args([
                "--placements",
                "same-cpu",
                "--repeats",
                "1",
                "--rounds",
                "50",
            ])
            .arg("--out")
            .arg(out)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("LOCKFAIR_CRASH_TEST", &tag),
        Duration::from_secs(180),
    );
    assert!(
        result.status.success(),
        "compare {args:?} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let left = processes_with_env(&format!("LOCKFAIR_CRASH_TEST={tag}"));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let json = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&json).expect("summary.json is JSON")
}

fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The text of `<section id="id">` in `html`, if there is one.
fn section<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<section id=\"{id}\">"))?;
    let rest = &html[start..];
    Some(&rest[..rest.find("</section>").expect("sections are closed")])
}

/// The one cell of `variant`, plain or protected.
fn cell<'a>(cells: &'a [Value], variant: &str, survivable: bool) -> Vec<&'a Value> {
    cells
        .iter()
        .filter(|c| c["variant"] == variant && c["survivable"] == survivable)
        .collect()
}

#[test]
fn compare_crash_puts_holder_death_beside_speed_and_fairness() {
    let dir = TestDir::new("compare-crash");
    let out = dir.path().join("report");
    let summary = compare_into(&out, &["--crash", "--variants", "posix,eventfd"]);
    // The cells ran as before.
    assert_eq!(summary["runs"].as_array().unwrap().len(), 2, "{summary}");
    let deaths = &summary["holder_death"];
    let cells = deaths["cells"].as_array().expect("holder_death.cells");
    assert!(deaths["skipped"].as_array().unwrap().is_empty(), "{deaths}");
    // posix: both description cases, released by the kernel at the holder's exit.
    let posix = cell(cells, "posix", false);
    assert_eq!(posix.len(), 2, "{cells:?}");
    for c in &posix {
        assert_eq!(c["recovered"], true, "{c}");
        assert!(c["recovered_ns"].is_u64(), "{c}");
    }
    // eventfd alone: never recovers, never told; protected: recovers and sees the death.
    let eventfd = cell(cells, "eventfd", false);
    assert_eq!(eventfd.len(), 1, "{cells:?}");
    assert_eq!(eventfd[0]["recovered"], false, "{}", eventfd[0]);
    assert_eq!(eventfd[0]["owner_died_seen"], false, "{}", eventfd[0]);
    let protected = cell(cells, "eventfd", true);
    assert_eq!(protected.len(), 1, "{cells:?}");
    assert_eq!(protected[0]["recovered"], true, "{}", protected[0]);
    // Only the variants compared.
    assert!(
        cells
            .iter()
            .all(|c| c["variant"] == "posix" || c["variant"] == "eventfd"),
        "{cells:?}"
    );

    let md = read(&out, "summary.md");
    let at = md
        .find("## When the holder dies")
        .expect("summary.md has the section");
    let md_section = &md[at..];
    assert!(md_section.contains("| posix"), "{md_section}");
    assert!(
        md_section.contains("| eventfd (survivable)"),
        "{md_section}"
    );

    let html = read(&out, "report.html");
    assert!(
        html.contains("<a href=\"#holder-death\">"),
        "in the navigation"
    );
    let s = section(&html, "holder-death").expect("report.html has the section");
    // One verdict row per variant, then the plain cells (3) and the protected one.
    let rows: Vec<&str> = s.split("<tr>").skip(1).collect();
    let row = |variant: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("<td>{variant}</td>")))
            .unwrap_or_else(|| panic!("no row for {variant} in {s}"))
    };
    let posix_row = row("posix");
    assert!(
        posix_row.contains("rounds/s, round trip"),
        "fast: {posix_row}"
    );
    assert!(posix_row.contains("barging"), "fair: {posix_row}");
    assert!(
        posix_row.contains("own: yes, after") && posix_row.contains("shared: yes, after"),
        "{posix_row}"
    );
    assert!(posix_row.contains("the kernel releases it"), "{posix_row}");
    let eventfd_row = row("eventfd");
    assert!(eventfd_row.contains("<td>own: no</td>"), "{eventfd_row}");
    assert!(
        eventfd_row.contains("1 of 1 cells survive"),
        "{eventfd_row}"
    );
    assert!(eventfd_row.contains("never told"), "{eventfd_row}");
    assert_eq!(
        s.matches("<table>").count(),
        3,
        "verdict, plain, protected: {s}"
    );
}

#[test]
fn without_crash_the_report_has_no_holder_death() {
    let dir = TestDir::new("compare-no-crash");
    let out = dir.path().join("report");
    let summary = compare_into(&out, &["--variants", "posix"]);
    assert!(summary.get("holder_death").is_none(), "{summary}");
    assert!(summary["runs"].as_array().is_some_and(|r| r.len() == 1));
    assert!(!read(&out, "summary.md").contains("When the holder dies"));
    let html = read(&out, "report.html");
    assert!(section(&html, "holder-death").is_none());
    // Nor the kernel's account without --kernel-trace.
    assert!(section(&html, "kernel").is_none());
    assert!(section(&html, "table").is_some());
}
