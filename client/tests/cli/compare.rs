//! `lockfair-client compare`: the report folder, its agreement with itself, and cleanliness.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lockfair::report::summary::{fmt_count, ns_cell};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::util::{HANG, TestDir, client_bin, compare, placements, wait_exit};

/// The runtime directory holds nothing: no private socket directory survived the run.
fn assert_no_socket_dir_left(runtime: &TestDir, what: &str) {
    let left: Vec<_> = std::fs::read_dir(runtime.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{what}: {left:?}");
}

/// Servers still running on behalf of the client process `pid`.
fn servers_of(pid: u32) -> Vec<u32> {
    let needle = format!("--exit-with\0{pid}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// summary.md from its machine section on: the evidence, after "What to use" (which opens it).
fn evidence(md: &str) -> &str {
    md.split_once("\n## Machine\n")
        .map(|(_, e)| e)
        .unwrap_or(md)
}

/// The body rows of every Markdown table in `md`, table by table.
fn md_tables(md: &str) -> Vec<Vec<Vec<String>>> {
    let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
    let mut in_table = false;
    for line in md.lines() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table {
            tables.push(Vec::new());
            in_table = true;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        tables.last_mut().unwrap().push(cells);
    }
    // Drop each table's header and rule.
    tables
        .into_iter()
        .map(|t| t.into_iter().skip(2).collect())
        .collect()
}

#[test]
fn a_small_compare_writes_every_file_and_they_agree() {
    let runtime = TestDir::new("cmp-rt");
    let out_dir = TestDir::new("cmp-out");
    let report = out_dir.path().join("report");
    let places = placements().join(",");
    let out = compare(
        runtime.path(),
        &[
            "--variants",
            "ofd,eventfd,pipe",
            "--placements",
            &places,
            // Every cell completes (a loaded machine can take tens of ms per lock turn), so every
            // histogram has values.
            "--rounds",
            "50",
            "--max-seconds",
            "60",
            "--repeats",
            "1",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("× pipe") && table.contains("ofd"), "{table}");
    // It ends with the answer, and summary.md opens with it.
    let answer = table
        .rsplit_once("\nWhat to use\n")
        .map(|(_, a)| a)
        .unwrap_or_default();
    for need in [
        "exclusion that survives a crash",
        "strict turn-taking",
        "lowest latency on one host",
        "bounded waiting with many contenders",
    ] {
        assert!(answer.contains(need), "{need}: {table}");
    }
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    let first_section = md.split("\n## ").nth(1).unwrap_or_default();
    assert!(first_section.starts_with("What to use\n"), "{md}");
    // The seed shares one description: ofd, eventfd and pipe exclude; eventfd and pipe hand over.
    assert!(
        first_section.contains("strict turn-taking: eventfd")
            || first_section.contains("strict turn-taking: pipe"),
        "{first_section}"
    );

    // summary.json parses and has one record per cell and repeat, shaped like `run --json`.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3 * placements().len());
    for r in runs {
        for field in [
            "variant",
            "placement",
            "rounds",
            "server",
            "client",
            "repeat",
            "metrics",
        ] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
        assert_eq!(r["server"]["overlaps"], 0);
        assert_eq!(r["client"]["overlaps"], 0);
    }
    assert!(
        json["machine"]["kernel"]
            .as_str()
            .unwrap()
            .starts_with("Linux")
    );
    assert!(json["command"].as_str().unwrap().contains("compare"));

    // summary.md carries the machine, the command and the same table as the JSON summary.
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(
        md.contains("kernel: Linux") && md.contains("lockfair-client compare"),
        "{md}"
    );
    let summary: HashMap<(String, String), &serde_json::Value> = json["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                (
                    s["variant"].as_str().unwrap().into(),
                    s["placement"].as_str().unwrap().into(),
                ),
                s,
            )
        })
        .collect();
    let tables = md_tables(evidence(&md));
    assert_eq!(
        tables.len(),
        3,
        "the main table, the contenders table and lock opportunity"
    );
    let rows = tables[0].clone();
    assert_eq!(rows.len(), summary.len());
    // Lock opportunity: a row per contender of every cell, as summary.json's `opportunity`.
    let cells = json["opportunity"].as_array().unwrap();
    let per_contender: usize = cells
        .iter()
        .map(|c| c["contenders"].as_array().unwrap().len())
        .sum();
    assert_eq!(tables[2].len(), per_contender);
    // In turns mode Jain's index and the barging rate mean nothing: a dash, with the reason;
    // the JSON keeps the numbers.
    for row in &tables[1] {
        let s = summary[&(row[0].clone(), row[1].clone())];
        assert_eq!((row[2].as_str(), row[3].as_str()), ("–", "–"), "{row:?}");
        assert!(s["jain_index"]["median"].is_number(), "{s}");
        assert!(s["barging_rate"]["median"].is_number(), "{s}");
    }
    assert!(
        md.contains("–: in turns mode the protocol fixes the order"),
        "{md}"
    );
    assert!(!md.contains("Stopped early"), "every cell completed: {md}");
    for row in rows {
        let s = summary[&(row[0].clone(), row[1].clone())];
        let spread = |k: &str| lockfair::report::summary::Spread {
            median: s[k]["median"].as_f64().unwrap(),
            min: s[k]["min"].as_f64().unwrap(),
            max: s[k]["max"].as_f64().unwrap(),
            lo: s[k]["lo"].as_f64().unwrap(),
            hi: s[k]["hi"].as_f64().unwrap(),
            level: s[k]["level"].as_f64().unwrap(),
        };
        assert_eq!(
            row[3],
            fmt_count(s["whoops_per_round"]["median"].as_f64().unwrap()),
            "{row:?}"
        );
        assert_eq!(
            row[4],
            format!("{}", s["overlaps"]["median"].as_f64().unwrap()),
            "{row:?}"
        );
        assert_eq!(row[5], ns_cell(&spread("handoff_p50_ns")), "{row:?}");
        // And the summary is what the runs say: with one repeat, the median is the run's value.
        let run = runs
            .iter()
            .find(|r| r["variant"] == s["variant"] && r["placement"] == s["placement"])
            .unwrap();
        assert_eq!(
            run["metrics"]["handoff_p50_ns"].as_f64().unwrap(),
            spread("handoff_p50_ns").median
        );
        let rounds = run["client"]["rounds"].as_f64().unwrap();
        let whoops =
            run["server"]["whoops"].as_f64().unwrap() + run["client"]["whoops"].as_f64().unwrap();
        assert!((s["whoops_per_round"]["median"].as_f64().unwrap() - whoops / rounds).abs() < 1e-9);
    }

    // One .hgrm per variant, placement, side and latency metric, each a percentile table.
    for v in ["ofd", "eventfd", "pipe"] {
        for p in placements() {
            for side in ["server", "client"] {
                for metric in ["handoff", "round-trip"] {
                    let path = report.join(format!("{v}-{p}-{side}-{metric}.hgrm"));
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    check_hgrm(&text, &path);
                }
            }
        }
    }
    // SVG plots are well-formed XML.
    let mut svgs = vec!["whoops.svg".to_string()];
    svgs.extend(placements().iter().map(|p| format!("latency-{p}.svg")));
    for name in svgs {
        let text = std::fs::read_to_string(report.join(&name)).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(text.contains("ofd"), "{name} names the variants");
    }
    // Nothing left behind: no socket, no server.
    assert_no_socket_dir_left(&runtime, "the private socket dir is gone");
}

#[test]
fn a_free_mode_compare_reports_waits_and_fairness_not_whoops() {
    let runtime = TestDir::new("cmpf-rt");
    let out_dir = TestDir::new("cmpf-out");
    let report = out_dir.path().join("report");
    let out = compare(
        runtime.path(),
        &[
            "--mode",
            "free",
            "--contenders",
            "3",
            "--variants",
            "ticket,futex",
            "--placements",
            "free",
            "--rounds",
            "300",
            "--max-seconds",
            "0.2",
            "--repeats",
            "1",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    let header = evidence(&md)
        .lines()
        .find(|l| l.starts_with("| variant"))
        .unwrap();
    // No turn, so no whoops, round trip or ratio to the pipe's round trip.
    assert!(
        header.contains("wait p50") && header.contains("CPU/round"),
        "{header}"
    );
    for gone in ["whoops", "round trip", "× pipe"] {
        assert!(!header.contains(gone), "{header}");
    }
    assert!(md.contains("Jain index"), "{md}");
    assert!(!report.join("whoops.svg").exists());
    assert!(report.join("latency-free.svg").exists());
    for side in ["server", "client", "contender-2"] {
        assert!(
            report
                .join(format!("ticket-free-{side}-wait.hgrm"))
                .exists(),
            "{side}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    for r in json["runs"].as_array().unwrap() {
        assert_eq!(r["mode"], "free", "{r}");
        assert_eq!(r["contender_count"], 3, "{r}");
        assert_eq!(r["contenders"].as_array().unwrap().len(), 3, "{r}");
        if r["variant"] == "ticket" {
            assert_eq!(
                r["barging_rate"], 0.0,
                "a FIFO ticket lock never barges: {r}"
            );
        }
    }
}

#[test]
fn a_server_binary_from_another_build_is_refused_before_it_runs() {
    use std::os::unix::fs::PermissionsExt;
    let runtime = TestDir::new("cmp-stale-rt");
    let dir = TestDir::new("cmp-stale");
    let out_dir = dir.path().join("report");
    // Answers --build-id like an older lockfair-server would; anything else would leave a mark.
    let fake = dir.path().join("lockfair-server");
    let marker = dir.path().join("served");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --build-id ]; then echo 0123456789abcdef; else touch {}; fi\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = compare(
        runtime.path(),
        &[
            "--server-bin",
            fake.to_str().unwrap(),
            "--variants",
            "pipe",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is from another build of lockfair") && err.contains("0123456789abcdef"),
        "{err}"
    );
    assert!(!marker.exists(), "the stale server was never started");
    assert_no_socket_dir_left(&runtime, "no server was started");
}

fn check_hgrm(text: &str, path: &Path) {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("Percentile") && header.contains("TotalCount"),
        "{}",
        path.display()
    );
    let rows: Vec<Vec<f64>> = lines
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            l.split_whitespace()
                .map(|f| f.parse::<f64>().unwrap())
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "{}", path.display());
    assert!(
        rows.windows(2)
            .all(|w| w[0][1] <= w[1][1] && w[0][2] <= w[1][2])
    );
    let total: f64 = text
        .lines()
        .find(|l| l.contains("Total count"))
        .and_then(|l| l.split('=').nth(2))
        .and_then(|v| v.trim().trim_end_matches(']').trim().parse().ok())
        .unwrap();
    assert_eq!(rows.last().unwrap()[2], total, "{}", path.display());
}

#[test]
fn a_bad_out_fails_at_once_with_exit_code_2() {
    let runtime = TestDir::new("cmp-bad-rt");
    let dir = TestDir::new("cmp-bad");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("report");
    let out = compare(runtime.path(), &["--out", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write the report to") && err.contains("--out"),
        "{err}"
    );
    assert_no_socket_dir_left(&runtime, "no server was started");
}

#[test]
fn ctrl_c_keeps_the_cells_already_finished_and_leaves_nothing_behind() {
    let runtime = TestDir::new("cmp-int-rt");
    let out_dir = TestDir::new("cmp-int");
    let report = out_dir.path().join("report");
    let mut child = Command::new(client_bin())
        .args([
            "compare",
            "--variants",
            "ofd,futex",
            "--placements",
            "same-cpu",
            "--repeats",
            "100",
        ])
        .args([
            "--rounds",
            "100",
            "--max-seconds",
            "0.1",
            "--out",
            report.to_str().unwrap(),
        ])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until some cells are in the report (100 repeats outlast any wait here).
    let give_up = std::time::Instant::now() + HANG;
    let finished = loop {
        std::thread::sleep(Duration::from_millis(50));
        let runs = std::fs::read_to_string(report.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map_or(0, |j| j["runs"].as_array().map_or(0, Vec::len));
        if runs >= 2 {
            break runs;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "no cells were written during the run"
        );
    };
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let status = wait_exit(&mut child, HANG).expect("compare stops on SIGINT");
    assert_eq!(status.code(), Some(130));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    assert!(json["runs"].as_array().unwrap().len() >= finished);
    assert!(
        json["failures"].as_array().unwrap().is_empty(),
        "the interrupted cell is not a failure"
    );
    assert!(servers_of(pid).is_empty(), "the private server is gone");
    assert_no_socket_dir_left(&runtime, "and its socket too");
}

#[test]
fn the_report_records_the_idle_setup_and_whether_idle_was_held_off() {
    let runtime = TestDir::new("cmp-idle-rt");
    let dir = TestDir::new("cmp-idle");
    let machine = |held: bool| {
        let out = dir.path().join(if held { "held" } else { "free" });
        let mut args = vec![
            "--variants",
            "pipe",
            "--placements",
            "free",
            "--repeats",
            "1",
            "--rounds",
            "50",
            "--out",
            out.to_str().unwrap(),
        ];
        if held {
            args.push("--hold-idle");
        }
        let done = compare(runtime.path(), &args);
        (done, out)
    };
    let (done, out) = machine(false);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let idle = &json["machine"]["idle"];
    assert_eq!(idle["held_off"], false, "{idle}");
    assert!(
        idle["driver"].is_string() && idle["states"].is_array(),
        "{idle}"
    );
    // A wakeup is measured wherever there is a second CPU to wake.
    let two_cpus = lockfair::placement::allowed_cpus().len() >= 2;
    assert_eq!(idle["wakeup_ns"].is_u64(), two_cpus, "{idle}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("- cpuidle: ") && md.contains("- cross-CPU wakeup: "),
        "{md}"
    );

    let (done, out) = machine(true);
    if nix::unistd::geteuid().is_root() {
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["machine"]["idle"]["held_off"], true);
    } else {
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(
            !done.status.success() && err.contains("it needs root"),
            "{err}"
        );
    }
}

/// Cells that stop at `--max-seconds` are counted and named under the main table, in the
/// terminal, `summary.md` and `report.html`; the terminal's tables show the story's columns and
/// `--wide` every one, while the files always have every column.
#[test]
fn cells_that_stop_early_are_told_and_wide_shows_every_column() {
    let runtime = TestDir::new("cmp-early-rt");
    let out_dir = TestDir::new("cmp-early-out");
    let run = |name: &str, extra: &[&str]| {
        let report = out_dir.path().join(name);
        let mut args = vec![
            "--variants",
            "ofd,pipe",
            "--placements",
            "same-cpu",
            // ofd on one CPU waits a scheduler tick per turn: 10,000 rounds never fit in 0.2 s.
            "--rounds",
            "10000",
            "--max-seconds",
            "0.2",
            "--repeats",
            "1",
            "--out",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = compare(runtime.path(), &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8(out.stdout).unwrap(), report)
    };
    let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let (text, report) = run("narrow", &[]);
    let said = "cells reached the --max-seconds limit (0.2 s per cell) before their 10,000 rounds \
                in at least one repeat (rounds done): same-cpu: ofd ";
    assert!(flat(&text).contains(said), "{text}");
    assert!(flat(&text).contains("Stopped early: "), "{text}");
    for file in ["summary.md", "report.html"] {
        let body = std::fs::read_to_string(report.join(file)).unwrap();
        assert!(flat(&body).contains(said), "{file}: {body}");
    }
    let header = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("variant"))
            .unwrap()
            .to_string()
    };
    let narrow = header(&text);
    assert!(
        narrow.contains("round trip p50") && !narrow.contains("handoff p99"),
        "{narrow}"
    );
    assert!(
        text.contains("(with --wide: handoff p50, handoff p99, handoff max.)"),
        "{text}"
    );
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("handoff p99"), "summary.md has every column");
    let (wide, _) = run("wide", &["--wide"]);
    assert!(header(&wide).contains("handoff p99"), "{wide}");
    assert!(!wide.contains("with --wide"), "{wide}");
}
