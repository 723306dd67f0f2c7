//! Unequal contenders: `--hold`, `--think` and `--nice` lists, checked in one line; the busy work
//! and the nice value reach every contender; the lock opportunity figures add up. Only what
//! holds by construction is asserted: who wins the lock under a given hold ratio depends on the
//! scheduler too, and belongs in docs/unequal.md.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use lockfair::proto::Message;
use serde_json::Value;

use crate::util::{Server, TestDir, client, error_text, hello_as_with, run_json};

const HANG: Duration = Duration::from_secs(60);

/// The one line a refused command printed.
fn refused(args: &[&str]) -> String {
    let out = client(args, HANG);
    assert!(!out.status.success(), "{args:?} was accepted");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!err.is_empty(), "{args:?}: no reason given");
    err
}

#[test]
fn lists_of_the_wrong_length_and_values_out_of_range_are_refused_in_one_line() {
    let server = Server::start();
    let socket = server.socket.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--socket", socket, "--variant", "ofd"];
        args.extend_from_slice(extra);
        refused(&args)
    };
    assert_eq!(
        run(&["--hold", "1us,2us,3us"]),
        "lockfair-client: --hold has 3 values for 2 contenders: give one value for all, or \
         exactly 2 (one per contender, the server first)"
    );
    let e = run(&["--contenders", "3", "--think", "1us,2us"]);
    assert!(e.contains("--think has 2 values for 3 contenders"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    let e = run(&["--nice", "0,5,7"]);
    assert!(e.contains("--nice has 3 values for 2 contenders"), "{e}");
    let e = run(&["--hold", "2s"]);
    assert!(e.contains("--hold 2s is longer than 1s"), "{e}");
    let e = run(&["--nice", "0,20"]);
    assert!(e.contains("20 is not in -20..=19"), "{e}");
    let e = run(&["--hold", "10 parsecs"]);
    assert!(e.contains("write a duration such as 1us"), "{e}");
    // compare says so before it starts anything.
    let dir = TestDir::new("unequal-compare");
    let out = crate::util::compare(
        dir.path(),
        &[
            "--variants",
            "ofd",
            "--out",
            dir.path().join("report").to_str().unwrap(),
            "--hold",
            "1us,2us,3us",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--hold has 3 values for 2 contenders"),
        "{err}"
    );
    // The server carried on.
    let ok = run_json(&server, &["--variant", "ofd", "--rounds", "5"]);
    assert_eq!(ok["contender_count"], 2);
}

/// Each contender's figures from `run --json`, by index.
fn contender(r: &Value, i: usize) -> &Value {
    &r["contenders"][i]
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// What lock opportunity must show whoever won: the shares of an excluding lock add up to at
/// most the span, a contender's opportunity is its hold share plus the idle share, and Jain's
/// index lies in [1/N, 1].
fn assert_opportunity_adds_up(r: &Value, what: &str) {
    let n = r["contenders"].as_array().unwrap().len();
    let idle = f(&r["idle_share"]);
    let mut held = 0.0;
    let mut cpu = 0.0;
    for i in 0..n {
        let c = contender(r, i);
        let (hold, opportunity) = (f(&c["hold_share"]), f(&c["opportunity"]));
        assert!((0.0..=1.0).contains(&hold), "{what}: contender {i}: {c}");
        assert!(opportunity >= hold, "{what}: contender {i}: {c}");
        assert!((opportunity - hold - idle).abs() < 1e-9, "{what}: {i}");
        held += hold;
        cpu += f(&c["cpu_share"]);
    }
    assert!(held <= 1.0 + 1e-9, "{what}: hold shares add up to {held}");
    assert!(
        (cpu - 1.0).abs() < 1e-9,
        "{what}: CPU shares add up to {cpu}"
    );
    let jain = f(&r["opportunity_jain"]);
    assert!(
        jain >= 1.0 / n as f64 - 1e-9 && jain <= 1.0 + 1e-9,
        "{what}: Jain {jain}"
    );
}

#[test]
fn a_hundredfold_hold_on_a_file_lock_is_busy_work_and_the_shares_add_up() {
    let server = Server::start();
    for variant in ["ofd", "flock"] {
        let r = run_json(
            &server,
            &[
                "--variant",
                variant,
                "--mode",
                "free",
                "--rounds",
                "300",
                "--hold",
                "1us,100us",
                "--think",
                "0,2us",
            ],
        );
        let what = format!("{variant}: {r}");
        let (short, long) = (contender(&r, 0), contender(&r, 1));
        assert_eq!(
            (short["hold_ns"].as_u64(), long["hold_ns"].as_u64()),
            (Some(1_000), Some(100_000)),
            "{what}"
        );
        assert_eq!(
            (short["think_ns"].as_u64(), long["think_ns"].as_u64()),
            (Some(0), Some(2_000)),
            "{what}"
        );
        for (c, hold_ns) in [(short, 1_000), (long, 100_000)] {
            // Busy work until the clock says so: every hold lasts at least what was asked.
            let acquisitions = c["acquisitions"].as_u64().unwrap();
            assert_eq!(acquisitions, 300, "{what}");
            assert!(
                c["held_ns"].as_u64().unwrap() >= acquisitions * hold_ns,
                "{what}"
            );
        }
        // The long holder's own time in the section is a hundred holds of the short one's.
        assert!(f(&long["held_ns"]) >= 300.0 * 100_000.0, "{what}");
        if !r["opportunity_jain"].is_null() {
            assert_opportunity_adds_up(&r, &what);
        }
    }
}

#[test]
fn the_shares_add_up_in_turns_mode_and_for_a_deadline_stop() {
    let server = Server::start();
    let r = run_json(
        &server,
        &[
            "--variant",
            "ticket",
            "--mode",
            "turns",
            "--rounds",
            "200",
            "--hold",
            "10us",
        ],
    );
    assert_opportunity_adds_up(&r, &format!("turns: {r}"));
    // Turns alternate: each side held at least its turns × the hold.
    for i in 0..2 {
        assert!(f(&contender(&r, i)["held_ns"]) >= 200.0 * 10_000.0, "{r}");
    }
    let r = run_json(
        &server,
        &[
            "--variant",
            "futex",
            "--mode",
            "free",
            "--contenders",
            "3",
            "--rounds",
            "100000000",
            "--max-seconds",
            "0.3",
            "--hold",
            "1us,10us,100us",
        ],
    );
    assert_opportunity_adds_up(&r, &format!("deadline: {r}"));
}

#[test]
fn every_contender_runs_at_the_nice_value_asked_and_the_server_thread_is_not_left_niced() {
    let server = Server::start();
    let r = run_json(
        &server,
        &[
            "--variant",
            "ofd",
            "--mode",
            "free",
            "--contenders",
            "3",
            "--rounds",
            "50",
            "--nice",
            "3,7,11",
        ],
    );
    let nice: Vec<i64> = (0..3)
        .map(|i| contender(&r, i)["nice"].as_i64().unwrap())
        .collect();
    assert_eq!(nice, [3, 7, 11], "{r}");
    assert_eq!(r["server"]["nice"], 3);
    // The niced session ran on a thread of its own: the next one finds the server's default.
    let r = run_json(&server, &["--variant", "ofd", "--rounds", "5"]);
    assert_eq!(r["server"]["nice"], 0, "{r}");
    if nix::unistd::geteuid().is_root() {
        let r = run_json(
            &server,
            &["--variant", "ofd", "--rounds", "5", "--nice", "-5"],
        );
        assert_eq!(
            (r["server"]["nice"].as_i64(), r["client"]["nice"].as_i64()),
            (Some(-5), Some(-5))
        );
    }
}

#[test]
fn a_negative_nice_needs_root_at_the_client_and_at_the_server() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root may act as another uid");
        return;
    }
    // The client, run as nobody, refuses before it connects anywhere.
    let out = crate::util::run_within(
        std::process::Command::new(crate::util::client_bin())
            .args([
                "run",
                "--variant",
                "ofd",
                "--socket",
                "/nonexistent/s.sock",
                "--nice",
                "-5,0",
            ])
            .uid(65534)
            .gid(65534),
        HANG,
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "lockfair-client: --nice -5: a negative nice value needs root (CAP_SYS_NICE); run as root \
         or give 0 to 19"
    );
    // A root server admits nobody's hello, but not its negative nice.
    let server = Server::start_with(&["--allow-uid", "65534"]);
    let hello = lockfair::proto::Hello {
        nice: Some(-5),
        ..crate::garbage::hello(lockfair::variant::Variant::Ofd)
    };
    let why = error_text(hello_as_with(&server, 65534, hello.clone()));
    assert_eq!(
        why,
        "nice -5 refused: only root may ask for a negative nice value (the sender is uid 65534)"
    );
    let positive = lockfair::proto::Hello {
        nice: Some(5),
        max_ms: 200,
        ..hello
    };
    assert!(matches!(
        hello_as_with(&server, 65534, positive),
        Message::Ready(_)
    ));
}
