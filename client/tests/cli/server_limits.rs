//! What one sender may cost the server: a uid's share of the sessions (`--max-sessions-per-uid`),
//! and the descriptors of refused datagrams, closed on one thread of their own.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use lockfair::proto::{self, Message};
use lockfair::variant::Variant;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, setsockopt, sockopt};
use nix::unistd::Pid;

use crate::garbage::hello;
use crate::util::{HANG, Server, error_text, exchange, raw_client, run_json};

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
