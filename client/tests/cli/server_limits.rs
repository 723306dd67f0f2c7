//! What one sender may cost the server: a uid's share of the sessions (`--max-sessions-per-uid`),
//! and the descriptors of refused datagrams, closed on one thread of their own.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockfair::arena::Arena;
use lockfair::proto::{self, Message};
use lockfair::variant::Variant;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, setsockopt, sockopt};
use nix::unistd::Pid;

use crate::garbage::hello;
use crate::util::{HANG, Server, client_bin, error_text, exchange, raw_client, run_json};

/// A child process, killed and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An ofd hello with its arena, from this process; its session (if admitted) waits at the start
/// line, bounded by the server's `--peer-timeout`.
fn hello_with_arena(server: &Server) -> Message {
    let arena = Arena::create(2).unwrap();
    let bytes = proto::encode(&Message::Hello(hello(Variant::Ofd)));
    exchange(&raw_client(server), &bytes, &[arena.file().as_raw_fd()])
}

#[test]
fn a_uid_at_its_quota_is_refused_until_its_session_ends() {
    let server = Server::start_with(&["--max-sessions-per-uid", "1", "--peer-timeout", "600"]);
    let socket = server.socket.to_str().unwrap().to_string();
    let mut first = Running(
        Command::new(client_bin())
            .args(["run", "--socket", &socket, "--variant", "eventfd"])
            .args(["--rounds", "1000000000", "--max-seconds", "600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    server.wait_for_line("started", HANG);
    // Stopped, its session waits (in a blocking read) instead of spinning through rounds.
    kill(Pid::from_raw(first.0.id() as i32), Signal::SIGSTOP).unwrap();

    let uid = nix::unistd::getuid().as_raw();
    let why = error_text(hello_with_arena(&server));
    assert_eq!(
        why,
        format!(
            "uid {uid} already runs 1 session (its quota; --max-sessions-per-uid); try again later"
        )
    );

    let _ = first.0.kill();
    let _ = first.0.wait();
    // The session frees its slot before it prints its last line.
    let line = server.wait_for_outcome("eventfd", HANG);
    assert!(line.contains("exited mid-run"), "{line}");
    assert!(
        matches!(hello_with_arena(&server), Message::Ready(_)),
        "admitted once the first session ended"
    );
}

#[test]
fn another_uid_gets_a_quarter_of_the_sessions_and_ours_all_of_them() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root may send SCM_CREDENTIALS for another uid");
        return;
    }
    let ours = nix::unistd::getuid().as_raw();
    let server = Server::start_with(&[
        "--allow-uid",
        "65534",
        "--max-sessions",
        "4",
        "--peer-timeout",
        "600",
    ]);
    // Nobody plays these sessions' other side: they wait at the start line until the server
    // stops, and hold their slots.
    assert!(matches!(
        crate::util::hello_as(&server, 65534),
        Message::Ready(_)
    ));
    let why = error_text(crate::util::hello_as(&server, 65534));
    assert_eq!(
        why,
        "uid 65534 already runs 1 session (its quota; --max-sessions-per-uid); try again later"
    );
    for i in 0..3 {
        assert!(
            matches!(crate::util::hello_as(&server, ours), Message::Ready(_)),
            "our own session {i}"
        );
    }
    let why = error_text(crate::util::hello_as(&server, ours));
    assert_eq!(
        why,
        "server busy: 4 sessions running (--max-sessions); try again later"
    );
}

/// A TCP socket whose last close waits (`SO_LINGER`) for data its peer never reads, and the
/// peer: dropping the peer resets the connection, which ends the wait.
fn slow_to_close() -> (OwnedFd, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 600,
    };
    setsockopt(&sender, sockopt::Linger, &linger).unwrap();
    sender.set_nonblocking(true).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    // Fill the peer's receive buffer and our send buffer.
    loop {
        match sender.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("fill the socket: {e}"),
        }
    }
    (OwnedFd::from(sender), peer)
}

fn memfd() -> OwnedFd {
    let m = memfd::MemfdOptions::default().create("limits").unwrap();
    OwnedFd::from(m.into_file())
}

/// Stops a process (every thread of it) until dropped.
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Stopped {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
        let stopped = Stopped(pid);
        let give_up = Instant::now() + HANG;
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < give_up, "the server never stopped");
            std::thread::sleep(Duration::from_millis(5));
        }
        stopped
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

fn all_threads_stopped(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map_while(Result::ok)
        .all(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the command name's closing parenthesis.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
}

/// Names of the server's threads.
fn thread_names(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map_while(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn a_slow_close_holds_up_only_the_closer_thread_and_every_descriptor_is_closed() {
    let server = Server::start();
    // Warm up, so lazily opened descriptors (tokio's, the signal pipes) are in the baseline.
    run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    let baseline = server.fd_count();
    assert!(
        thread_names(server.pid())
            .iter()
            .any(|n| n == "lockfair-closer"),
        "{:?}",
        thread_names(server.pid())
    );
    // Refused before any session starts: an admitted hello's descriptors are looked at (and
    // closed) by its session, on the thread the session holds anyway.
    let mut zero_rounds = hello(Variant::Ofd);
    zero_rounds.rounds = 0;
    let refused = proto::encode(&Message::Hello(zero_rounds));

    // The server must hold the slow socket's only reference, so that its close is the last
    // one, the one that waits: it is sent while the server is stopped and closed here before
    // the server can take it.
    let (slow, peer) = slow_to_close();
    let sock = raw_client(&server);
    {
        let _stopped = Stopped::new(server.pid());
        crate::util::send_datagram(&sock, &refused, &[slow.as_raw_fd()], None);
        drop(slow);
    }
    assert!(lockfair::channel::wait_readable(&sock, HANG).unwrap());
    let mut buf = vec![0u8; proto::MAX_DATAGRAM];
    let n = nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    let why = error_text(proto::decode(&buf[..n]).unwrap());
    assert!(why.contains("rounds must be between"), "{why}");

    // While that close waits, the server answers every datagram, and what they carried waits
    // behind it on the one closer thread.
    for i in 0..50 {
        let memfds: Vec<OwnedFd> = (0..2).map(|_| memfd()).collect();
        let raw: Vec<i32> = memfds.iter().map(|f| f.as_raw_fd()).collect();
        let why = error_text(exchange(&sock, &refused, &raw));
        assert!(
            why.contains("rounds must be between"),
            "datagram {i}: {why}"
        );
    }
    assert!(
        server.fd_count() >= baseline + 100,
        "{} descriptors, {baseline} before",
        server.fd_count()
    );
    let r = run_json(&server, &["--variant", "futex", "--rounds", "100"]);
    assert_eq!(r["server"]["rounds"], 100, "and sessions run as ever");

    // The reset ends the slow close; then everything queued behind it is closed.
    drop(peer);
    crate::util::fds_back_to(&server, baseline);
}
