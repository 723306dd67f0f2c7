//! `lockfair-client crash --stop`: a holder is stopped (SIGSTOP) inside its critical section;
//! the survivor is told nothing, and the kernel's records name the holder (or nobody), each the
//! way it does on this machine. Nothing is left behind: no stopped process, no child, no lock.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::processes_with_env;
use crate::util::{client_bin, run_within, wait_exit};

/// The survivor's deadline: no cell here can get the lock from a stopped holder, so a short
/// one decides as well as a long one.
const LIMIT: &str = "0.3";

/// Runs `crash --stop --json --limit LIMIT --variants VARIANTS`, checks that nothing of it
/// outlived it, and returns the report.
fn stop_report(variants: &str) -> Value {
    let tag = format!(
        "stop-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let args = [
        "crash",
        "--stop",
        "--json",
        "--limit",
        LIMIT,
        "--variants",
        variants,
    ];
    let out = run_within(
        Command::new(client_bin())
            .args(args)
            .env("LOCKFAIR_CRASH_TEST", &tag),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "lockfair-client {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = processes_with_env(&format!("LOCKFAIR_CRASH_TEST={tag}"));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_no_lock_of(&report);
    report
}

/// No `/proc/locks` line names a holder of the run: every lock went with its process.
fn assert_no_lock_of(report: &Value) {
    let pids: Vec<String> = cells(report)
        .iter()
        .map(|c| c["holder_pid"].to_string())
        .collect();
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
        if let Some(pid) = fields.get(4) {
            assert!(!pids.iter().any(|p| p == pid), "a lock left: {line}");
        }
    }
}

fn cells(report: &Value) -> &Vec<Value> {
    report["cells"].as_array().expect("a cells array")
}

fn cell<'a>(report: &'a Value, variant: &str) -> &'a Value {
    cells(report)
        .iter()
        .find(|c| c["variant"] == variant)
        .unwrap_or_else(|| panic!("no cell {variant} in {report}"))
}

/// The cell's holder is named as the stopped holder, from `source`, and the survivor's
/// deadline error says so in one line about `what`.
fn assert_named(c: &Value, source: &str, what: &str) {
    let pid = c["holder_pid"].as_i64().unwrap();
    let h = &c["holder"];
    assert_eq!(h["pid"], pid, "the kernel names the stopped holder: {c}");
    assert_eq!(h["comm"], "lockfair-client", "{c}");
    assert_eq!(h["state"], "T", "stopped when named: {c}");
    assert_eq!(h["source"], source, "{c}");
    assert_eq!(
        c["deadline_error"],
        format!("waited {LIMIT} s for {what}; held by pid {pid} (lockfair-client), stopped"),
        "{c}"
    );
}

/// Nobody learns anything from a stopped holder, and nobody gets its lock.
fn assert_untold_and_waiting(c: &Value) {
    assert_eq!(c["noticed"], false, "{c}");
    assert!(c["acquired_after_ns"].is_null(), "{c}");
    assert!(c["waited_ns"].as_u64().unwrap() > 0, "{c}");
}

#[test]
fn file_locks_name_their_stopped_holder_each_source_its_own_way() {
    let r = stop_report("ofd,posix,lockf,flock");
    assert_eq!(r["summary"]["named"], 4, "{r}");
    for c in cells(&r) {
        assert_untold_and_waiting(c);
    }
    let pid = |c: &Value| c["holder_pid"].clone();

    // OFD: /proc/locks and both F_GETLKs say -1; only fdinfo ties it to a process.
    let ofd = cell(&r, "ofd");
    let k = &ofd["kernel"];
    assert_eq!(k["proc_locks"]["kind"], "OFDLCK", "{ofd}");
    assert_eq!(k["proc_locks"]["pid"], -1, "{ofd}");
    assert_eq!(k["ofd_getlk_pid"], -1, "{ofd}");
    assert_eq!(k["getlk_pid"], -1, "{ofd}");
    assert_eq!(k["fdinfo_pids"], serde_json::json!([pid(ofd)]), "{ofd}");
    assert_named(ofd, "/proc/PID/fdinfo", "the OFD lock on the arena");

    // POSIX (fcntl and lockf): every source names the owning process.
    for v in ["posix", "lockf"] {
        let c = cell(&r, v);
        let k = &c["kernel"];
        assert_eq!(k["proc_locks"]["kind"], "POSIX", "{c}");
        assert_eq!(k["proc_locks"]["pid"], pid(c), "{c}");
        assert_eq!(k["getlk_pid"], pid(c), "{c}");
        assert_eq!(k["ofd_getlk_pid"], pid(c), "{c}");
        assert_named(c, "F_GETLK", "the POSIX lock on the arena");
    }

    // flock: invisible to both F_GETLKs; /proc/locks names the process.
    let flock = cell(&r, "flock");
    let k = &flock["kernel"];
    assert_eq!(k["proc_locks"]["kind"], "FLOCK", "{flock}");
    assert_eq!(k["proc_locks"]["pid"], pid(flock), "{flock}");
    assert!(k["getlk_pid"].is_null(), "{flock}");
    assert!(k["ofd_getlk_pid"].is_null(), "{flock}");
    assert_named(flock, "/proc/locks", "the flock lock on the arena");
}

#[test]
fn lock_words_name_their_owner_and_handoffs_name_nobody() {
    let r = stop_report("pi-futex,robust-mutex,eventfd,futex,pipe");
    assert_eq!(r["summary"]["named"], 2, "{r}");
    assert_eq!(
        r["summary"]["noticed"], 0,
        "a stopped writer is no EOF: {r}"
    );
    for c in cells(&r) {
        assert_untold_and_waiting(c);
    }
    for v in ["pi-futex", "robust-mutex"] {
        let c = cell(&r, v);
        // The holder is single-threaded: its one thread's id is its pid.
        assert_eq!(c["kernel"]["futex_owner_tid"], c["holder_pid"], "{c}");
        assert_eq!(c["holder"]["tid"], c["holder_pid"], "{c}");
        assert!(c["kernel"]["proc_locks"].is_null(), "{c}");
        assert_named(
            c,
            "futex owner TID",
            &format!("the {v} lock word in the arena"),
        );
    }
    for v in ["eventfd", "futex", "pipe"] {
        let c = cell(&r, v);
        assert!(c["holder"].is_null(), "{c}");
        let k = &c["kernel"];
        for source in [
            "proc_locks",
            "getlk_pid",
            "ofd_getlk_pid",
            "futex_owner_tid",
        ] {
            assert!(k[source].is_null(), "{source}: {c}");
        }
        assert_eq!(
            c["deadline_error"],
            format!(
                "waited {LIMIT} s for the {v} turn; no owner recorded: the kernel keeps none for it"
            ),
            "{c}"
        );
    }
}

/// The `crash --stop` driver, SIGKILLed and reaped on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = wait_exit(&mut self.0, Duration::from_secs(10));
    }
}

/// The processes carrying `entry` that are stopped (`T`).
fn stopped_with_env(entry: &str) -> Vec<String> {
    processes_with_env(entry)
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
        .collect()
}

#[test]
fn a_driver_killed_while_its_holder_is_stopped_leaves_nothing() {
    let tag = format!("stop-kill-{}", std::process::id());
    let entry = format!("LOCKFAIR_CRASH_TEST={tag}");
    let child = Command::new(client_bin())
        .args(["crash", "--stop", "--limit", "60", "--variants", "posix"])
        .env("LOCKFAIR_CRASH_TEST", &tag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut driver = Driver(child);
    let give_up = Instant::now() + Duration::from_secs(60);
    while stopped_with_env(&entry).is_empty() {
        assert!(
            Instant::now() < give_up,
            "no holder was stopped within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // No SIGCONT from the driver now: the holder's parent-death signal (SIGKILL) must end it.
    driver.0.kill().unwrap();
    wait_exit(&mut driver.0, Duration::from_secs(10)).expect("the driver exits");
    let give_up = Instant::now() + Duration::from_secs(30);
    while !processes_with_env(&entry).is_empty() {
        let left = processes_with_env(&entry);
        assert!(Instant::now() < give_up, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn out_writes_the_json_and_its_markdown_table_from_one_run() {
    let dir = crate::util::TestDir::new("stop-out");
    let out = run_within(
        Command::new(client_bin()).args([
            "crash",
            "--stop",
            "--limit",
            "0.1",
            "--variants",
            "eventfd,flock",
            "--out",
            dir.path().to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("eventfd: waited 0.1 s for the eventfd turn; no owner recorded"),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("stop.json")).unwrap())
            .unwrap();
    assert_eq!(json["limit_s"], 0.1);
    assert_eq!(json["summary"]["cells"], 2);
    let md = std::fs::read_to_string(dir.path().join("stop.md")).unwrap();
    // The header, the alignment row, then a row per cell, as the JSON says, without raw pids.
    let row = |variant: &str| {
        let start = format!("| {variant} ");
        md.lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("{md}"))
    };
    assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 4, "{md}");
    assert!(row("eventfd").contains("no owner recorded"), "{md}");
    assert!(row("flock").contains("FLOCK, the holder's pid"), "{md}");
    for c in json["cells"].as_array().unwrap() {
        assert!(
            !md.contains(&c["holder_pid"].to_string()),
            "no raw pid: {md}"
        );
    }
}

/// True if `/proc/locks` shows a POSIX lock granted to `pid`.
fn holds_a_posix_lock(pid: i32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"POSIX") && fields.get(4) == Some(&pid.to_string().as_str())
    })
}

/// Stops `pid` (SIGSTOP) at a moment it holds a POSIX lock: stops it, looks, continues it if
/// it holds none, and tries again (bounded).
fn stop_while_holding(pid: i32) {
    use nix::sys::signal::{Signal, kill};
    let pid_t = nix::unistd::Pid::from_raw(pid);
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        kill(pid_t, Signal::SIGSTOP).unwrap();
        while !stopped_state(pid) {
            assert!(Instant::now() < give_up, "pid {pid} does not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
        if holds_a_posix_lock(pid) {
            return;
        }
        kill(pid_t, Signal::SIGCONT).unwrap();
        assert!(
            Instant::now() < give_up,
            "never caught pid {pid} holding the lock"
        );
        std::thread::sleep(Duration::from_millis(3));
    }
}

fn stopped_state(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
}

#[test]
fn a_run_whose_peer_stops_holding_the_lock_names_it_when_the_watchdog_gives_up() {
    let server = crate::util::Server::start();
    let socket = server.socket.to_str().unwrap().to_string();
    let child = Command::new(client_bin())
        .args(["run", "--socket", &socket, "--variant", "posix"])
        .args(["--rounds", "1000000000", "--max-seconds", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = Driver(child);
    server.wait_for_line("started", crate::util::HANG);
    stop_while_holding(server.pid());
    // The client's watchdog gives up at --max-seconds plus its grace: bounded here.
    let status = wait_exit(&mut client.0, Duration::from_secs(120));
    let pid = nix::unistd::Pid::from_raw(server.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut client.0.stderr.take().unwrap(), &mut err).unwrap();
    let want = format!(
        "the POSIX lock on the arena is held by pid {} (lockfair-server), stopped",
        server.pid()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("stopped making progress"), "{err}");
}
