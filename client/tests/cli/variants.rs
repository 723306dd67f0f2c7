//! Every variant on every placement this machine has: the behaviour each must show.

use crate::util::{
    HANG, Server, assert_side_consistent, client_bin, placements, run_json, run_within,
};
use std::process::Command;

/// `run --json` of `variant` on `placement` for `rounds` rounds, against `server`.
fn run_on(server: &Server, variant: &str, placement: &str, rounds: &str) -> serde_json::Value {
    run_json(
        server,
        &[
            "--variant",
            variant,
            "--placement",
            placement,
            "--rounds",
            rounds,
        ],
    )
}

fn check_exclusion(report: &serde_json::Value, what: &str) {
    for side in ["server", "client"] {
        let s = &report[side];
        assert_eq!(s["overlaps"], 0, "{what} {side}: exclusion holds");
        assert_eq!(s["wrong_reads"], 0, "{what} {side}");
        assert!(s["rounds"].as_u64().unwrap() > 0, "{what} {side}");
        assert_side_consistent(s, &format!("{what} {side}"));
    }
}

#[test]
fn eventfd_futex_and_pipe_never_whoop_on_any_placement() {
    let server = Server::start();
    for placement in placements() {
        for variant in ["eventfd", "futex", "pipe"] {
            let what = format!("{variant} {placement}");
            let r = run_on(&server, variant, placement, "2000");
            assert_eq!(
                r["placement"], placement,
                "{what}: the output names the placement"
            );
            check_exclusion(&r, &what);
            for side in ["server", "client"] {
                assert_eq!(
                    r[side]["whoops"], 0,
                    "{what} {side}: handed over, never barged"
                );
                assert_eq!(r[side]["rounds"], 2000, "{what} {side}");
                assert_eq!(r[side]["whoops_per_round"]["max"], 0, "{what} {side}");
            }
        }
    }
}

#[test]
fn file_locks_exclude_on_every_placement() {
    let server = Server::start();
    for placement in placements() {
        for variant in ["ofd", "posix", "lockf", "flock"] {
            let what = format!("{variant} {placement}");
            // A waiting side barges back in thousands of times per turn, and on a loaded machine
            // a turn can take tens of milliseconds: few rounds, and run_json's generous deadline,
            // so every turn is taken however loaded the machine is.
            let r = run_on(&server, variant, placement, "100");
            // Whoops are this variant's finding and their number is the scheduler's; what is
            // asserted is that they are counted consistently (check_exclusion: a completed side's
            // whoops all belong to its turns, one value per turn).
            check_exclusion(&r, &what);
            for side in ["server", "client"] {
                let s = &r[side];
                assert_eq!(s["rounds"], 100, "{what} {side}: every turn taken");
                assert_eq!(s["end"], "completed", "{what} {side}");
            }
        }
    }
}

#[test]
fn max_seconds_stops_both_sides_and_they_report_what_they_did() {
    let server = Server::start();
    let r = run_json(
        &server,
        &[
            "--variant",
            "ofd",
            "--placement",
            "same-cpu",
            "--rounds",
            "1000000000",
            "--max-seconds",
            "1",
        ],
    );
    let (s, c) = (&r["server"], &r["client"]);
    let ends = [s["end"].as_str().unwrap(), c["end"].as_str().unwrap()];
    assert!(
        ends.contains(&"deadline"),
        "one side hit its deadline: {ends:?}"
    );
    assert!(
        ends.contains(&"peer_deadline") || ends == ["deadline", "deadline"],
        "and the other stopped because of it: {ends:?}"
    );
    let (sr, cr) = (s["rounds"].as_u64().unwrap(), c["rounds"].as_u64().unwrap());
    assert!(sr > 0 && sr < 1_000_000_000);
    assert!(
        sr.abs_diff(cr) <= 1,
        "turns alternate: server {sr}, client {cr}"
    );
    check_exclusion(&r, "ofd deadline");
}

#[test]
fn placements_pin_where_they_say() {
    let server = Server::start();
    let same = run_on(&server, "futex", "same-cpu", "100");
    assert!(same["server"]["cpu"].is_u64());
    assert_eq!(same["server"]["cpu"], same["client"]["cpu"]);
    let free = run_on(&server, "futex", "free", "100");
    assert!(free["server"]["cpu"].is_null() && free["client"]["cpu"].is_null());
    if placements().contains(&"split") {
        let split = run_on(&server, "futex", "split", "100");
        assert!(split["server"]["cpu"].is_u64() && split["client"]["cpu"].is_u64());
        assert_ne!(split["server"]["cpu"], split["client"]["cpu"]);
    }
}

#[test]
fn an_impossible_placement_is_refused_not_faked() {
    if lockfair::command::output_within(Command::new("taskset").arg("--version"), HANG).is_err() {
        eprintln!("skipped: taskset is not installed");
        return;
    }
    let server = Server::start();
    let cpu = lockfair::placement::allowed_cpus()[0].to_string();
    let out = run_within(
        Command::new("taskset")
            .args(["-c", &cpu])
            .arg(client_bin())
            .args([
                "run",
                "--socket",
                server.socket.to_str().unwrap(),
                "--variant",
                "futex",
                "--placement",
                "split",
            ]),
        HANG,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("split placement needs 2 CPUs"), "{err}");
}
