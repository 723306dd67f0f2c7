//! `compare --contenders 2,8,…`: a sweep has a table and a plot per measure and JSON per count;
//! lockfair's own memory and descriptors grow at most linearly with the count; an interrupted
//! sweep leaves no helper process behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::plot_labels::{assert_no_label_overlaps, svgs_of};
use crate::report_html::chromium_or_skip;
use crate::util::{HANG, TestDir, client_bin, compare, wait_exit};

/// The measures' plots, one per measure.
const PLOTS: [&str; 5] = [
    "contenders-acquisitions.svg",
    "contenders-bypass-p99.svg",
    "contenders-bypass-max.svg",
    "contenders-jain.svg",
    "contenders-cpu.svg",
];

/// A sweep into `out`, which must succeed; its stdout and `summary.json`.
fn sweep(runtime: &Path, out: &Path, args: &[&str]) -> (String, Value) {
    let mut all = args.to_vec();
    all.extend(["--placements", "free", "--repeats", "1", "--out"]);
    all.push(out.to_str().unwrap());
    let done = compare(runtime, &all);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let json = std::fs::read_to_string(out.join("summary.json")).unwrap();
    (
        String::from_utf8(done.stdout).unwrap(),
        serde_json::from_str(&json).unwrap(),
    )
}

#[test]
fn a_sweep_has_a_table_a_plot_and_json_per_measure_and_count() {
    let (runtime, dir) = (TestDir::new("sweep-rt"), TestDir::new("sweep-out"));
    let out = dir.path().join("r");
    let (text, json) = sweep(
        runtime.path(),
        &out,
        &[
            "--variants",
            "futex,ticket",
            "--contenders",
            "2,8",
            // Bounded by time, not rounds: nobody completes before the last has joined, so
            // the common window (and Jain's index over lock opportunity) is there.
            "--rounds",
            "100000000",
            "--max-seconds",
            "0.2",
        ],
    );
    for title in [
        "Contender sweep",
        "Acquisitions per second (all contenders)",
        "Bypass p99",
        "Bypass max",
        "Jain's index over lock opportunity",
        "CPU time per acquisition",
        "lockfair's own cost",
        "At 8 contenders (the sweep's largest count)",
    ] {
        assert!(text.contains(title), "{title} in\n{text}");
    }
    // A table per measure: variant × count.
    let headers = text
        .lines()
        .filter(|l| l.split_whitespace().collect::<Vec<_>>() == ["variant", "placement", "2", "8"])
        .count();
    assert_eq!(headers, 5, "{text}");
    let s = &json["sweep"];
    assert_eq!(s["counts"], serde_json::json!([2, 8]));
    assert_eq!(s["mode"], "free", "a sweep runs in free mode by default");
    let ids: Vec<&str> = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "futex/free/2",
            "futex/free/8",
            "ticket/free/2",
            "ticket/free/8"
        ]
    );
    for r in s["rows"].as_array().unwrap() {
        assert!(
            r["acquisitions_per_sec"]["median"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert_eq!(r["bypass_repeats"], 1, "free mode has bypass: {r}");
    }
    assert_eq!(s["cells"].as_array().unwrap().len(), 4);
    let cost = s["cost"].as_array().unwrap();
    assert_eq!(cost[1]["id"], "8");
    assert_eq!(cost[0]["helper_processes"], 0);
    assert_eq!(cost[1]["helper_processes"], 6);
    // The usual tables are the largest count's.
    for run in json["runs"].as_array().unwrap() {
        assert_eq!(run["contender_count"], 8, "{run}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Contender sweep"), "{md}");
    // A measure no run had (Jain's index with an empty common window, on a machine too
    // loaded to race) has no plot; every other one has.
    let jain = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["jain_repeats"].as_u64() > Some(0));
    let plots: Vec<&str> = PLOTS
        .into_iter()
        .filter(|p| jain || *p != "contenders-jain.svg")
        .collect();
    for plot in &plots {
        assert!(out.join(plot).is_file(), "{plot}");
        assert!(html.contains(&format!("({plot})")), "{plot} in report.html");
    }
    let Some(browser) =
        chromium_or_skip("a_sweep_has_a_table_a_plot_and_json_per_measure_and_count")
    else {
        return;
    };
    let svgs: Vec<(String, String)> = svgs_of(&out)
        .into_iter()
        .filter(|(name, _)| name.starts_with("contenders-"))
        .collect();
    assert_eq!(svgs.len(), plots.len());
    assert_no_label_overlaps(
        &browser,
        &svgs,
        &[("contenders-acquisitions.svg", "ticket")],
    );
}

#[test]
fn one_count_is_no_sweep() {
    let (runtime, dir) = (TestDir::new("sweep1-rt"), TestDir::new("sweep1-out"));
    let out = dir.path().join("r");
    let (text, json) = sweep(
        runtime.path(),
        &out,
        &[
            "--variants",
            "futex",
            "--contenders",
            "3",
            "--rounds",
            "50",
            "--max-seconds",
            "0.2",
        ],
    );
    assert!(json.get("sweep").is_none(), "{json}");
    assert!(!text.contains("Contender sweep"), "{text}");
    assert!(!out.join(PLOTS[0]).exists());
    assert_eq!(
        json["runs"][0]["mode"], "turns",
        "one count keeps turns mode"
    );
}

/// A figure of a cost row: `who` (client, server, helpers) and `what` (fds, rss_kib, hwm_kib).
fn cost(row: &Value, who: &str, what: &str) -> u64 {
    row[who][what]
        .as_u64()
        .unwrap_or_else(|| panic!("{who}.{what} in {row}"))
}

#[test]
fn lockfairs_own_cost_grows_at_most_linearly_with_the_contenders() {
    let (runtime, dir) = (TestDir::new("sweepc-rt"), TestDir::new("sweepc-out"));
    let out = dir.path().join("r");
    let (text, json) = sweep(
        runtime.path(),
        &out,
        &[
            "--variants",
            "futex,ofd",
            "--contenders",
            "2,64",
            "--rounds",
            "100",
            "--max-seconds",
            "0.5",
        ],
    );
    assert!(text.contains("client fds"), "{text}");
    let rows = json["sweep"]["cost"].as_array().unwrap();
    let (two, many) = (&rows[0], &rows[1]);
    assert_eq!(
        (two["contenders"].as_u64(), many["contenders"].as_u64()),
        (Some(2), Some(64))
    );
    assert_eq!(
        many["helper_processes"], 62,
        "every helper was looked at: {many}"
    );
    for who in ["client", "server"] {
        for what in ["fds", "rss_kib", "hwm_kib"] {
            let (a, b) = (cost(two, who, what), cost(many, who, what));
            assert!(a > 0, "{who}.{what} at 2: {two}");
            // 32 times the contenders: at most 32 times the cost, plus a constant.
            assert!(b <= a * 32 + 64, "{who}.{what}: {a} at 2, {b} at 64");
        }
    }
    // By construction: the client holds about one descriptor per helper (its socket), the
    // server only its own contender's; a helper a handful.
    let extra = cost(many, "client", "fds") - cost(two, "client", "fds");
    assert!(
        extra <= 62 * 2,
        "the client's fds grew by {extra} for 62 helpers"
    );
    assert!(
        cost(many, "server", "fds") <= cost(two, "server", "fds") + 8,
        "the server plays one contender whatever N: {two} {many}"
    );
    assert!(
        cost(many, "helpers", "fds") <= 62 * 16,
        "at most 16 descriptors per helper: {many}"
    );
}

/// The process's start time (field 22 of `/proc/PID/stat`), to tell it from a later process
/// that got the same pid.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19).map(str::to_string)
}

/// The children of `parent` (by `/proc/*/status`'s PPid), each with its start time.
fn children(parent: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
        if ppid.map(str::trim) == Some(&parent.to_string())
            && let Some(t) = start_time(pid)
        {
            found.push((pid, t));
        }
    }
    found
}

#[test]
fn an_interrupted_sweep_leaves_no_helper_behind() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let (runtime, dir) = (TestDir::new("sweepi-rt"), TestDir::new("sweepi-out"));
        // Turns mode: two contenders finish their rounds at once, 64 take far longer than the
        // test waits, so the signal lands in the 64-contender cell.
        let mut child = Command::new(client_bin())
            .args(["compare", "--variants", "futex", "--placements", "free"])
            .args([
                "--mode",
                "turns",
                "--contenders",
                "2,64",
                "--rounds",
                "2000",
            ])
            .args(["--max-seconds", "600", "--repeats", "1", "--out"])
            .arg(dir.path().join("r"))
            .env("XDG_RUNTIME_DIR", runtime.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let give_up = Instant::now() + HANG;
        // The server and 62 helpers.
        let mut ours = children(pid);
        while ours.len() < 63 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(50));
            ours = children(pid);
        }
        let started = ours.len();
        let _ = kill(Pid::from_raw(pid), signal);
        let status = wait_exit(&mut child, HANG);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(
            started, 63,
            "{signal}: the server and 62 helpers were running"
        );
        assert_eq!(status.and_then(|s| s.code()), Some(130), "{signal}");
        // Gone, or at worst a zombie on its way to being reaped by init: bounded wait.
        let alive = |&(p, ref t): &(i32, String)| start_time(p).as_ref() == Some(t) && !zombie(p);
        let deadline = Instant::now() + Duration::from_secs(10);
        while ours.iter().any(alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<i32> = ours.iter().filter(|c| alive(c)).map(|c| c.0).collect();
        for &p in &left {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        assert!(left.is_empty(), "{signal}: left behind: {left:?}");
    }
}

/// A process that has exited and waits to be reaped.
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn a_per_contender_list_does_not_fit_a_sweep() {
    let (runtime, dir) = (TestDir::new("sweepl-rt"), TestDir::new("sweepl-out"));
    let out = dir.path().join("r");
    let done = compare(
        runtime.path(),
        &[
            "--variants",
            "futex",
            "--placements",
            "free",
            "--contenders",
            "2,4",
            "--hold",
            "1us,2us",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(done.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&done.stderr).trim(),
        "lockfair-client: --hold has 2 values for 4 contenders: give one value for all, or \
         exactly 4 (one per contender, the server first)"
    );
    assert!(!out.exists(), "nothing was measured or written");
}
