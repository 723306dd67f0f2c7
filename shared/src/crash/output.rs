//! The crash experiment's answers for people and programs: an aligned table for the terminal,
//! `--json`, and a Markdown section for the `compare` report and the README.

use super::overhead::OverheadReport;
use super::stop::{StopCell, StopReport};
use super::{CellResult, CrashReport};
use crate::text::{Table, fmt_ns};

/// The cells as a table; the time column aligns right (`report.html` shows it too).
pub fn cells_table(report: &CrashReport) -> Table {
    let mut t = Table::new(
        &[
            "variant",
            "holder's description",
            "recovered",
            "after kill",
            "owner death seen",
            "how",
            "/proc/locks then",
        ],
        3,
    );
    t.left.extend([4, 5, 6]);
    for c in &report.cells {
        t.push(row(c));
    }
    t
}

fn row(c: &CellResult) -> Vec<String> {
    let variant = if c.survivable {
        format!("{} (survivable)", c.variant)
    } else {
        c.variant.to_string()
    };
    vec![
        variant,
        c.holder_description.name().to_string(),
        yes_no(c.recovered).to_string(),
        c.recovered_ns
            .map_or_else(|| "-".to_string(), |ns| fmt_ns(ns as f64)),
        yes_no(c.owner_died_seen).to_string(),
        c.how.clone(),
        c.kernel_view.clone().unwrap_or_else(|| "-".to_string()),
    ]
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl CrashReport {
    /// The terminal table, then the cells that could not run.
    pub fn to_text(&self) -> String {
        let mut out = cells_table(self).to_text();
        for s in &self.skipped {
            out.push_str(&format!(
                "not run: {} ({}): {}\n",
                s.variant,
                s.holder_description.name(),
                s.why
            ));
        }
        out
    }

    /// `--json`: one object, `{"cells": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl OverheadReport {
    /// The terminal table: ratios only.
    pub fn to_text(&self) -> String {
        self.table().to_text()
    }

    /// `--json`: one object, `{"overhead": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    fn table(&self) -> Table {
        let mut t = Table::new(
            &["variant", "protection", "round trip, protected / plain"],
            2,
        );
        for r in &self.overhead {
            t.push(vec![
                r.variant.to_string(),
                r.protection.to_string(),
                format!("{:.2}× (median of {})", r.ratio, r.repeats),
            ]);
        }
        t
    }
}

/// `crash --stop`'s cells as a table: what the survivor got, what each of the kernel's records
/// said (pids as whose they are, the deadline as `limit_s` says it: the table reads the same
/// from run to run), whom it named.
pub fn stop_table(report: &StopReport) -> Table {
    let mut t = Table::new(
        &[
            "variant",
            "noticed",
            "got it",
            "/proc/locks",
            "F_GETLK l_pid",
            "F_OFD_GETLK l_pid",
            "lock word's owner",
            "named",
        ],
        8,
    );
    for c in &report.cells {
        t.push(stop_row(c));
    }
    t
}

fn stop_row(c: &StopCell) -> Vec<String> {
    let k = &c.kernel;
    let whose = |pid: i64| match pid {
        p if p == i64::from(c.holder_pid) => "the holder's pid".to_string(),
        p => p.to_string(),
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let mut named = match &c.holder {
        Some(h) if h.pid == c.holder_pid => {
            format!("the holder, {} (from {})", h.comm, h.source.name())
        }
        Some(h) => format!(
            "another process, {}, {} (from {})",
            h.comm,
            crate::procinfo::holder::state_words(&h.state),
            h.source.name()
        ),
        None => "no owner recorded".to_string(),
    };
    if k.fdinfo_pids.len() > 1 {
        let holder_too = k.fdinfo_pids.contains(&c.holder_pid);
        // How many: in the JSON (`fdinfo_pids`); the table stays free of counts.
        named.push_str(&format!(
            ", the first of the processes whose descriptors hold locks on the file{}",
            if holder_too {
                " (the holder among them)"
            } else {
                ""
            }
        ));
    }
    vec![
        c.variant.to_string(),
        if c.noticed {
            c.how.clone()
        } else {
            "no".into()
        },
        match c.acquired_after_ns {
            Some(0) => "at once (never excluded)".to_string(),
            Some(ns) => fmt_ns(ns as f64),
            None => "not by its deadline".to_string(),
        },
        or_dash(
            k.proc_locks
                .as_ref()
                .map(|l| format!("{}, {}", l.kind, whose(l.pid))),
        ),
        or_dash(k.getlk_pid.map(|p| whose(p.into()))),
        or_dash(k.ofd_getlk_pid.map(|p| whose(p.into()))),
        or_dash(k.futex_owner_tid.map(|t| match t {
            0 => "0 (free)".to_string(),
            t => format!("TID, {}", whose(t.into())),
        })),
        named,
    ]
}

impl StopReport {
    /// The terminal table, each waiter's error at its deadline, then the cells that could not
    /// run.
    pub fn to_text(&self) -> String {
        let mut out = stop_table(self).to_text();
        out.push('\n');
        for c in &self.cells {
            if let Some(e) = &c.deadline_error {
                out.push_str(&format!("{}: {e}\n", c.variant));
            }
        }
        out.push_str(&skipped_lines(&self.skipped));
        out
    }

    /// `--json`: one object, `{"limit_s", "cells": [...], "skipped", "summary"}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The table in Markdown, the cells that could not run below it.
    pub fn to_markdown(&self) -> String {
        let mut out = stop_table(self).to_markdown();
        out.push_str(&skipped_lines(&self.skipped));
        out
    }
}

fn skipped_lines(skipped: &[super::Skipped]) -> String {
    skipped
        .iter()
        .map(|s| {
            format!(
                "not run: {} ({}): {}\n",
                s.variant,
                s.holder_description.name(),
                s.why
            )
        })
        .collect()
}

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

/// "variant | crash-safe", one row per variant of `report`, in its order.
fn verdicts(report: &CrashReport) -> Table {
    let mut t = Table::new(&["variant", "crash-safe"], 2);
    for c in &report.cells {
        let name = c.variant.to_string();
        if t.rows.iter().all(|r| r[0] != name) {
            let verdict = crash_safe(report, c.variant).unwrap_or("-");
            t.push(vec![name, verdict.to_string()]);
        }
    }
    t
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
    out.push_str(&cells_table(plain).to_markdown());
    for s in &plain.skipped {
        out.push_str(&format!(
            "\nNot run: {} ({}): {}\n",
            s.variant,
            s.holder_description.name(),
            s.why
        ));
    }
    out.push('\n');
    out.push_str(&verdicts(plain).to_markdown());
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
             the eventfd or pipe (for tokio-eventfd, registered in the same runtime and the same \
             `select!`); for the futex variants (a futex cannot wait on a pidfd, and a \
             robust futex list only covers a word holding its owner's TID), a thread asleep on \
             the peers' pidfds that passes the turn on and wakes the sleeper; for the robust \
             mutex, `EOWNERDEAD`, repair, `pthread_mutex_consistent`.\n\n",
        );
        out.push_str(&cells_table(s).to_markdown());
    }
    if let Some(o) = overhead {
        out.push_str(
            "\nWhat the protection costs when nobody dies (one ping-pong, blocks alternating):\n\n",
        );
        out.push_str(&o.table().to_markdown());
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
                kernel_view: None,
            }],
            skipped: vec![],
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
        let rows: Vec<Vec<&str>> = md
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        assert!(
            rows.iter()
                .any(|r| r[..2] == ["ofd", "no: waits forever, never told"]),
            "{md}"
        );
        assert_eq!(
            rows.iter().filter(|r| r[..2] == ["ofd", "shared"]).count(),
            1,
            "{md}"
        );
        assert!(md.contains("held \\| forever"), "{md}");
        assert!(md.contains("`lockfair-client crash`"));
    }
}
