//! `--seed-compat`: the seed blog's protocol against lockfair, in both directions, with our own
//! Python stand-ins for the blog's two programs (`client/tests/blog/`, written from the blog's
//! description, not its code); and the compat path's strict checks.
//!
//! Whoops and overlap counts depend on scheduling: they are printed and parsed, never asserted.
//! What is asserted is what the protocol fixes: every side completes its iterations, whoops and
//! turns add up to them, lockfair's reader reads no wrong line, nothing hangs.

use std::io::{IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockfair::arena::Arena;
use lockfair::proto::Message;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, sendmsg, socket,
};

use crate::garbage::{exchange, raw_client};
use crate::util::{Server, TestDir, client, run_json, server_bin, wait_exit};

const HELLO: &[u8] = b"CACHEDFILE HELLO";
const LIMIT: Duration = Duration::from_secs(20);

/// True if python3 (with `os.memfd_create`, Python 3.8+) can run the blog stand-ins.
fn python3_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import os; os.memfd_create"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping {test}: python3 with os.memfd_create (Python 3.8+) is not available");
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
    let s = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    sendmsg(
        s.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        MsgFlags::empty(),
        Some(&UnixAddr::new(path).unwrap()),
    )
    .unwrap();
}

/// Waits (bounded) until the server holds exactly `baseline` descriptors again.
fn assert_fds_return_to(server: &Server, baseline: usize) {
    let give_up = Instant::now() + Duration::from_secs(3);
    while server.fd_count() != baseline && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        server.fd_count(),
        baseline,
        "every received descriptor was closed"
    );
}

fn error_text(m: Message) -> String {
    match m {
        Message::Error(why) => why,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// The five lines a compat session prints, checked for what the protocol fixes; returns the
/// blog line's whoops and the verdict line.
fn assert_compat_block(server: &Server, iterations: u64) -> (u64, String) {
    let header = server.wait_for_line("compat session", LIMIT);
    assert!(header.contains("64-byte sealed memfd"), "{header}");
    let next = || server.next_line(Duration::from_secs(5)).expect("a line");
    let blog = next();
    assert!(blog.starts_with("Ending connection, whoops = "), "{blog}");
    let whoops = number_after(&blog, "whoops = ");
    let counts = next();
    assert_eq!(number_after(&counts, "iterations:"), iterations, "{counts}");
    assert_eq!(number_after(&counts, "whoops:"), whoops, "{counts}");
    assert_eq!(
        number_after(&counts, "lines written:") + whoops,
        iterations,
        "every iteration is a line or a whoop: {counts}"
    );
    let overlaps = next();
    assert!(
        overlaps.starts_with("overlaps seen: ")
            && overlaps.ends_with("(offset moved under a held lock)"),
        "{overlaps}"
    );
    let verdict = next();
    assert!(verdict.starts_with("verdict: "), "{verdict}");
    (whoops, verdict)
}

#[test]
fn a_blog_style_client_completes_against_lockfair_server_seed_compat() {
    if !python3_available("a_blog_style_client_completes_against_lockfair_server_seed_compat") {
        return;
    }
    let server = Server::start_with(&["--seed-compat"]);
    let out = output_within(
        Command::new("python3")
            .arg(blog_script("blog_client.py"))
            .arg(&server.socket),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "blog_client.py failed: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Ending connection, whoops = ") && stdout.contains("wrong reads = "),
        "{stdout}"
    );
    assert_compat_block(&server, 100);
}

#[test]
fn lockfair_client_seed_compat_completes_against_a_blog_style_server() {
    if !python3_available("lockfair_client_seed_compat_completes_against_a_blog_style_server") {
        return;
    }
    let dir = TestDir::new("blog");
    let socket = dir.path().join("test_socket");
    let blog = Reaped(
        Command::new("python3")
            .arg(blog_script("blog_server.py"))
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start blog_server.py"),
    );
    let give_up = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < give_up,
            "blog_server.py did not bind {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = socket.to_str().unwrap();
    let out = client(
        &[
            "run",
            "--variant",
            "seed",
            "--seed-compat",
            "--socket",
            path,
        ],
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "lockfair-client failed: {}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("sent \"CACHEDFILE HELLO\" and a 64-byte sealed memfd to "));
    assert_eq!(number_after(lines[1], "iterations:"), 100, "{stdout}");
    assert_eq!(
        number_after(lines[1], "lines read:") + number_after(lines[1], "whoops:"),
        100,
        "{stdout}"
    );
    assert_eq!(number_after(lines[1], "wrong reads:"), 0, "{stdout}");
    assert!(lines[2].starts_with("overlaps seen: "), "{stdout}");
    assert!(lines[3].starts_with("verdict: "), "{stdout}");

    let blog_out = finish_within(blog, LIMIT, "blog_server.py");
    let blog_stdout = text(&blog_out.stdout);
    assert!(
        blog_out.status.success(),
        "blog_server.py failed: {}",
        text(&blog_out.stderr)
    );
    assert!(
        blog_stdout.contains("Ending connection, whoops = "),
        "{blog_stdout}"
    );
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
    assert_fds_return_to(&server, baseline);
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
    let server = Server::start_with(&["--seed-compat", "--seed-iterations", "100"]);
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
    assert_fds_return_to(&server, baseline);

    // A good one, sent as the blog's client sends it. This process neither locks nor moves the
    // offset, so the server writes line 0 and whoops for the other 99 iterations; and it keeps
    // its own descriptor open, so kcmp finds it.
    send_unbound(&server.socket, HELLO, &[good.as_raw_fd()]);
    let (whoops, verdict) = assert_compat_block(&server, 100);
    assert_eq!(whoops, 99);
    let me = std::process::id() as i32;
    let dup = good.try_clone().unwrap();
    if lockfair::sys::kcmp::same_file(me, good.as_raw_fd(), me, dup.as_raw_fd()).is_ok() {
        assert!(
            verdict.contains("is the client's own open file description (kcmp"),
            "{verdict}"
        );
    }
    assert_fds_return_to(&server, baseline);
    // A lockfair-made arena is a memfd with the blog's seals too: it is accepted as one.
    let arena = Arena::create(2).unwrap();
    send_unbound(&server.socket, HELLO, &[arena.file().as_raw_fd()]);
    assert!(
        server
            .wait_for_line("compat session", LIMIT)
            .contains("12288-byte")
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
