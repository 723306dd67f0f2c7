//! Starting the real binaries, with a deadline on everything.

use std::io::{BufRead, BufReader, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use lockfair::proto::{self, Message};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, bind, connect, recv, sendmsg};
use nix::unistd::Pid;

/// How long a test waits for something that must happen before it calls it a hang. Generous on
/// purpose: a loaded 2-CPU machine can take seconds for what takes milliseconds alone, and a test
/// asserts what happens, never how fast.
pub const HANG: Duration = Duration::from_secs(60);

/// What a test may need from the machine and skip without, except where CI requires it.
#[derive(Clone, Copy, Debug)]
pub enum Needs {
    /// python3 with `os.memfd_create` (Python 3.8+), for the blog's programs.
    Python3,
    /// Kernel tracing: tracefs mountable and writable (root).
    Tracefs,
    /// Headless Chromium, for report.html.
    Chromium,
}

impl Needs {
    /// The variable that turns a skip into a failure (`.ci/run` sets them all).
    pub fn require_var(self) -> &'static str {
        match self {
            Needs::Python3 => "LOCKFAIR_REQUIRE_PYTHON3",
            Needs::Tracefs => "LOCKFAIR_REQUIRE_TRACEFS",
            Needs::Chromium => "LOCKFAIR_REQUIRE_CHROMIUM",
        }
    }
}

/// Skips (part of) `test` because the machine lacks what it `needs`: said on stderr, past the
/// harness's capture, so a skip is never silent; a failure instead where the requirement's
/// variable is set, so CI never passes by skipping.
pub fn skip(needs: Needs, test: &str, why: &str) {
    let var = needs.require_var();
    assert!(
        std::env::var_os(var).is_none(),
        "{var} is set, but {test} cannot run here: {why}"
    );
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr().lock(),
        format_args!("SKIPPED {test}: {why} (with {var}=1 this fails instead)\n"),
    );
}

/// The client binary Cargo built for these tests.
pub fn client_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockfair-client"))
}

/// The server binary Cargo built for these tests, from this very checkout: this package builds
/// both binaries (client/Cargo.toml), so a stale server is impossible by construction.
pub fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockfair-server"))
}

/// A private (0700) directory, removed with its contents on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        // Unique within this process by the counter, across live processes by the pid, and
        // beside a dead process's leftovers (same pid) by the clock.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lockfair-test-{tag}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            lockfair::sys::clock::monotonic_ns()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        TestDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `lockfair-server` on a private socket; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    lines: Receiver<String>,
    _dir: TestDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let dir = TestDir::new("srv");
        let socket = dir.path().join("server.sock");
        let mut child = Command::new(server_bin())
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lockfair-server");
        let lines = forward_lines(child.stdout.take().unwrap());
        let server = Server {
            child,
            socket,
            lines,
            _dir: dir,
        };
        let first = server.next_line(HANG);
        assert_eq!(
            first.as_deref(),
            Some(format!("listening on {}", server.socket.display()).as_str())
        );
        server
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line the server prints, if one comes within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for a line containing `needle`, returning it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let give_up = Instant::now() + timeout;
        while let Some(left) = give_up.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(line) if line.contains(needle) => return line,
                Some(_) => continue,
                None => break,
            }
        }
        panic!("the server did not print a line with {needle:?} within {timeout:?}");
    }

    /// Waits for a session's last line (its result or failure, not its "started" line)
    /// containing `needle`.
    pub fn wait_for_outcome(&self, needle: &str, timeout: Duration) -> String {
        let give_up = Instant::now() + timeout;
        while let Some(left) = give_up.checked_duration_since(Instant::now()) {
            match self.next_line(left) {
                Some(line) if line.contains(needle) && !line.ends_with(": started") => {
                    return line;
                }
                Some(_) => continue,
                None => break,
            }
        }
        panic!("the server did not print an outcome with {needle:?} within {timeout:?}");
    }

    /// Open descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub fn stop_with(&mut self, signal: Signal, timeout: Duration) -> bool {
        let _ = kill(Pid::from_raw(self.pid()), signal);
        wait_exit(&mut self.child, timeout).is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stop_with(Signal::SIGTERM, Duration::from_secs(5)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of a child's output, read on a thread so that every wait for one can time out.
pub fn forward_lines(out: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    lockfair::command::wait_within(child, timeout)
        .ok()
        .flatten()
}

/// Waits (bounded) until the server's descriptor count is back at `baseline`: refused
/// descriptors are closed on the server's closer thread, after the reply goes out.
pub fn fds_back_to(server: &Server, baseline: usize) {
    let give_up = Instant::now() + HANG;
    while server.fd_count() != baseline {
        assert!(
            Instant::now() < give_up,
            "the server holds {} descriptors, {baseline} before",
            server.fd_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `lockfair-client compare` with `args`, its private servers' sockets under `runtime`
/// (`XDG_RUNTIME_DIR`), bounded in time.
pub fn compare(runtime: &Path, args: &[&str]) -> Output {
    run_within(
        Command::new(client_bin())
            .arg("compare")
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime),
        Duration::from_secs(120),
    )
}

/// A datagram socket bound to an address the kernel picks and connected to `server`, as a
/// client's is, with no lockfair client behind it.
pub fn raw_client(server: &Server) -> OwnedFd {
    let s = lockfair::channel::datagram_socket().unwrap();
    bind(s.as_raw_fd(), &UnixAddr::new_unnamed()).unwrap();
    connect(s.as_raw_fd(), &UnixAddr::new(&server.socket).unwrap()).unwrap();
    s
}

/// Sends one datagram of `bytes` with `fds` as SCM_RIGHTS: to the socket at `to`, or with
/// `None` to the peer `sock` is connected to.
pub fn send_datagram(sock: &OwnedFd, bytes: &[u8], fds: &[RawFd], to: Option<&Path>) {
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    let to = to.map(|path| UnixAddr::new(path).unwrap());
    sendmsg(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        MsgFlags::empty(),
        to.as_ref(),
    )
    .unwrap();
}

/// Sends `bytes` with `fds` and returns the server's reply, decoded.
pub fn exchange(sock: &OwnedFd, bytes: &[u8], fds: &[RawFd]) -> Message {
    send_datagram(sock, bytes, fds, None);
    assert!(
        lockfair::channel::wait_readable(sock, HANG).unwrap(),
        "no reply within {HANG:?}"
    );
    let mut buf = vec![0u8; proto::MAX_DATAGRAM];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    proto::decode(&buf[..n]).expect("the reply is a lockfair message")
}

/// The reason an `error` reply gives; any other reply fails the test.
pub fn error_text(m: Message) -> String {
    match m {
        Message::Error(why) => why,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Runs `command`, collecting its output; kills it and fails the test if it outlives `timeout`.
pub fn run_within(command: &mut Command, timeout: Duration) -> Output {
    let shown = format!("{command:?}");
    lockfair::command::output_within(command, timeout)
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"))
        .unwrap_or_else(|| panic!("{shown} did not finish within {timeout:?}"))
}

/// Runs `lockfair-client` with `args`; kills it and fails the test if it outlives `timeout`.
pub fn client(args: &[&str], timeout: Duration) -> Output {
    run_within(Command::new(client_bin()).args(args), timeout)
}

/// Runs a client session and parses its `--json` output; fails with its stderr otherwise. Runs
/// get 60 s unless the test sets `--max-seconds`: tests assert counts, and a loaded machine can
/// make a lock handoff wait a scheduler slice per turn.
pub fn run_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let socket = server.socket.to_str().unwrap().to_string();
    let mut all: Vec<&str> = vec!["run", "--socket", &socket, "--json"];
    all.extend_from_slice(args);
    if !args.contains(&"--max-seconds") {
        all.extend_from_slice(&["--max-seconds", "60"]);
    }
    let out = client(&all, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "lockfair-client {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("run --json prints one JSON object")
}

/// What every `--mode free` run with `n` contenders taking the lock `k` times each must show:
/// N × K acquisitions in all, no overlap, one wait per acquisition.
pub fn assert_free_run_adds_up(r: &serde_json::Value, n: u64, k: u64, what: &str) {
    let contenders = r["contenders"].as_array().unwrap();
    assert_eq!(contenders.len() as u64, n, "{what}");
    let total: u64 = contenders
        .iter()
        .map(|c| c["acquisitions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, n * k, "{what}: N × K acquisitions");
    for c in contenders {
        assert_eq!(c["overlaps"], 0, "{what}: the lock excludes: {c}");
        assert_eq!(
            c["wait_ns"]["count"], k,
            "{what}: one wait per acquisition: {c}"
        );
    }
}

/// Open descriptors of process `pid`.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The placements this machine can honour for two contenders.
pub fn placements() -> Vec<&'static str> {
    let mut p = vec!["same-cpu", "free"];
    if lockfair::placement::allowed_cpus().len() >= 2 {
        p.push("split");
    }
    p
}

/// Asserts the counts of one side agree with each other, as the issue demands.
pub fn assert_side_consistent(side: &serde_json::Value, what: &str) {
    let rounds = side["rounds"].as_u64().unwrap();
    assert_eq!(
        side["handoff_ns"]["count"].as_u64().unwrap(),
        rounds,
        "{what}: one handoff value per turn"
    );
    assert_eq!(
        side["whoops_per_round"]["count"].as_u64().unwrap(),
        rounds,
        "{what}: one whoops-per-round value per turn"
    );
    assert_eq!(
        side["round_trip_ns"]["count"].as_u64().unwrap(),
        rounds.saturating_sub(1),
        "{what}: one round trip per turn but the first"
    );
    let whoops = side["whoops"].as_u64().unwrap() as f64;
    let in_turns = side["whoops_per_round"]["mean"].as_f64().unwrap() * rounds as f64;
    // The histogram keeps 3 significant digits (and the mean is printed rounded), and whoops
    // while waiting for a turn that never came (the run stopped) are in the total but in no turn.
    let slack = whoops * 0.001 + rounds as f64 * 0.001 + 1.0;
    assert!(
        in_turns <= whoops + slack,
        "{what}: whoops in turns ({in_turns}) exceed the total ({whoops})"
    );
    if side["end"] == "completed" {
        assert!(
            in_turns >= whoops - slack,
            "{what}: a completed side's whoops ({whoops}) all belong to its turns ({in_turns})"
        );
    }
}

/// An ofd hello with its arena, as the sender `uid` (root may name any uid in SCM_CREDENTIALS).
pub fn hello_as(server: &Server, uid: u32) -> Message {
    hello_as_with(
        server,
        uid,
        crate::garbage::hello(lockfair::variant::Variant::Ofd),
    )
}

/// `hello` with a two-contender arena, as the sender `uid`; the server's answer.
pub fn hello_as_with(server: &Server, uid: u32, hello: proto::Hello) -> Message {
    let sock = raw_client(server);
    let arena = lockfair::arena::Arena::create(2).unwrap();
    let creds = nix::sys::socket::UnixCredentials::from(nix::libc::ucred {
        pid: std::process::id() as i32,
        uid,
        gid: uid,
    });
    let bytes = proto::encode(&Message::Hello(hello));
    let fd = [arena.file().as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(&bytes)],
        &[
            nix::sys::socket::ControlMessage::ScmCredentials(&creds),
            nix::sys::socket::ControlMessage::ScmRights(&fd),
        ],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert!(lockfair::channel::wait_readable(&sock, HANG).unwrap());
    let mut buf = vec![0u8; proto::MAX_DATAGRAM];
    let n = nix::sys::socket::recv(
        sock.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    proto::decode(&buf[..n]).unwrap()
}
