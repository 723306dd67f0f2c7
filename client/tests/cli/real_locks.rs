//! The locks programs take (`std-lock`, `poll-lock`, `fs4`, `async-lock`): each through the real
//! binaries in both modes, with 2 and 4 contenders, on every placement this machine has.

use std::time::Duration;

use crate::util::{
    Server, assert_free_run_adds_up, assert_side_consistent, client, placements, run_json,
};

/// Turns per contender: the waiting sides barge back in thousands of times per turn, and a
/// poller may sleep through a few releases before it finds the lock free.
const TURNS: u64 = 100;
/// Acquisitions per contender in `free` mode.
const FREE: u64 = 200;

/// `run --json` of `variant` in `mode` with `n` contenders taking `rounds` each on `placement`.
fn run(
    server: &Server,
    variant: &str,
    mode: &str,
    n: usize,
    placement: &str,
    rounds: u64,
) -> serde_json::Value {
    let (n, rounds) = (n.to_string(), rounds.to_string());
    run_json(
        server,
        &[
            "--variant",
            variant,
            "--mode",
            mode,
            "--contenders",
            &n,
            "--placement",
            placement,
            "--rounds",
            &rounds,
        ],
    )
}

/// Every turn taken by every contender, nobody inside together, the counts consistent.
fn assert_turns_add_up(r: &serde_json::Value, n: usize, what: &str) {
    let contenders = r["contenders"].as_array().unwrap();
    assert_eq!(contenders.len(), n, "{what}");
    for c in contenders {
        assert_eq!(c["overlaps"], 0, "{what}: the lock excludes: {c}");
        assert_eq!(c["wrong_reads"], 0, "{what}: {c}");
        assert_eq!(c["acquisitions"], TURNS, "{what}: every turn taken: {c}");
    }
    if n == 2 {
        for side in ["server", "client"] {
            assert_eq!(r[side]["rounds"], TURNS, "{what} {side}");
            assert_eq!(r[side]["end"], "completed", "{what} {side}");
            assert_side_consistent(&r[side], &format!("{what} {side}"));
        }
    }
}

/// `variant` in both modes, 2 and 4 contenders, every placement (`split` only where there is a
/// CPU per contender).
fn check_everywhere(variant: &str) {
    let server = Server::start();
    let cpus = lockfair::placement::allowed_cpus().len();
    for placement in placements() {
        for n in [2, 4] {
            if placement == "split" && cpus < n {
                continue;
            }
            let what = format!("{variant} turns, {n} contenders, {placement}");
            let r = run(&server, variant, "turns", n, placement, TURNS);
            assert_eq!(r["variant"], variant, "{what}");
            assert_turns_add_up(&r, n, &what);
            let what = format!("{variant} free, {n} contenders, {placement}");
            let r = run(&server, variant, "free", n, placement, FREE);
            assert_free_run_adds_up(&r, n as u64, FREE, &what);
        }
    }
}

#[test]
fn std_lock_excludes_in_both_modes_on_every_placement() {
    check_everywhere("std-lock");
}

#[test]
fn poll_lock_excludes_in_both_modes_on_every_placement() {
    check_everywhere("poll-lock");
}

#[test]
fn fs4_excludes_in_both_modes_on_every_placement() {
    check_everywhere("fs4");
}

#[test]
fn async_lock_excludes_in_both_modes_on_every_placement() {
    check_everywhere("async-lock");
}

/// `--poll-sleep` reaches `run` and `compare`: a shorter and a longer sleep both complete, and a
/// sleep that is no duration, or out of range, is refused in one line that says what to write.
#[test]
fn poll_sleep_is_an_option_of_run_and_compare_and_is_checked() {
    let server = Server::start();
    for sleep in ["200us", "5ms"] {
        for (mode, n, rounds) in [("free", 2, 50), ("turns", 4, 20)] {
            let what = format!("poll-lock --poll-sleep {sleep} {mode} with {n} contenders");
            let (n_arg, rounds_arg) = (n.to_string(), rounds.to_string());
            let r = run_json(
                &server,
                &[
                    "--variant",
                    "poll-lock",
                    "--poll-sleep",
                    sleep,
                    "--mode",
                    mode,
                    "--contenders",
                    &n_arg,
                    "--rounds",
                    &rounds_arg,
                ],
            );
            if mode == "free" {
                assert_free_run_adds_up(&r, n as u64, rounds, &what);
            } else {
                for c in r["contenders"].as_array().unwrap() {
                    assert_eq!(c["overlaps"], 0, "{what}: {c}");
                    assert_eq!(c["acquisitions"], rounds, "{what}: {c}");
                }
            }
        }
    }
    for (sleep, says) in [
        ("banana", "write a duration such as 1ms"),
        ("0s", "between 50us and 1s"),
        ("5s", "between 50us and 1s"),
    ] {
        for (command, flag) in [("run", "--variant"), ("compare", "--variants")] {
            let out = client(
                &[command, flag, "poll-lock", "--poll-sleep", sleep],
                Duration::from_secs(30),
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} --poll-sleep {sleep}");
            assert!(err.contains(says), "{command} --poll-sleep {sleep}: {err}");
        }
    }
}
