//! `lockfair-client matrix`: the measured lock-semantics matrix must equal the documented one,
//! cell by cell, and each extra experiment must show what the man pages say.

use std::time::Duration;

use serde_json::Value;

use crate::util::client;

/// The documented semantics (flock(2), fcntl(2) "Open file description locks", lockf(3), and the
/// article): `(lock, access, serialized with threads, serialized with processes)`.
///
/// - flock and OFD locks belong to the open file description: only a second `open()` is a
///   second owner, whether it is in another thread or another process.
/// - POSIX locks (fcntl F_SETLK and lockf) belong to the process: two threads are one owner
///   whatever descriptors they use, two processes are two owners whatever they share.
const EXPECTED: [(&str, &str, bool, bool); 16] = [
    ("flock", "same_fd", false, false),
    ("flock", "dup_fd", false, false),
    ("flock", "two_fds", true, true),
    ("flock", "passed_fd", false, false),
    ("lockf", "same_fd", false, true),
    ("lockf", "dup_fd", false, true),
    ("lockf", "two_fds", false, true),
    ("lockf", "passed_fd", false, true),
    ("posix", "same_fd", false, true),
    ("posix", "dup_fd", false, true),
    ("posix", "two_fds", false, true),
    ("posix", "passed_fd", false, true),
    ("ofd", "same_fd", false, false),
    ("ofd", "dup_fd", false, false),
    ("ofd", "two_fds", true, true),
    ("ofd", "passed_fd", false, false),
];

/// The matrix, extras included, only has to finish: this bound catches a hang.
const LIMIT: Duration = crate::util::HANG;

fn matrix_json() -> Value {
    // Bounded by the deadline, not timed: timings on a loaded machine say nothing.
    let out = client(&["matrix", "--json"], LIMIT);
    assert!(
        out.status.success(),
        "matrix --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("matrix --json prints one JSON object")
}

fn by_lock<'a>(list: &'a Value, lock: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v["lock"] == lock)
        .unwrap_or_else(|| panic!("no record for {lock} in {list}"))
}

fn holders(lines: &Value) -> Vec<&Value> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["blocked"] == false)
        .collect()
}

#[test]
fn every_cell_of_the_matrix_matches_the_documented_semantics() {
    let r = matrix_json();
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 32, "4 kinds × 4 accesses × 2 concurrencies");
    let mut mismatches = Vec::new();
    for (lock, access, threads, processes) in EXPECTED {
        for (concurrency, expected) in [("threads", threads), ("processes", processes)] {
            let found: Vec<&Value> = cells
                .iter()
                .filter(|c| {
                    c["lock"] == lock && c["access"] == access && c["concurrency"] == concurrency
                })
                .collect();
            assert_eq!(found.len(), 1, "{lock} {access} {concurrency}: {found:?}");
            let cell = found[0];
            assert_eq!(
                cell.as_object().unwrap().len(),
                5,
                "exactly lock, access, concurrency, serialized, errno: {cell}"
            );
            if cell["serialized"] != expected {
                mismatches.push(format!(
                    "{lock} {access} {concurrency}: expected serialized={expected}, got {cell}"
                ));
            }
            if expected {
                assert!(
                    cell["errno"] == "EAGAIN" || cell["errno"] == "EACCES",
                    "a refusal carries the kernel's errno: {cell}"
                );
            } else {
                assert_eq!(cell["errno"], Value::Null, "a grant has no errno: {cell}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_extra_experiments_show_what_the_man_pages_say() {
    let r = matrix_json();
    let our_pid = r["pid"].as_i64().unwrap();

    // Atomic mode switch: flock drops the shared lock first, POSIX and OFD convert atomically.
    for lock in ["flock", "posix", "ofd"] {
        let u = by_lock(&r["upgrade"], lock);
        for run in ["alone", "beside_reader"] {
            let run_ = &u[run];
            assert!(
                run_["proc_locks_while_waiting"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["blocked"] == true && l["access"] == "WRITE"),
                "{lock} {run}: W really waited (a `->` WRITE line): {run_}"
            );
            assert_eq!(run_["waiter_granted"], true, "{lock} {run}: {run_}");
        }
        assert_eq!(u["alone"]["upgrade_errno"], Value::Null, "{lock}: {u}");
        assert_eq!(u["alone"]["waiter_got_in"], false, "{lock}: {u}");
        let beside = &u["beside_reader"];
        assert_eq!(beside["upgrade_errno"], "EAGAIN", "{lock}: {beside}");
        let atomic = lock != "flock";
        assert_eq!(u["atomic"], atomic, "{lock}: {u}");
        assert_eq!(beside["holder_kept_lock"], atomic, "{lock}: {beside}");
        assert_eq!(beside["waiter_got_in"], !atomic, "{lock}: {beside}");
        // The kernel's evidence: after the refused upgrade, flock lists the reader's READ only.
        let after = holders(&beside["proc_locks_after_upgrade"]);
        assert_eq!(after.len(), if atomic { 2 } else { 1 }, "{lock}: {after:?}");
    }
    assert!(
        r["upgrade"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["lock"] != "lockf"),
        "lockf has no shared mode to upgrade from"
    );

    // The close pitfall: only process-owned locks die with an unrelated close.
    for (lock, released) in [
        ("flock", false),
        ("lockf", true),
        ("posix", true),
        ("ofd", false),
    ] {
        let c = by_lock(&r["close_pitfall"], lock);
        assert_eq!(c["released_by_unrelated_close"], released, "{lock}: {c}");
        assert_eq!(holders(&c["proc_locks_before_close"]).len(), 1, "{c}");
        assert_eq!(
            holders(&c["proc_locks_after_close"]).len(),
            usize::from(!released),
            "{lock}: /proc/locks agrees: {c}"
        );
        if released {
            assert_eq!(c["other_process_errno"], Value::Null, "{c}");
        } else {
            assert_eq!(c["other_process_errno"], "EAGAIN", "{c}");
        }
    }

    // Shared mode: lockf is exclusive only, the others let two readers in.
    for lock in ["flock", "posix", "ofd"] {
        let s = by_lock(&r["shared_mode"], lock);
        assert_eq!(s["mode"], "shared", "{s}");
        assert_eq!(s["coexist"], true, "{lock}: {s}");
        let h = holders(&s["proc_locks"]);
        assert_eq!(h.len(), 2, "{lock}: {s}");
        assert!(h.iter().all(|l| l["access"] == "READ"), "{lock}: {s}");
    }
    let lockf = by_lock(&r["shared_mode"], "lockf");
    assert_eq!(lockf["mode"], "exclusive", "{lockf}");
    assert_eq!(lockf["coexist"], false, "{lockf}");
    assert_eq!(lockf["second_errno"], "EAGAIN", "{lockf}");
    let h = holders(&lockf["proc_locks"]);
    assert!(h.len() == 1 && h[0]["access"] == "WRITE", "{lockf}");

    // What the kernel shows: FLOCK and POSIX with our pid, OFDLCK with pid -1.
    for (lock, kind, pid) in [
        ("flock", "FLOCK", our_pid),
        ("lockf", "POSIX", our_pid),
        ("posix", "POSIX", our_pid),
        ("ofd", "OFDLCK", -1),
    ] {
        let v = by_lock(&r["kernel_view"], lock);
        let h = holders(&v["proc_locks"]);
        assert_eq!(h.len(), 1, "{v}");
        assert_eq!(h[0]["kind"], kind, "{v}");
        assert_eq!(h[0]["pid"], pid, "{v}");
        assert_eq!(h[0]["access"], "WRITE", "{v}");
        assert!(
            h[0]["line"].as_str().unwrap().contains(kind),
            "the raw line is kept: {v}"
        );
        if let Some(lines) = v["lslocks"].as_array() {
            assert!(
                lines.iter().any(|l| l.as_str().unwrap().contains(kind)),
                "lslocks lists the {kind} lock: {v}"
            );
        }
    }

    // Mandatory locking: reported as the kernel answered, never claimed without a refusal.
    let m = &r["mandatory"];
    let mount = m["mount"].as_str().unwrap();
    assert!(
        mount == "mounted"
            || mount.starts_with("refused: E")
            || mount == "skipped: needs CAP_SYS_ADMIN to mount with -o mand",
        "{m}"
    );
    if nix::unistd::geteuid().is_root() {
        assert_ne!(mount, "skipped: needs CAP_SYS_ADMIN to mount with -o mand");
    }
    let attempts = m["attempts"].as_array().unwrap();
    assert!(attempts.iter().any(|a| a["filesystem"] == "default"), "{m}");
    assert_eq!(
        attempts.iter().any(|a| a["filesystem"] == "tmpfs -o mand"),
        mount == "mounted",
        "the -o mand file is tried exactly when the mount was accepted: {m}"
    );
    for a in attempts {
        let refused = a["write_errno"] == "EAGAIN" || a["read_errno"] == "EAGAIN";
        assert_eq!(a["enforced"], refused, "{a}");
        if a["enforced"] == true {
            assert_eq!(a["setgid_without_group_exec"], true, "{a}");
        }
    }
    assert_eq!(
        m["enforced"],
        attempts.iter().any(|a| a["enforced"] == true),
        "{m}"
    );
    // Linux 5.15 removed mandatory locking: a newer kernel must not be reported as enforcing.
    let release = m["kernel"].as_str().unwrap();
    let mut version = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (version.next().unwrap(), version.next().unwrap());
    if (major, minor) >= (5, 15) {
        assert_eq!(m["enforced"], false, "kernel {release}: {m}");
    }
}

#[test]
fn nothing_outlives_the_matrix() {
    let r = matrix_json();
    let pid = r["pid"].as_i64().unwrap();
    // The private directory (and any mount in it) is gone.
    let prefix = format!("lockfair-matrix-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&prefix), "a mount was left: {mounts}");
    // Every helper process was reaped (a pid reused since then would not be our helper).
    let mut helpers: Vec<i64> = Vec::new();
    for u in r["upgrade"].as_array().unwrap() {
        for run in ["alone", "beside_reader"] {
            helpers.extend(u[run]["holder_pid"].as_i64());
            helpers.extend(u[run]["reader_pid"].as_i64());
        }
    }
    for a in r["mandatory"]["attempts"].as_array().unwrap() {
        helpers.extend(a["holder_pid"].as_i64());
    }
    assert!(!helpers.is_empty());
    for h in helpers {
        let cmdline = std::fs::read(format!("/proc/{h}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline.ends_with(b"peer\0"),
            "helper {h} is still running: {:?}",
            String::from_utf8_lossy(&cmdline)
        );
    }
}

#[test]
fn the_text_report_shows_the_table_and_the_kernels_evidence() {
    let out = client(&["matrix"], LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "lock   access     threads    processes",
        "flock  two_fds    ✓ EAGAIN   ✓ EAGAIN",
        "ofd    passed_fd  ✗          ✗",
        "posix  passed_fd  ✗          ✓ EAGAIN",
        "flock  NOT atomic",
        "posix  atomic",
        "lock RELEASED",
        "lockf has no shared mode",
        "FLOCK  ADVISORY  WRITE",
        "OFDLCK ADVISORY  WRITE -1",
        "-> ",
        "Mandatory locking (kernel ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
