//! `--kernel-trace`: the kernel's own account of a run, from tracefs. Where tracing is not
//! allowed (no root, no tracefs) each test says so and skips the traced part only.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::util::{Needs, Server, TestDir, client, client_bin, placements, wait_exit};

/// Traced runs fill and read back ring buffers of tens of MiB: one at a time, so they do not
/// starve the rest of the suite on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A traced run's `--json`, and the client's pid; `None` (said once) where tracing is not
/// allowed here.
fn traced(server: &Server, args: &[&str]) -> Option<(Value, u32)> {
    let socket = server.socket.to_str().unwrap();
    let mut child = Command::new(client_bin())
        .args([
            "run",
            "--socket",
            socket,
            "--json",
            "--kernel-trace",
            "--max-seconds",
            "60",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let status = wait_exit(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("lockfair-client {args:?} did not finish within 120 s")
    });
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "lockfair-client {args:?} failed: {err}");
    let report: Value = serde_json::from_slice(&reader.join().unwrap().unwrap()).unwrap();
    if report.get("kernel").is_none() {
        let note = report["kernel_note"].as_str().unwrap_or("no note");
        assert!(note.starts_with("no kernel trace"), "{note}");
        crate::util::skip(
            Needs::Tracefs,
            &format!("the kernel-trace part of run {args:?}"),
            note,
        );
        return None;
    }
    assert!(
        instance(pid).is_none_or(|dir| !dir.exists()),
        "the run left its instance"
    );
    Some((report, pid))
}

/// Where process `pid`'s tracefs instance is (or was), if tracefs is mounted now.
fn instance(pid: u32) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let root = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("tracefs ")
            .then(|| left.split(' ').nth(4).map(PathBuf::from))?
    })?;
    Some(root.join("instances").join(format!("lockfair-{pid}")))
}

/// The kernel's per-contender counts beside lockfair's sides, in contender order.
fn kernel_and_sides(report: &Value) -> Vec<(&Value, &Value)> {
    let k = report["kernel"]["contenders"].as_array().unwrap();
    assert_eq!(k.len(), 2);
    k.iter()
        .zip([&report["server"], &report["client"]])
        .collect()
}

#[test]
fn ofd_on_one_cpu_kernel_grants_are_turns_plus_whoops_and_waiters_block() {
    let _one = one_at_a_time();
    let server = Server::start();
    let out = TestDir::new("ktrace-out");
    let dir = out.path().to_str().unwrap();
    let args = [
        "--variant",
        "ofd",
        "--placement",
        "same-cpu",
        "--rounds",
        "10",
        "--out",
        dir,
    ];
    let Some((report, _)) = traced(&server, &args) else {
        return;
    };
    let k = &report["kernel"];
    assert_eq!(k["lost_events"], 0, "the ring buffer held a 10-round run");
    for (kc, side) in kernel_and_sides(&report) {
        let own = side["rounds"].as_u64().unwrap() + side["whoops"].as_u64().unwrap();
        assert_eq!(
            kc["grants"].as_u64().unwrap(),
            own,
            "grants = turns + whoops: {kc}"
        );
        // Closing a description also unlocks (`locks_remove_file` sends an `F_UNLCK` through
        // `posix_lock_inode`), and it may or may not fall inside the trace: at least one unlock
        // per grant, and at most a close's worth more.
        let (grants, unlocks) = (
            kc["grants"].as_u64().unwrap(),
            kc["unlocks"].as_u64().unwrap(),
        );
        assert!(
            (grants..=grants + 2).contains(&unlocks),
            "every grant was unlocked: {kc}"
        );
    }
    assert!(k["blocks"].as_u64().unwrap() > 0, "{k}");
    assert!(k["wakeups_of_queued"].as_u64().unwrap() > 0, "{k}");
    assert!(k["wake_to_run_ns"]["count"].as_u64().unwrap() > 0, "{k}");
    let svg = std::fs::read_to_string(out.path().join("timeline.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("contender 0") && svg.contains("contender 1"));
}

#[test]
fn ofd_split_shows_kernel_confirmed_barges() {
    if !placements().contains(&"split") {
        eprintln!("skipped: split needs two CPUs");
        return;
    }
    let _one = one_at_a_time();
    let server = Server::start();
    let args = ["--variant", "ofd", "--placement", "split", "--rounds", "50"];
    let Some((report, _)) = traced(&server, &args) else {
        return;
    };
    let k = &report["kernel"];
    assert!(k["barges"].as_u64().unwrap() > 0, "{k}");
    assert!(
        k["blocks"].as_u64().unwrap() >= k["barges"].as_u64().unwrap(),
        "{k}"
    );
    assert!(k["regrants_over_waiter"].as_u64().unwrap() > 0, "{k}");
}

#[test]
fn lock_chain_never_barges_on_its_ring_locks() {
    let _one = one_at_a_time();
    let server = Server::start();
    for placement in placements() {
        let args = [
            "--variant",
            "lock-chain",
            "--placement",
            placement,
            "--rounds",
            "200",
        ];
        let Some((report, _)) = traced(&server, &args) else {
            return;
        };
        let k = &report["kernel"];
        assert!(k["grants"].as_u64().unwrap() > 0, "{placement}: {k}");
        assert_eq!(k["barges"], 0, "{placement}: {k}");
    }
}

#[test]
fn eventfd_takes_no_file_lock_but_shows_its_wakeups() {
    let _one = one_at_a_time();
    let server = Server::start();
    let args = [
        "--variant",
        "eventfd",
        "--placement",
        "same-cpu",
        "--rounds",
        "200",
    ];
    let Some((report, _)) = traced(&server, &args) else {
        return;
    };
    let k = &report["kernel"];
    for field in ["lock_requests", "grants", "blocks", "unlocks", "barges"] {
        assert_eq!(k[field], 0, "{field}: {k}");
    }
    assert!(k["wakeups"].as_u64().unwrap() > 0, "{k}");
    assert!(k["wake_to_run_ns"]["count"].as_u64().unwrap() > 0, "{k}");
}

#[test]
fn a_killed_runs_instance_is_swept_by_the_next_start() {
    let _one = one_at_a_time();
    let server = Server::start();
    let socket = server.socket.to_str().unwrap();
    let mut victim = Command::new(client_bin())
        .args([
            "run",
            "--socket",
            socket,
            "--kernel-trace",
            "--variant",
            "eventfd",
        ])
        .args(["--rounds", "100000000", "--max-seconds", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = victim.id();
    let give_up = Instant::now() + Duration::from_secs(20);
    let dir = loop {
        if let Some(dir) = instance(pid).filter(|d| d.exists()) {
            break Some(dir);
        }
        if Instant::now() > give_up || wait_exit(&mut victim, Duration::ZERO).is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(wait_exit(&mut victim, Duration::from_secs(10)).is_some());
    let Some(dir) = dir else {
        crate::util::skip(
            Needs::Tracefs,
            "a_killed_runs_instance_is_swept_by_the_next_start",
            "the run made no tracefs instance (tracing not allowed here?)",
        );
        return;
    };
    assert!(dir.exists(), "SIGKILL leaves the instance behind");
    // The next traced start sweeps it, whatever it traces.
    let out = client(
        &[
            "run",
            "--socket",
            socket,
            "--kernel-trace",
            "--variant",
            "pipe",
            "--rounds",
            "10",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists(), "{} was not swept", dir.display());
}

#[test]
fn compare_writes_a_timeline_per_cell_and_the_kernel_in_summary_json() {
    let _one = one_at_a_time();
    let out = TestDir::new("ktrace-compare");
    let dir = out.path().to_str().unwrap();
    let args = [
        "compare",
        "--variants",
        "ofd,pipe",
        "--placements",
        "same-cpu",
        "--repeats",
        "1",
        "--rounds",
        "10",
        "--max-seconds",
        "30",
        "--kernel-trace",
        "--out",
        dir,
    ];
    let run = client(&args, Duration::from_secs(120));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    if runs.iter().all(|r| r.get("kernel").is_none()) {
        crate::util::skip(
            Needs::Tracefs,
            "the kernel-trace part of compare_writes_a_timeline_per_cell_and_the_kernel_in_summary_json",
            &runs[0]["kernel_note"].to_string(),
        );
        return;
    }
    for r in runs {
        assert!(r["kernel"]["wakeups"].is_u64(), "{r}");
        let name = format!("timeline-{}-same-cpu.svg", r["variant"].as_str().unwrap());
        assert!(out.path().join(&name).is_file(), "{name}");
    }
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("The kernel's account"), "{text}");
    // report.html: the kernel's figures beside lockfair's, and each cell's timeline inline.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let start = html
        .find("<section id=\"kernel\">")
        .expect("report.html has the kernel's account");
    let section = &html[start..start + html[start..].find("</section>").unwrap()];
    assert!(
        section.contains("lockfair barging rate") && section.contains("kernel regrant rate"),
        "{section}"
    );
    for r in runs {
        let rate = format!("{:.3}", r["kernel"]["regrant_rate"].as_f64().unwrap());
        let row = format!(
            "<td>{}</td><td>same-cpu</td>",
            r["variant"].as_str().unwrap()
        );
        let at = section
            .find(&row)
            .unwrap_or_else(|| panic!("{row} in {section}"));
        let row = &section[at..at + section[at..].find("</tr>").unwrap()];
        assert!(row.contains(&rate), "{rate} in {row}");
    }
    assert_eq!(
        section.matches("<svg").count(),
        runs.len(),
        "a timeline per cell"
    );
    assert!(!section.contains("<script") && !section.contains("href="));
}
