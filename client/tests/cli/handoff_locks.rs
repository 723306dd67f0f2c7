//! The handoff locks (`pi-futex`, `robust-mutex`, `fair-futex`, `starvation-futex`): they
//! exclude for any number of contenders, their acquisitions add up, and in `--mode turns` every
//! contender gets every turn. And the order measures: a FIFO ticket lock is never overtaken,
//! whatever the scheduler does; `run --json` and `compare --mode free` carry bypass, LWSS and
//! MTTR, and `frontier.svg`.

use std::process::Command;
use std::time::Duration;

use crate::util::{Server, TestDir, assert_free_run_adds_up, client_bin, run_json, run_within};

const HANDOFF_LOCKS: [&str; 4] = ["pi-futex", "robust-mutex", "fair-futex", "starvation-futex"];

#[test]
fn handoff_locks_exclude_in_free_mode_and_acquisitions_add_up() {
    let server = Server::start();
    for n in [2usize, 3, 5, 8] {
        for variant in HANDOFF_LOCKS {
            let what = format!("{variant} free with {n} contenders");
            let k = 10_000u64;
            let r = run_json(
                &server,
                &[
                    "--variant",
                    variant,
                    "--mode",
                    "free",
                    "--contenders",
                    &n.to_string(),
                    "--rounds",
                    &k.to_string(),
                ],
            );
            assert_free_run_adds_up(&r, n as u64, k, &what);
        }
    }
}

#[test]
fn handoff_locks_give_every_contender_every_turn() {
    let server = Server::start();
    for variant in HANDOFF_LOCKS {
        let what = format!("{variant} turns with 3 contenders");
        let r = run_json(
            &server,
            &["--variant", variant, "--contenders", "3", "--rounds", "40"],
        );
        for c in r["contenders"].as_array().unwrap() {
            assert_eq!(c["acquisitions"], 40, "{what}: every turn taken: {c}");
            assert_eq!(c["overlaps"], 0, "{what}: {c}");
            assert_eq!(c["wrong_reads"], 0, "{what}: {c}");
        }
        for side in ["server", "client"] {
            assert_eq!(r[side]["end"], "completed", "{what}: {side}");
        }
    }
}

/// The order measures of a `free` run, checked against each other and the run's counts.
fn check_order(r: &serde_json::Value, n: u64, k: u64, what: &str) -> serde_json::Value {
    let o = r["order"].clone();
    let field = |f: &str| {
        o[f].as_u64()
            .unwrap_or_else(|| panic!("{what}: order.{f}: {o}"))
    };
    // Everything fits in the log: every acquisition is in it.
    assert_eq!(field("logged"), n * k, "{what}: {o}");
    assert_eq!(o["truncated"], false, "{what}");
    assert!(field("waited") <= field("logged"), "{what}: {o}");
    assert!(field("bypass_p50") <= field("bypass_p99"), "{what}: {o}");
    assert!(field("bypass_p99") <= field("bypass_max"), "{what}: {o}");
    assert!(field("window") <= field("logged"), "{what}: {o}");
    let waiting = o["contending_mean"].as_f64().unwrap();
    assert!((1.0..=n as f64).contains(&waiting), "{what}: {o}");
    if let Some(lwss) = o["lwss"].as_f64() {
        assert!((1.0..=n as f64).contains(&lwss), "{what}: LWSS {lwss}");
    }
    if let Some(mttr) = o["mttr"].as_f64() {
        assert!(mttr >= 0.0, "{what}: MTTR {mttr}");
    }
    o
}

#[test]
fn the_ticket_lock_is_never_overtaken_whatever_the_scheduler_does() {
    let server = Server::start();
    // Four contenders on this machine's CPUs (two on the machine this was written for), then all
    // four on one CPU: the scheduler decides who runs, never who is served first.
    for placement in ["free", "same-cpu"] {
        let what = format!("ticket, 4 contenders, placement {placement}");
        let k = 20_000u64;
        let r = run_json(
            &server,
            &[
                "--variant",
                "ticket",
                "--mode",
                "free",
                "--contenders",
                "4",
                "--rounds",
                &k.to_string(),
                "--placement",
                placement,
            ],
        );
        let o = check_order(&r, 4, k, &what);
        assert_eq!(o["bypass_max"], 0, "{what}: a FIFO lock: {o}");
    }
}

#[test]
fn free_runs_report_the_order_measures_and_turns_runs_do_not() {
    let server = Server::start();
    for variant in [
        "futex",
        "fair-futex",
        "starvation-futex",
        "pi-futex",
        "robust-mutex",
    ] {
        let what = format!("{variant} free with 3 contenders");
        let k = 5_000u64;
        let r = run_json(
            &server,
            &[
                "--variant",
                variant,
                "--mode",
                "free",
                "--contenders",
                "3",
                "--rounds",
                &k.to_string(),
            ],
        );
        check_order(&r, 3, k, &what);
    }
    let r = run_json(&server, &["--variant", "futex", "--rounds", "50"]);
    assert!(
        r.get("order").is_none(),
        "turns mode has a fixed order: {r}"
    );
}

#[test]
fn compare_free_draws_the_frontier_and_tables_the_order_measures() {
    let runtime = TestDir::new("frontier-rt");
    let out_dir = TestDir::new("frontier-out");
    let report = out_dir.path().join("report");
    let out = run_within(
        Command::new(client_bin())
            .arg("compare")
            .args([
                "--variants",
                "futex,ticket,fair-futex",
                "--placements",
                "same-cpu",
                "--mode",
                "free",
                "--contenders",
                "3",
                "--rounds",
                "3000",
                "--repeats",
                "2",
                "--out",
                report.to_str().unwrap(),
            ])
            .env("XDG_RUNTIME_DIR", runtime.path()),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for column in [
        "bypass p99",
        "LWSS",
        "MTTR",
        "waiting",
        "About the lock alone",
    ] {
        assert!(table.contains(column), "the table has {column}: {table}");
    }
    let svg = std::fs::read_to_string(report.join("frontier.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "an SVG");
    for name in ["futex", "ticket", "fair-futex", "p99 bypass", "p99.9 wait"] {
        assert!(svg.contains(name), "frontier.svg shows {name}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3 * 2, "one record per cell and repeat");
    for r in runs {
        check_order(r, 3, 3000, &format!("{} in compare", r["variant"]));
        let m = &r["metrics"];
        assert!(m["acquisitions_per_sec"].as_f64().unwrap() > 0.0, "{m}");
        if r["variant"] == "ticket" {
            assert_eq!(m["order"]["bypass_max"], 0, "{m}");
        }
    }
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(
        md.contains("bypass max") && md.contains("About the lock alone"),
        "{md}"
    );
}

#[test]
fn a_deadline_stops_every_handoff_lock_mid_run_and_waiters_leave_the_queue() {
    let server = Server::start();
    for mode in ["free", "turns"] {
        for variant in HANDOFF_LOCKS {
            let what = format!("{variant} {mode} stopped by --max-seconds");
            let r = run_json(
                &server,
                &[
                    "--variant",
                    variant,
                    "--mode",
                    mode,
                    "--contenders",
                    "4",
                    "--rounds",
                    "1000000000",
                    "--max-seconds",
                    "0.3",
                ],
            );
            let contenders = r["contenders"].as_array().unwrap();
            for c in contenders {
                assert_eq!(c["overlaps"], 0, "{what}: {c}");
                assert!(
                    c["acquisitions"].as_u64().unwrap() < 1_000_000_000,
                    "{what}: {c}"
                );
            }
            // Everyone stopped because of a deadline: its own or another's.
            for side in ["server", "client"] {
                let end = r[side]["end"].as_str().unwrap();
                assert!(
                    end == "deadline" || end == "peer_deadline",
                    "{what}: {side} ended {end}"
                );
            }
        }
    }
}
