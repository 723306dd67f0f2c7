//! `uring-futex`: futex waits and wakes through io_uring. Exclusive and whoop-free in turns mode
//! for any number of contenders, free-mode totals add up, and where io_uring cannot be used the
//! variant is refused with the reason, not run.

use std::time::Duration;

use crate::util::{Server, client, run_json};

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
    let contenders = r["contenders"].as_array().unwrap();
    let total: u64 = contenders
        .iter()
        .map(|c| c["acquisitions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, n * k, "N × K acquisitions");
    for c in contenders {
        assert_eq!(c["overlaps"], 0, "the lock excludes: {c}");
        assert_eq!(c["wait_ns"]["count"], k, "one wait per acquisition: {c}");
    }
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
