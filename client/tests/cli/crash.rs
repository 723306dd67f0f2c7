//! `lockfair-client crash`: a holder is SIGKILLed inside its critical section; what the survivor
//! gets must be what the kernel does (fs/locks.c, futex, eventfd, pipe), cell by cell.
//!
//! Cells expected to recover get a generous limit (they return as soon as they do, so a loaded
//! machine only makes them slower); cells expected to hang get a short one (a loaded machine
//! cannot make a dead holder's lock come free).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use lockfair::crash::overhead::{OverheadOptions, overhead};
use lockfair::crash::{CrashOptions, crash};
use lockfair::variant::Variant;
use serde_json::Value;

use crate::util::{client_bin, run_within};

/// The limit for cells that must recover: they end as soon as they do.
const GENEROUS: &str = "30";
/// The limit for cells that must not.
const SHORT: &str = "0.5";

/// Runs `crash --json` with `args`, checks that no child of it outlived it, and returns the
/// cells.
fn crash_cells(args: &[&str]) -> Vec<Value> {
    let tag = format!("{}-{:?}", std::process::id(), std::thread::current().id());
    let mut all = vec!["crash", "--json"];
    all.extend_from_slice(args);
    let out = run_within(
        Command::new(client_bin())
            .args(&all)
            .env("LOCKFAIR_CRASH_TEST", &tag),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "lockfair-client {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = processes_with_env(&format!("LOCKFAIR_CRASH_TEST={tag}"));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("crash --json prints one object");
    let cells = v["cells"].as_array().expect("a cells array").clone();
    // Only a variant a kernel may lack (io_uring's futex operations) may be skipped.
    for s in v["skipped"].as_array().expect("a skipped array") {
        assert_eq!(s["variant"], "uring-futex", "a cell did not run: {s}");
    }
    let limit: f64 = args
        .iter()
        .position(|a| *a == "--limit")
        .map_or(2.0, |i| args[i + 1].parse().unwrap());
    for c in &cells {
        if let Some(ns) = c["recovered_ns"].as_u64() {
            assert!((ns as f64) < limit * 1e9, "recovered after the limit: {c}");
        }
        assert!(!c["how"].as_str().unwrap().is_empty(), "no how: {c}");
    }
    cells
}

fn cell<'a>(cells: &'a [Value], variant: &str, description: &str) -> &'a Value {
    cells
        .iter()
        .find(|c| c["variant"] == variant && c["holder_description"] == description)
        .unwrap_or_else(|| panic!("no cell {variant} ({description}) in {cells:?}"))
}

/// Live processes whose environment holds `entry`.
pub(crate) fn processes_with_env(entry: &str) -> Vec<String> {
    let mut found = Vec::new();
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let env = std::fs::read(d.path().join("environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|e| e == entry.as_bytes()) {
            found.push(name);
        }
    }
    found
}

#[test]
fn posix_and_lockf_locks_are_released_whoever_shares_the_description() {
    let cells = crash_cells(&["--variants", "posix,lockf", "--limit", GENEROUS]);
    assert_eq!(cells.len(), 4, "{cells:?}");
    for v in ["posix", "lockf"] {
        for d in ["own", "shared"] {
            let c = cell(&cells, v, d);
            assert_eq!(c["recovered"], true, "{c}");
            assert!(c["recovered_ns"].is_u64(), "{c}");
            assert_eq!(
                c["owner_died_seen"], false,
                "nothing tells a POSIX waiter: {c}"
            );
        }
    }
}

#[test]
fn description_locks_are_released_only_with_the_last_reference() {
    let variants = "ofd,flock,lock-chain";
    let own = crash_cells(&[
        "--variants",
        variants,
        "--descriptions",
        "own",
        "--limit",
        GENEROUS,
    ]);
    let shared = crash_cells(&[
        "--variants",
        variants,
        "--descriptions",
        "shared",
        "--limit",
        SHORT,
    ]);
    for v in ["ofd", "flock", "lock-chain"] {
        let c = cell(&own, v, "own");
        assert_eq!(
            c["recovered"], true,
            "the holder's own description closed: {c}"
        );
        let c = cell(&shared, v, "shared");
        assert_eq!(c["recovered"], false, "a live process holds it: {c}");
        assert!(c["recovered_ns"].is_null(), "{c}");
        assert_eq!(c["owner_died_seen"], false, "{c}");
        // The kernel's own account: still held, the survivor queued behind it.
        let kernel = c["kernel_view"].as_str().unwrap();
        assert!(kernel.ends_with(", 1 waiting"), "{c}");
        let holder = if v == "flock" {
            "FLOCK WRITE held by the dead holder"
        } else {
            "OFDLCK WRITE held by a description (pid -1)"
        };
        assert!(kernel.contains(holder), "{c}");
    }
}

/// The locks programs take through std, fs4, a polling loop and tokio's blocking pool die as
/// `flock` does (they are flock locks, owned by the description, whichever thread took them);
/// the kernel's account differs only for the poller, which is never queued (the async waiter's
/// pool thread is).
#[test]
fn the_locks_programs_take_die_like_flock_and_a_poller_is_never_queued() {
    let variants = "std-lock,poll-lock,fs4,async-lock";
    let own = crash_cells(&[
        "--variants",
        variants,
        "--descriptions",
        "own",
        "--limit",
        GENEROUS,
    ]);
    let shared = crash_cells(&[
        "--variants",
        variants,
        "--descriptions",
        "shared",
        "--limit",
        SHORT,
    ]);
    for v in ["std-lock", "poll-lock", "fs4", "async-lock"] {
        let c = cell(&own, v, "own");
        assert_eq!(
            c["recovered"], true,
            "the holder's own description closed: {c}"
        );
        let c = cell(&shared, v, "shared");
        assert_eq!(c["recovered"], false, "a live process holds it: {c}");
        assert_eq!(c["owner_died_seen"], false, "{c}");
        let kernel = c["kernel_view"].as_str().unwrap();
        assert!(
            kernel.contains("FLOCK WRITE held by the dead holder"),
            "{c}"
        );
        let queued = if v == "poll-lock" {
            "0 waiting"
        } else {
            "1 waiting"
        };
        assert!(kernel.ends_with(queued), "{c}");
    }
}

#[test]
fn the_fast_handoffs_wait_forever_and_are_never_told() {
    let cells = crash_cells(&[
        "--variants",
        "eventfd,tokio-eventfd,futex,ticket,spin-futex,fair-futex,starvation-futex,uring-futex",
        "--limit",
        SHORT,
    ]);
    // uring-futex is skipped (with its reason) where io_uring has no futex operations.
    assert!(cells.len() >= 7, "{cells:?}");
    for c in &cells {
        assert_eq!(c["recovered"], false, "{c}");
        assert_eq!(c["owner_died_seen"], false, "{c}");
    }
}

#[test]
fn a_pipe_reader_gets_eof_only_when_the_dead_holder_had_the_only_write_end() {
    let own = crash_cells(&[
        "--variants",
        "pipe",
        "--descriptions",
        "own",
        "--limit",
        GENEROUS,
    ]);
    let c = cell(&own, "pipe", "own");
    assert_eq!(c["owner_died_seen"], true, "EOF: {c}");
    assert_eq!(c["recovered"], false, "EOF gives no turn: {c}");
    let shared = crash_cells(&[
        "--variants",
        "pipe",
        "--descriptions",
        "shared",
        "--limit",
        SHORT,
    ]);
    let c = cell(&shared, "pipe", "shared");
    assert_eq!(c["owner_died_seen"], false, "a live write end: no EOF: {c}");
    assert_eq!(c["recovered"], false, "{c}");
}

#[test]
fn the_robust_mutex_reports_eownerdead_and_breaks_without_repair() {
    let plain = crash_cells(&["--variants", "robust-mutex", "--limit", GENEROUS]);
    let c = cell(&plain, "robust-mutex", "own");
    assert_eq!(c["recovered"], true, "the survivor holds it: {c}");
    assert_eq!(c["owner_died_seen"], true, "EOWNERDEAD: {c}");
    assert!(
        c["how"].as_str().unwrap().contains("ENOTRECOVERABLE"),
        "{c}"
    );
    let repaired = crash_cells(&[
        "--survivable",
        "--variants",
        "robust-mutex",
        "--limit",
        GENEROUS,
    ]);
    let c = cell(&repaired, "robust-mutex", "own");
    assert_eq!(c["recovered"], true, "{c}");
    assert_eq!(c["owner_died_seen"], true, "{c}");
    assert!(c["how"].as_str().unwrap().contains("clean"), "{c}");
}

#[test]
fn a_pi_futex_tells_the_next_owner_that_the_last_one_died() {
    let cells = crash_cells(&["--variants", "pi-futex", "--limit", GENEROUS]);
    let c = cell(&cells, "pi-futex", "own");
    // Queued in the kernel at the death: handed over with FUTEX_OWNER_DIED; between two timed
    // waits: ESRCH. Told either way.
    assert_eq!(c["owner_died_seen"], true, "{c}");
}

#[test]
fn the_seed_never_excluded_the_survivor_at_all() {
    let cells = crash_cells(&["--variants", "seed", "--limit", GENEROUS]);
    let c = cell(&cells, "seed", "shared");
    assert_eq!(c["recovered"], true, "{c}");
    assert_eq!(
        c["recovered_ns"], 0,
        "it had the lock before the holder died: {c}"
    );
}

#[test]
fn every_survivable_cell_recovers_and_reports_the_death() {
    let cells = crash_cells(&["--survivable", "--limit", GENEROUS]);
    let mut seen: Vec<String> = Vec::new();
    for c in &cells {
        assert_eq!(c["recovered"], true, "{c}");
        assert_eq!(c["owner_died_seen"], true, "{c}");
        assert_eq!(c["survivable"], true, "{c}");
        seen.push(format!("{} {}", c["variant"], c["holder_description"]));
    }
    for want in [
        "eventfd",
        "tokio-eventfd",
        "futex",
        "ticket",
        "spin-futex",
        "robust-mutex",
    ] {
        assert!(
            seen.contains(&format!("\"{want}\" \"own\"")),
            "{want} missing: {seen:?}"
        );
    }
    for d in ["own", "shared"] {
        assert!(
            seen.contains(&format!("\"pipe\" \"{d}\"")),
            "pipe {d}: {seen:?}"
        );
    }
}

#[test]
fn overhead_gives_one_ratio_per_protected_variant() {
    let out = run_within(
        Command::new(client_bin()).args([
            "crash",
            "--overhead",
            "--json",
            "--rounds",
            "50",
            "--repeats",
            "2",
        ]),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["overhead"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "eventfd",
            "futex",
            "pipe",
            "ticket",
            "spin-futex",
            "tokio-eventfd"
        ],
        "{v}"
    );
    for r in rows {
        let ratio = r["ratio"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{r}");
        assert_eq!(r["repeats"], 2, "{r}");
    }
}

#[test]
fn markdown_gives_a_section_with_its_table_and_command() {
    let out = run_within(
        Command::new(client_bin()).args([
            "crash",
            "--markdown",
            "--variants",
            "posix",
            "--descriptions",
            "own",
            "--limit",
            GENEROUS,
        ]),
        Duration::from_secs(300),
    );
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("## When the holder dies\n"), "{md}");
    let rows: Vec<Vec<&str>> = md
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let count = |start: &[&str]| rows.iter().filter(|r| r.starts_with(start)).count();
    assert_eq!(count(&["posix", "own", "yes"]), 1, "the cell: {md}");
    assert_eq!(
        count(&["posix", "yes: the kernel releases it"]),
        1,
        "the verdict: {md}"
    );
    assert!(md.contains("crash --markdown --variants posix"), "{md}");
}

#[test]
fn bad_limits_and_empty_selections_are_refused() {
    let out = run_within(
        Command::new(client_bin()).args(["crash", "--limit", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let out = run_within(
        Command::new(client_bin()).args(["crash", "--survivable", "--variants", "ofd"]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no cell"), "{err}");
}

/// Runs [`crash_in_a_process_of_its_own`] alone in a fresh test process, where its descriptor
/// and child counts cannot be disturbed by other tests.
#[test]
fn no_process_or_descriptor_is_left_behind() {
    let out = run_within(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::crash_in_a_process_of_its_own",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("LOCKFAIR_CRASH_ALONE", "1"),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run alone in a process of its own by no_process_or_descriptor_is_left_behind"]
fn crash_in_a_process_of_its_own() {
    if std::env::var_os("LOCKFAIR_CRASH_ALONE").is_none() {
        return;
    }
    let cost = |variants| OverheadOptions {
        helper: client_bin(),
        rounds: 20,
        repeats: 1,
        variants,
    };
    // The first tokio runtime creates process-wide signal globals (a socketpair) that live as
    // long as the process: create them before counting.
    overhead(&cost(vec![Variant::TokioEventfd]), |_| {}).unwrap();
    let before = open_fds();
    let opts = CrashOptions {
        helper: client_bin(),
        limit: Duration::from_millis(300),
        survivable: false,
        variants: vec![
            Variant::Ofd,
            Variant::Posix,
            Variant::Pipe,
            Variant::Eventfd,
            Variant::TokioEventfd,
            Variant::Futex,
        ],
        descriptions: vec![],
    };
    crash(&opts, |_| {}).unwrap();
    // `crash --stop`: every stopped holder continued, killed and reaped, its survivor too.
    let stopped = lockfair::crash::stop::stop(&opts, |_| {}).unwrap();
    assert_eq!(stopped.cells.len(), opts.variants.len());
    let survivable = CrashOptions {
        survivable: true,
        limit: Duration::from_secs(30),
        variants: vec![],
        ..opts
    };
    crash(&survivable, |_| {}).unwrap();
    overhead(&cost(vec![]), |_| {}).unwrap();
    assert_eq!(open_fds(), before, "descriptors left open");
    let me = std::process::id().to_string();
    let children = children_of(&me);
    assert!(
        children.is_empty(),
        "children left (zombies count): {children:?}"
    );
}

/// This process's descriptors and what they point to.
fn open_fds() -> BTreeMap<String, String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|d| {
            let target = std::fs::read_link(d.path()).unwrap_or_default();
            (
                d.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            )
        })
        // The directory listing itself.
        .filter(|(_, t)| !t.starts_with("/proc/"))
        .collect()
}

/// Pids whose parent is `pid`, zombies included.
fn children_of(pid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(d.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
        if ppid.as_deref() == Some(pid) {
            found.push(d.file_name().to_string_lossy().into_owned());
        }
    }
    found
}
