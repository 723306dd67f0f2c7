//! `uring-futex`: futex waits and wakes through io_uring. Exclusive and whoop-free in turns mode
//! for any number of contenders, free-mode totals add up, and where io_uring cannot be used the
//! variant is refused with the reason, not run.

use std::time::Duration;

use crate::util::{Server, assert_free_run_adds_up, client, run_json};

/// Whether this machine can run the variant: the same probe the client and server use.
fn io_uring_futexes_here() -> bool {
    lockfair::sys::uring::probe(std::path::Path::new(lockfair::sys::uring::DISABLED_SYSCTL)).is_ok()
}

#[test]
fn uring_futex_takes_turns_without_whoops_or_overlaps() {
    if !io_uring_futexes_here() {
        return refused_here();
    }
    let server = Server::start();
    for n in ["2", "3", "5"] {
        let what = format!("uring-futex with {n} contenders");
        let r = run_json(
            &server,
            &[
                "--variant",
                "uring-futex",
                "--contenders",
                n,
                "--rounds",
                "300",
            ],
        );
        let contenders = r["contenders"].as_array().unwrap();
        assert_eq!(contenders.len(), n.parse::<usize>().unwrap(), "{what}");
        for c in contenders {
            assert_eq!(c["whoops"], 0, "{what}: {c}");
            assert_eq!(c["overlaps"], 0, "{what}: {c}");
            assert_eq!(c["wrong_reads"], 0, "{what}: {c}");
            assert_eq!(c["acquisitions"], 300, "{what}: {c}");
        }
    }
}

#[test]
fn uring_futex_free_mode_acquisitions_add_up() {
    if !io_uring_futexes_here() {
        return refused_here();
    }
    let server = Server::start();
    let (n, k) = (3u64, 1_000u64);
    let r = run_json(
        &server,
        &[
            "--variant",
            "uring-futex",
            "--mode",
            "free",
            "--contenders",
            &n.to_string(),
            "--rounds",
            &k.to_string(),
        ],
    );
    assert_free_run_adds_up(&r, n, k, "uring-futex free with 3 contenders");
}

/// Where the kernel refuses io_uring futexes, `run` says why in one line and runs nothing.
fn refused_here() {
    let out = client(
        &[
            "run",
            "--socket",
            "/nonexistent/lockfair.sock",
            "--variant",
            "uring-futex",
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uring-futex cannot run on this machine"),
        "{err}"
    );
}

/// With io_uring switched off (simulated: the switch read from a file holding 2), `run` refuses
/// the variant in one line and `compare` lists its cells as not run, with the reason, while the
/// other variants run.
#[test]
fn where_io_uring_is_off_run_refuses_and_compare_lists_it_as_not_run() {
    let dir = crate::util::TestDir::new("uring-off");
    let switch = dir.path().join("io_uring_disabled");
    std::fs::write(&switch, "2\n").unwrap();
    let env = (lockfair::variant::URING_SYSCTL_ENV, &switch);

    let out = crate::util::run_within(
        std::process::Command::new(crate::util::client_bin())
            .args([
                "run",
                "--socket",
                "/nonexistent/lockfair.sock",
                "--variant",
                "uring-futex",
            ])
            .env(env.0, env.1),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("uring-futex cannot run on this machine"),
        "{err}"
    );
    assert!(err.contains("io_uring_disabled = 2"), "{err}");

    let report = dir.path().join("report");
    let out = crate::util::run_within(
        std::process::Command::new(crate::util::client_bin())
            .args([
                "compare",
                "--variants",
                "futex,uring-futex",
                "--placements",
                "same-cpu",
            ])
            .args([
                "--rounds",
                "100",
                "--max-seconds",
                "5",
                "--repeats",
                "1",
                "--out",
            ])
            .arg(&report)
            .env("XDG_RUNTIME_DIR", dir.path())
            .env(env.0, env.1),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    let skipped = json["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["variant"], "uring-futex");
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(reason.contains("io_uring_disabled = 2"), "{reason}");
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["variant"], "futex");
}
