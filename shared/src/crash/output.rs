//! The crash experiment's answers for people and programs: an aligned table for the terminal,
//! `--json`, and a Markdown section for the `compare` report and the README.
//!
//! `report` (layer 7) sits above this module, so the few lines of table layout are here rather
//! than borrowed from it.

use super::overhead::OverheadReport;
use super::{CellResult, CrashReport};

const HEADERS: [&str; 6] = [
    "variant",
    "holder's description",
    "recovered",
    "after kill",
    "owner death seen",
    "how",
];

/// One row of strings per cell, in [`HEADERS`] order.
fn rows(report: &CrashReport) -> Vec<[String; 6]> {
    report.cells.iter().map(row).collect()
}

fn row(c: &CellResult) -> [String; 6] {
    let variant = if c.survivable {
        format!("{} (survivable)", c.variant)
    } else {
        c.variant.to_string()
    };
    [
        variant,
        c.holder_description.name().to_string(),
        yes_no(c.recovered).to_string(),
        c.recovered_ns.map_or_else(|| "-".to_string(), fmt_ns),
        yes_no(c.owner_died_seen).to_string(),
        c.how.clone(),
    ]
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `ns` with a unit read at a glance: `850 ns`, `41 µs`, `12.3 ms`.
fn fmt_ns(ns: u64) -> String {
    let ns = ns as f64;
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    if v < 10.0 && unit != "ns" {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// Aligned columns, two spaces apart.
fn aligned<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A GitHub-flavoured Markdown table.
fn markdown_table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(vec!["---".to_string(); N]));
    for r in rows {
        out.push_str(&line(r.iter().map(|c| c.replace('|', "\\|")).collect()));
    }
    out
}

impl CrashReport {
    /// The terminal table.
    pub fn to_text(&self) -> String {
        aligned(HEADERS, &rows(self))
    }

    /// `--json`: one object, `{"cells": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl OverheadReport {
    /// The terminal table: ratios only.
    pub fn to_text(&self) -> String {
        aligned(OVERHEAD_HEADERS, &self.rows())
    }

    /// `--json`: one object, `{"overhead": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    fn rows(&self) -> Vec<[String; 3]> {
        self.overhead
            .iter()
            .map(|r| {
                [
                    r.variant.to_string(),
                    r.protection.to_string(),
                    format!("{:.2}× (median of {})", r.ratio, r.repeats),
                ]
            })
            .collect()
    }
}

const OVERHEAD_HEADERS: [&str; 3] = ["variant", "protection", "round trip, protected / plain"];

/// Is `variant` crash-safe, in a few words, from its cells in `report` (None if it has none):
/// the column to set beside "fast" and "fair".
pub fn crash_safe(report: &CrashReport, variant: crate::variant::Variant) -> Option<&'static str> {
    let cells: Vec<&CellResult> = report
        .cells
        .iter()
        .filter(|c| c.variant == variant)
        .collect();
    let all = |f: fn(&CellResult) -> bool| cells.iter().all(|c| f(c));
    let any = |f: fn(&CellResult) -> bool| cells.iter().any(|c| f(c));
    Some(match () {
        () if cells.is_empty() => return None,
        () if all(|c| c.recovered && c.recovered_ns == Some(0)) => "never excluded anyone",
        () if all(|c| c.recovered && c.owner_died_seen) => "yes, and the death is reported",
        () if all(|c| c.recovered) => "yes: the kernel releases it",
        () if any(|c| c.recovered) => "only if no live process shares the description",
        () if any(|c| c.owner_died_seen) => {
            "no, but told (EOF) when the dead held the only write end"
        }
        () => "no: waits forever, never told",
    })
}

/// "variant | crash-safe" rows, one per variant of `report`, in its order.
fn verdict_rows(report: &CrashReport) -> Vec<[String; 2]> {
    let mut rows: Vec<[String; 2]> = Vec::new();
    for c in &report.cells {
        let name = c.variant.to_string();
        if rows.iter().all(|r| r[0] != name) {
            let verdict = crash_safe(report, c.variant).unwrap_or("-");
            rows.push([name, verdict.to_string()]);
        }
    }
    rows
}

/// The "When the holder dies" section for the `compare` report and the README: the plain
/// experiment, its verdict per variant, the kernel's reasons, and (if given) the survivable run
/// and what its protection costs. `command` is the command line that produced them.
pub fn markdown_section(
    plain: &CrashReport,
    survivable: Option<&CrashReport>,
    overhead: Option<&OverheadReport>,
    command: &str,
) -> String {
    let mut out = String::from("## When the holder dies\n\n");
    out.push_str(
        "A holder (a child process) takes the lock or holds the turn and is killed with SIGKILL \
         inside its critical section; a survivor, already waiting, uses the mechanism alone \
         (no watchdog, no pidfd) within a time limit. *own*: the holder's descriptors were its \
         own; *shared*: a live process also held the open file description the holder locked \
         through (received over SCM_RIGHTS), or the pipe's write end.\n\n",
    );
    out.push_str(&markdown_table(HEADERS, &rows(plain)));
    out.push('\n');
    out.push_str(&markdown_table(
        ["variant", "crash-safe"],
        &verdict_rows(plain),
    ));
    out.push_str(
        "\nThe kernel's reasons (fs/locks.c): POSIX and `lockf` locks belong to the process and \
         are dropped as it exits; OFD and `flock` locks belong to the open file description and \
         are dropped only at its last close, so a description that a live process shares keeps \
         a dead process's lock forever. A futex word, a ticket counter and an eventfd have no \
         owner the kernel knows of: a survivor waits forever and is never told. A pipe's reader \
         gets EOF once every write end is closed.\n",
    );
    if let Some(s) = survivable {
        out.push_str(
            "\nThe way out (`crash --survivable`): a pidfd of every peer in the same `poll` as \
             the eventfd or pipe; for the futex variants (a futex cannot wait on a pidfd, and a \
             robust futex list only covers a word holding its owner's TID), a thread asleep on \
             the peers' pidfds that passes the turn on and wakes the sleeper.\n\n",
        );
        out.push_str(&markdown_table(HEADERS, &rows(s)));
    }
    if let Some(o) = overhead {
        out.push_str(
            "\nWhat the protection costs when nobody dies (one ping-pong, blocks alternating):\n\n",
        );
        out.push_str(&markdown_table(OVERHEAD_HEADERS, &o.rows()));
    }
    out.push_str(&format!("\nCommand: `{command}`\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::Description;
    use crate::variant::Variant;

    fn sample() -> CrashReport {
        CrashReport {
            cells: vec![CellResult {
                variant: Variant::Ofd,
                holder_description: Description::Shared,
                recovered: false,
                recovered_ns: None,
                owner_died_seen: false,
                how: "held | forever".into(),
                survivable: false,
            }],
        }
    }

    #[test]
    fn json_has_exactly_the_interface_fields() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        let cell = &v["cells"][0];
        for key in [
            "variant",
            "holder_description",
            "recovered",
            "recovered_ns",
            "owner_died_seen",
            "how",
        ] {
            assert!(cell.get(key).is_some(), "missing {key} in {cell}");
        }
        assert_eq!(cell["variant"], "ofd");
        assert_eq!(cell["holder_description"], "shared");
        assert!(cell["recovered_ns"].is_null());
    }

    #[test]
    fn markdown_escapes_pipes_and_names_the_command() {
        let md = markdown_section(&sample(), None, None, "lockfair-client crash");
        assert!(
            md.contains("| ofd | only if") || md.contains("| ofd | no: waits forever"),
            "{md}"
        );
        assert!(md.contains("held \\| forever"), "{md}");
        assert!(md.contains("`lockfair-client crash`"));
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| ofd | shared"))
                .count(),
            1
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(fmt_ns(850), "850 ns");
        assert_eq!(fmt_ns(41_000), "41 µs");
        assert_eq!(fmt_ns(1_230_000), "1.2 ms");
    }
}
