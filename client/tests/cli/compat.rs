//! `--seed-compat`: the seed blog's protocol against lockfair, in both directions, with our own
//! Python stand-ins for the blog's two programs (`client/tests/blog/`, lockfair's own code that
//! runs the blog's protocol to the letter); and the compat path's strict checks.
//!
//! What the protocol fixes is asserted: each side ends after exactly its turns (100 lines written,
//! 100 read), whoops and turns add up to the iterations, both sides print their lines, a wrong read
//! is always also an overlap, nothing hangs, and a side whose peer is gone stops and says why.
//! Whoops, overlap and wrong-read counts depend on scheduling: they are parsed, never pinned.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockfair::arena::Arena;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::UnixAddr;

use crate::util::{
    HANG, Server, TestDir, client, client_bin, error_text, exchange, fds_back_to, raw_client,
    run_json, send_datagram, server_bin, wait_exit,
};

const HELLO: &[u8] = b"CACHEDFILE HELLO";
const LIMIT: Duration = Duration::from_secs(20);
/// For a whole run of 100 turns: each may wait for a scheduler slice on a loaded machine. The
/// runs themselves get a limit of 60 s (`--max-seconds`, `--seed-max-seconds`).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// True if python3 (with `os.memfd_create`, Python 3.8+) can run the blog stand-ins.
fn python3_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import os; os.memfd_create"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::util::skip(
            crate::util::Needs::Python3,
            test,
            "python3 with os.memfd_create (Python 3.8+) is not available",
        );
    }
    ok
}

fn blog_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/blog")
        .join(name)
}

/// Kills the child on drop, so a failing assertion leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to completion, or kills it and fails the test after `timeout`.
fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    finish_within(Reaped(child), timeout, &format!("{cmd:?}"))
}

fn finish_within(mut child: Reaped, timeout: Duration, what: &str) -> Output {
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_exit(&mut child.0, timeout)
        .unwrap_or_else(|| panic!("{what} did not finish within {timeout:?}"));
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number after `key` in `line` (`"whoops: 3,"` → 3).
fn number_after(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
    line[at + key.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

/// A memfd as the blog's client makes it, with `size` bytes and `seals`.
fn memfd(size: i64, seals: SealFlag) -> OwnedFd {
    let fd = memfd_create(
        "compat-test",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .unwrap();
    nix::unistd::ftruncate(&fd, size).unwrap();
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).unwrap();
    fd
}

fn blog_seals() -> SealFlag {
    SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL
}

/// Sends `bytes` with `fds` from an unbound socket, as the blog's client does: no reply can come.
fn send_unbound(path: &Path, bytes: &[u8], fds: &[RawFd]) {
    let unbound = lockfair::channel::datagram_socket().unwrap();
    send_datagram(&unbound, bytes, fds, Some(path));
}

/// One compat session's block on the server's stdout.
#[derive(Debug)]
struct Block {
    /// `Ending connection, whoops = W`, or the session's stop line.
    ending: String,
    turns: u64,
    whoops: u64,
    verdict: String,
}

/// Reads the five lines of the next compat session's block and checks what the protocol fixes:
/// `target` turns were to be taken, the counts line agrees with the blog line, every iteration
/// was a turn or a whoop.
fn compat_block(server: &Server, target: u64) -> Block {
    let header = server.wait_for_line("compat session", LIMIT);
    assert!(
        header.contains("-byte sealed memfd; played the blog's server"),
        "{header}"
    );
    let next = || server.next_line(HANG).expect("a line");
    let ending = next();
    let counts = next();
    assert!(counts.starts_with("lines written: "), "{counts}");
    let turns = number_after(&counts, "lines written:");
    let whoops = number_after(&counts, "whoops:");
    assert_eq!(number_after(&counts, " of "), target, "{counts}");
    assert_eq!(
        number_after(&counts, "("),
        turns + whoops,
        "every iteration is a turn or a whoop: {counts}"
    );
    if ending.starts_with("Ending connection, whoops = ") {
        assert_eq!(number_after(&ending, "whoops = "), whoops, "{ending}");
        assert_eq!(turns, target, "{counts}");
    } else {
        assert!(
            ending.contains(&format!(
                "stopped after {turns} of {target} turns, {whoops} whoops: "
            )),
            "{ending}"
        );
    }
    let overlaps = next();
    assert!(
        overlaps.starts_with("overlaps seen: ")
            && overlaps.ends_with("(offset moved under a held lock)"),
        "{overlaps}"
    );
    let verdict = next();
    assert!(verdict.starts_with("verdict: "), "{verdict}");
    Block {
        ending,
        turns,
        whoops,
        verdict,
    }
}

/// What `lockfair-client run --variant seed --seed-compat` printed, checked line by line.
#[derive(Debug)]
struct ReaderRun {
    /// `total whoops W`, or the stop line.
    ending: String,
    turns: u64,
    whoops: u64,
    wrong_reads: u64,
}

fn reader_run(stdout: &str, target: u64) -> ReaderRun {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 5, "{stdout}");
    assert!(
        lines[0].starts_with("sent \"CACHEDFILE HELLO\" and a 64-byte sealed memfd to "),
        "{stdout}"
    );
    let counts = lines[2];
    assert!(counts.starts_with("lines read: "), "{stdout}");
    let run = ReaderRun {
        ending: lines[1].to_string(),
        turns: number_after(counts, "lines read:"),
        whoops: number_after(counts, "whoops:"),
        wrong_reads: number_after(counts, "wrong reads:"),
    };
    assert_eq!(number_after(counts, " of "), target, "{stdout}");
    assert_eq!(
        number_after(counts, "("),
        run.turns + run.whoops,
        "{stdout}"
    );
    // The wrong reads are named on a line of their own, only when there are some.
    let rest = &lines[3..];
    let named = usize::from(run.wrong_reads > 0);
    assert_eq!(rest.len(), 2 + named, "{stdout}");
    if named == 1 {
        assert!(rest[0].starts_with("wrong reads: turn "), "{stdout}");
    }
    assert!(rest[named].starts_with("overlaps seen: "), "{stdout}");
    assert!(rest[named + 1].starts_with("verdict: "), "{stdout}");
    let overlaps = number_after(rest[named], "overlaps seen:");
    // A wrong read is the writer writing inside the reader's section, after the reader put the
    // offset at 0: the reader sees the offset moved, so each one is an overlap too.
    assert!(run.wrong_reads <= overlaps, "{stdout}");
    run
}

/// A child's stdout, line by line, with a timeout.
struct LinesOf(std::sync::mpsc::Receiver<String>);

impl LinesOf {
    fn new(child: &mut Child) -> LinesOf {
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LinesOf(rx)
    }

    fn next(&self, timeout: Duration) -> String {
        self.0
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no line within {timeout:?}"))
    }
}

/// Starts `blog_server.py` on a private path (`turns` per connection) and waits until it is bound.
fn blog_server(dir: &TestDir, turns: u64) -> (Reaped, PathBuf) {
    let socket = dir.path().join("test_socket");
    let blog = Reaped(
        Command::new("python3")
            .arg(blog_script("blog_server.py"))
            .arg(&socket)
            .arg(turns.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start blog_server.py"),
    );
    let give_up = Instant::now() + LIMIT;
    while !socket.exists() {
        assert!(
            Instant::now() < give_up,
            "blog_server.py did not bind {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (blog, socket)
}

/// Waits until process `pid` holds a memfd the writer has written into: the run is under way.
fn wait_until_written(pid: u32) {
    let give_up = Instant::now() + LIMIT;
    loop {
        let written = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:"))
            })
            .any(|e| {
                // Our own open file description of it: reading it moves nobody's offset.
                let mut first = [0u8; 1];
                std::fs::File::open(e.path())
                    .and_then(|mut f| f.read(&mut first))
                    .is_ok_and(|n| n == 1 && first[0].is_ascii_digit())
            });
        if written {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "pid {pid}: no line written within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lockfair_server_serves_blog_style_clients_one_after_another() {
    if !python3_available("lockfair_server_serves_blog_style_clients_one_after_another") {
        return;
    }
    let server = Server::start_with(&["--seed-compat", "--seed-max-seconds", "60"]);
    for run in 0..3 {
        let out = output_within(
            Command::new("python3")
                .arg(blog_script("blog_client.py"))
                .arg(&server.socket),
            RUN_LIMIT,
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "run {run}: blog_client.py failed: {stderr}"
        );
        // Its one line, and on stderr only the texts it read that were not its n.
        assert!(
            stdout.starts_with("total whoops ") && stdout.lines().count() == 1,
            "run {run}: {stdout}"
        );
        assert!(
            stderr.lines().all(|l| l.starts_with("turn ")),
            "run {run}: {stderr}"
        );
        let block = compat_block(&server, 100);
        assert!(
            block.ending.starts_with("Ending connection, whoops = "),
            "run {run}: {block:?}"
        );
        assert_eq!(block.turns, 100, "run {run}: exactly 100 lines written");
    }
}

#[test]
fn one_blog_style_server_serves_lockfair_client_again_and_again() {
    if !python3_available("one_blog_style_server_serves_lockfair_client_again_and_again") {
        return;
    }
    let dir = TestDir::new("blog");
    let (mut blog, socket) = blog_server(&dir, 100);
    let blog_lines = LinesOf::new(&mut blog.0);
    let path = socket.to_str().unwrap();
    for run in 0..3 {
        let out = client(
            &[
                "run",
                "--variant",
                "seed",
                "--seed-compat",
                "--socket",
                path,
                "--max-seconds",
                "60",
            ],
            RUN_LIMIT,
        );
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "run {run}: lockfair-client failed: {}\n{stdout}",
            text(&out.stderr)
        );
        let r = reader_run(&stdout, 100);
        assert_eq!(r.turns, 100, "run {run}: exactly 100 lines read: {stdout}");
        assert_eq!(r.ending, format!("total whoops {}", r.whoops), "run {run}");
        // The blog-style server ends its own 100 turns and goes back to waiting.
        let ending = blog_lines.next(RUN_LIMIT);
        assert!(
            ending.starts_with("Ending connection, whoops = "),
            "run {run}: {ending}"
        );
    }
}

#[test]
fn lockfair_server_stops_a_session_whose_blog_style_client_was_killed_and_says_why() {
    if !python3_available(
        "lockfair_server_stops_a_session_whose_blog_style_client_was_killed_and_says_why",
    ) {
        return;
    }
    // Turns enough to still be running when the kill lands; a limit far beyond the wait below,
    // so only the client's exit can end the session in time.
    let server = Server::start_with(&[
        "--seed-compat",
        "--seed-iterations",
        "1000000",
        "--seed-max-seconds",
        "300",
    ]);
    let mut blog = Reaped(
        Command::new("python3")
            .arg(blog_script("blog_client.py"))
            .arg(&server.socket)
            .arg("1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start blog_client.py"),
    );
    let pid = blog.0.id();
    wait_until_written(pid);
    blog.0.kill().unwrap();
    blog.0.wait().unwrap();
    let block = compat_block(&server, 1_000_000);
    assert!(
        block
            .ending
            .ends_with(&format!("the client (pid {pid}, python3) exited mid-run")),
        "{block:?}"
    );
    assert!(block.turns >= 1 && block.turns < 1_000_000, "{block:?}");
}

#[test]
fn lockfair_client_stops_when_its_blog_style_server_is_killed_and_says_why() {
    if !python3_available("lockfair_client_stops_when_its_blog_style_server_is_killed_and_says_why")
    {
        return;
    }
    let dir = TestDir::new("blog");
    let (mut blog, socket) = blog_server(&dir, 1_000_000);
    let pid = blog.0.id();
    // A limit far beyond the wait below: only the server's exit can end the run in time.
    let reader = Reaped(
        Command::new(client_bin())
            .args([
                "run",
                "--variant",
                "seed",
                "--seed-compat",
                "--seed-iterations",
                "1000000",
            ])
            .args(["--max-seconds", "300", "--socket", socket.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lockfair-client"),
    );
    wait_until_written(pid);
    blog.0.kill().unwrap();
    blog.0.wait().unwrap();
    let out = finish_within(reader, LIMIT, "lockfair-client");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let why = format!("the server (pid {pid}, python3) exited mid-run");
    let r = reader_run(&stdout, 1_000_000);
    assert!(r.turns < 1_000_000, "{stdout}");
    let stop = format!(
        "stopped after {} of 1000000 turns, {} whoops: {why}",
        r.turns, r.whoops
    );
    assert_eq!(r.ending, stop, "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        format!("lockfair-client: {stop}"),
        "one clear line"
    );
}

#[test]
fn lockfair_client_gives_up_on_a_server_that_never_plays_at_its_time_limit() {
    // A bound socket nobody reads: the hello is queued, and no line is ever written.
    let dir = TestDir::new("mute");
    let path = dir.path().join("test_socket");
    let mute = lockfair::channel::datagram_socket().unwrap();
    nix::sys::socket::bind(mute.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    for _ in 0..2 {
        let out = client(
            &[
                "run",
                "--variant",
                "seed",
                "--seed-compat",
                "--max-seconds",
                "0.5",
                "--socket",
                path.to_str().unwrap(),
            ],
            LIMIT,
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let r = reader_run(&stdout, 100);
        assert_eq!(r.turns, 0, "{stdout}");
        let stop = format!(
            "stopped after 0 of 100 turns, {} whoops: its 0.5 s time limit (--max-seconds) passed",
            r.whoops
        );
        assert_eq!(r.ending, stop);
        assert_eq!(stderr.trim_end(), format!("lockfair-client: {stop}"));
    }
}

#[test]
fn without_seed_compat_a_bare_blog_hello_is_not_served() {
    let server = Server::start();
    // Warm up, so lazily opened descriptors are in the baseline.
    run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    server.wait_for_outcome("session", LIMIT);
    let baseline = server.fd_count();
    let good = memfd(64, blog_seals());

    // As the blog's client sends it: from an unbound socket nobody can answer, so it is dropped.
    send_unbound(&server.socket, HELLO, &[good.as_raw_fd()]);
    // From a bound socket: lockfair's own protocol refuses it, as any non-lockfair datagram.
    let why = error_text(exchange(&raw_client(&server), HELLO, &[good.as_raw_fd()]));
    assert!(why.contains("bad magic"), "{why}");
    fds_back_to(&server, baseline);
    assert_eq!(
        server.next_line(Duration::from_millis(300)),
        None,
        "no session was started"
    );
    let report = run_json(&server, &["--variant", "seed", "--rounds", "100"]);
    assert_eq!(report["server"]["rounds"], 100, "and it still serves");
}

#[test]
fn seed_compat_refuses_wrong_descriptors_closes_them_and_plays_a_good_one() {
    // A short session limit: the good descriptor below meets no reader.
    let server = Server::start_with(&["--seed-compat", "--seed-max-seconds", "1"]);
    // lockfair's own protocol is untouched by the flag.
    let report = run_json(&server, &["--variant", "seed", "--rounds", "100"]);
    assert_eq!(report["client"]["rounds"], 100);
    server.wait_for_outcome("session", LIMIT);
    let baseline = server.fd_count();

    let exe = std::fs::File::open("/proc/self/exe").unwrap();
    let unsealed = memfd(64, SealFlag::empty());
    let small = memfd(32, blog_seals());
    let write_sealed = memfd(64, blog_seals() | SealFlag::F_SEAL_WRITE);
    let (good, other) = (memfd(64, blog_seals()), memfd(64, blog_seals()));
    let cases: [(&[RawFd], &str); 6] = [
        (&[], "exactly one descriptor (the sealed memfd), got 0"),
        (&[exe.as_raw_fd()], "not a memfd"),
        (&[unsealed.as_raw_fd()], "lacks seals"),
        (&[small.as_raw_fd()], "is 32 bytes"),
        (&[write_sealed.as_raw_fd()], "write-sealed"),
        (&[good.as_raw_fd(), other.as_raw_fd()], "got 2"),
    ];
    let sock = raw_client(&server);
    for (fds, want) in cases {
        // A sender with an address hears why; the blog's unbound client could not.
        let why = error_text(exchange(&sock, HELLO, fds));
        assert!(why.contains(want), "{want:?} in {why:?}");
        send_unbound(&server.socket, HELLO, fds);
    }
    fds_back_to(&server, baseline);

    // A good one, sent as the blog's client sends it. This process neither locks nor moves the
    // offset, so the server writes line 0 and then whoops until its limit, and says so; and this
    // process keeps its own descriptor open, so kcmp finds it.
    send_unbound(&server.socket, HELLO, &[good.as_raw_fd()]);
    let block = compat_block(&server, 100);
    assert_eq!(block.turns, 1, "{block:?}");
    assert!(
        block.ending.ends_with(&format!(
            "stopped after 1 of 100 turns, {} whoops: its 1 s time limit (--seed-max-seconds) passed",
            block.whoops
        )),
        "{block:?}"
    );
    let verdict = block.verdict;
    let me = std::process::id() as i32;
    let dup = good.try_clone().unwrap();
    if lockfair::sys::kcmp::same_file(me, good.as_raw_fd(), me, dup.as_raw_fd()).is_ok() {
        assert!(
            verdict.contains("is the client's own open file description (kcmp"),
            "{verdict}"
        );
    }
    fds_back_to(&server, baseline);
    // A lockfair-made arena is a memfd with the blog's seals too: it is accepted as one.
    let arena = Arena::create(2).unwrap();
    send_unbound(&server.socket, HELLO, &[arena.file().as_raw_fd()]);
    assert!(
        server
            .wait_for_line("compat session", LIMIT)
            .contains(&format!("{}-byte", lockfair::arena::ARENA_SIZE))
    );
}

#[test]
fn seed_compat_flags_are_checked_as_usage() {
    let usage = |args: &[&str], want: &str| {
        let out = client(args, LIMIT);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    usage(
        &["run", "--variant", "ofd", "--seed-compat"],
        "use it with --variant seed",
    );
    usage(
        &["run", "--variant", "seed", "--seed-iterations", "5"],
        "--seed-compat",
    );
    usage(
        &["run", "--variant", "seed", "--seed-compat", "--rounds", "5"],
        "cannot be used with",
    );
    let out = output_within(
        Command::new(server_bin()).args(["--seed-iterations", "5"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--seed-compat"));
    let out = output_within(
        Command::new(server_bin()).args(["--seed-max-seconds", "5"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--seed-compat"));

    let dir = TestDir::new("nobody");
    let missing = dir.path().join("test_socket");
    let out = client(
        &[
            "run",
            "--variant",
            "seed",
            "--seed-compat",
            "--socket",
            missing.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nobody is listening at"),
        "{}",
        text(&out.stderr)
    );
}
