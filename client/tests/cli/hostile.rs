//! Hostile, dead and many peers: the server treats every datagram and descriptor as untrusted.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use lockfair::arena::{ARENA_SIZE, Arena, REGION_SIZE};
use lockfair::measure::ContenderStats;
use lockfair::proto::{self, Message, Ready};
use lockfair::variant::Variant;
use memfd::{FileSeal, MemfdOptions};
use nix::sys::signal::Signal;

use crate::garbage::hello;
use crate::util::{
    HANG, Server, client, client_bin, exchange, raw_client, run_json, run_within, wait_exit,
};

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn memfd_of(size: u64, sealed: bool) -> OwnedFd {
    let m = MemfdOptions::default()
        .allow_sealing(true)
        .create("hostile")
        .unwrap();
    m.as_file().set_len(size).unwrap();
    if sealed {
        m.add_seals(&[FileSeal::SealShrink, FileSeal::SealGrow, FileSeal::SealSeal])
            .unwrap();
    }
    OwnedFd::from(m.into_file())
}

/// One kind of malformed datagram: its bytes, its descriptors, and what the refusal must say.
type Case = (Vec<u8>, Vec<OwnedFd>, &'static str);

fn malformed(i: usize) -> Case {
    let ofd = proto::encode(&Message::Hello(hello(Variant::Ofd)));
    let mut seed = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                (seed >> 33) as u8
            })
            .collect()
    };
    match i % 16 {
        0 => (noise(i % 300), vec![], ""),
        1 => (ofd[..ofd.len() - 1 - i % 5].to_vec(), vec![], "malformed"),
        2 => {
            let mut d = ofd.clone();
            d[4] = 0x7f;
            (d, vec![], "the client sent protocol 127")
        }
        3 => (ofd.clone(), vec![], "exactly 1 descriptor"),
        4 => {
            let fds = (0..3).map(|_| memfd_of(ARENA_SIZE as u64, true)).collect();
            (ofd.clone(), fds, "exactly 1 descriptor")
        }
        5 => {
            let fds = (0..12).map(|_| memfd_of(64, false)).collect();
            (ofd.clone(), fds, "too many descriptors")
        }
        6 => {
            let (r, _w) = nix::unistd::pipe().unwrap();
            (ofd.clone(), vec![r], "not a memfd")
        }
        7 => {
            let f = std::fs::File::open("/proc/self/exe").unwrap();
            (ofd.clone(), vec![OwnedFd::from(f)], "not a memfd")
        }
        8 => {
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            (ofd.clone(), vec![OwnedFd::from(a)], "not a memfd")
        }
        9 => (
            ofd.clone(),
            vec![memfd_of(ARENA_SIZE as u64, false)],
            "lacks seals",
        ),
        10 => (ofd.clone(), vec![memfd_of(4096, true)], "bytes, expected"),
        11 => {
            // A sealed memfd of the right size without lockfair's header.
            (
                ofd.clone(),
                vec![memfd_of(ARENA_SIZE as u64, true)],
                "magic",
            )
        }
        12 => {
            // An eventfd hello whose "eventfds" are pipes.
            let arena = Arena::create(2).unwrap();
            let (r, w) = nix::unistd::pipe().unwrap();
            let fds = vec![OwnedFd::from(arena.file().try_clone().unwrap()), r, w];
            (
                proto::encode(&Message::Hello(hello(Variant::Eventfd))),
                fds,
                "to be an eventfd",
            )
        }
        13 => {
            let mut h = hello(Variant::Ofd);
            match i % 4 {
                0 => h.rounds = 0,
                1 => h.cpu = Some(4000),
                2 => h.contenders = 1,
                _ => h.max_ms = u64::MAX,
            }
            (proto::encode(&Message::Hello(h)), vec![], "")
        }
        14 => {
            let other = match i % 3 {
                0 => Message::Ready(Ready { cpu: None }),
                1 => Message::Error("x".into()),
                _ => Message::Result(Box::new(ContenderStats::new(0, None))),
            };
            (proto::encode(&other), vec![], "expected a hello")
        }
        _ => {
            let mut d = ofd.clone();
            d.extend_from_slice(&noise(1 + i % 7));
            (d, vec![], "trailing bytes")
        }
    }
}

#[test]
fn a_flood_of_malformed_datagrams_leaves_the_server_unharmed() {
    let mut server = Server::start();
    run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    let (fds_before, rss_before) = (server.fd_count(), rss_kib(server.pid()));
    let sock = raw_client(&server);
    for i in 0..1_200 {
        let (bytes, fds, expect) = malformed(i);
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        match exchange(&sock, &bytes, &raw) {
            Message::Error(why) => {
                assert!(why.contains(expect), "case {i}: {why:?} lacks {expect:?}")
            }
            other => panic!("case {i}: expected an error reply, got {other:?}"),
        }
    }
    // An oversized datagram is cut at the server's buffer and refused as such.
    let huge = vec![0u8; proto::MAX_DATAGRAM + 1000];
    match exchange(&sock, &huge, &[]) {
        Message::Error(why) => assert!(why.contains("larger than"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the server never died"
    );
    // Every received descriptor was closed.
    crate::util::fds_back_to(&server, fds_before);
    let grown = rss_kib(server.pid()).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "resident memory grew by {grown} KiB");
    let report = run_json(&server, &["--variant", "eventfd", "--rounds", "500"]);
    assert_eq!(
        report["server"]["rounds"], 500,
        "and a normal session still succeeds"
    );
}

#[test]
fn sixty_four_concurrent_sessions_complete_with_correct_counts() {
    let server = Server::start();
    let socket = server.socket.to_str().unwrap().to_string();
    // Handoff variants: 64 pairs of lock variants spinning through whoops on two CPUs take a
    // scheduler period per turn, which is the lesson of `--contenders`, not of this test.
    let variants = ["futex", "eventfd", "pipe"];
    let runs: Vec<_> = (0..64)
        .map(|i| {
            let variant = variants[i % variants.len()];
            let socket = socket.clone();
            let run = std::thread::spawn(move || {
                run_within(
                    Command::new(client_bin())
                        .args(["run", "--socket", &socket, "--json", "--variant", variant])
                        .args(["--rounds", "200", "--max-seconds", "60"]),
                    Duration::from_secs(120),
                )
            });
            (variant, run)
        })
        .collect();
    for (variant, run) in runs {
        let out = run.join().unwrap();
        assert!(
            out.status.success(),
            "{variant}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for side in ["server", "client"] {
            assert_eq!(r[side]["rounds"], 200, "{variant} {side}");
            assert_eq!(r[side]["overlaps"], 0, "{variant} {side}");
            assert_eq!(r[side]["wrong_reads"], 0, "{variant} {side}");
        }
    }
}

#[test]
fn a_stuck_peer_never_blocks_other_sessions() {
    // The stuck client may be stopped before it reaches the start line: the session must then
    // wait there until it dies, not give up first.
    let server = Server::start_with(&["--peer-timeout", "600"]);
    let socket = server.socket.to_str().unwrap().to_string();
    let mut stuck = Command::new(client_bin())
        .args([
            "run",
            "--socket",
            &socket,
            "--variant",
            "ofd",
            "--rounds",
            "1000000000",
        ])
        .args(["--max-seconds", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    server.wait_for_line("started", HANG);
    let pid = nix::unistd::Pid::from_raw(stuck.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    // Its session now waits for a peer that will not move; everyone else carries on.
    for variant in ["futex", "ofd", "pipe"] {
        let r = run_json(&server, &["--variant", variant, "--rounds", "300"]);
        assert_eq!(r["client"]["rounds"], 300, "{variant}");
    }
    let _ = stuck.kill();
    let _ = stuck.wait();
    let line = server.wait_for_line("exited mid-run", HANG);
    assert!(line.contains("ofd"), "{line}");
}

#[test]
fn sessions_beyond_the_limit_are_told_the_server_is_busy() {
    let server = Server::start_with(&["--max-sessions", "2"]);
    let socket = server.socket.to_str().unwrap().to_string();
    let mut long: Vec<_> = (0..2)
        .map(|_| {
            Command::new(client_bin())
                .args([
                    "run",
                    "--socket",
                    &socket,
                    "--variant",
                    "ofd",
                    "--placement",
                    "same-cpu",
                ])
                .args(["--rounds", "1000000", "--max-seconds", "600"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Both long sessions hold their slots once the server has started them; then a third is
    // refused.
    server.wait_for_line("started", HANG);
    server.wait_for_line("started", HANG);
    let out = client(&["run", "--socket", &socket, "--variant", "futex"], HANG);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server busy") && err.contains("--max-sessions"),
        "{err}"
    );
    for c in &mut long {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn a_live_server_is_never_displaced_and_a_stale_socket_is() {
    let mut first = Server::start();
    let path = first.socket.clone();
    let second = run_within(
        Command::new(crate::util::server_bin())
            .arg("--socket")
            .arg(&path),
        HANG,
    );
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!(
            "another lockfair-server is serving {} (pid {})",
            path.display(),
            first.pid()
        )),
        "{err}"
    );
    run_json(&first, &["--variant", "futex", "--rounds", "10"]);

    // A crash leaves the socket file behind: the next server finds it stale and replaces it.
    assert!(first.stop_with(Signal::SIGKILL, HANG));
    assert!(path.exists(), "SIGKILL leaves the socket file");
    let mut third = Command::new(crate::util::server_bin())
        .arg("--socket")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = crate::util::forward_lines(third.stdout.take().unwrap());
    let line = lines.recv_timeout(HANG);
    if line.is_err() {
        let _ = third.kill();
        let _ = third.wait();
    }
    assert_eq!(
        line.as_deref(),
        Ok(format!("listening on {}", path.display()).as_str())
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(third.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(&mut third, HANG).expect("SIGTERM stops it");
    assert!(status.success());
    assert!(!path.exists(), "SIGTERM removes the socket file");
    assert!(
        !lockfair::runtime_dir::lock_path(&path).exists(),
        "and its lock file"
    );
}

#[test]
fn of_two_servers_started_at_once_exactly_one_serves_and_nothing_is_left() {
    let dir = crate::util::TestDir::new("two");
    let path = dir.path().join("server.sock");
    let start = || {
        Command::new(crate::util::server_bin())
            .arg("--socket")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut servers = [start(), start()];
    // The one that lost exits by itself; the winner serves until told to stop.
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    let loser = loop {
        if let Some(i) = (0..2).find(|&i| matches!(servers[i].try_wait(), Ok(Some(_)))) {
            break i;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "neither server gave way"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let [a, b] = &mut servers;
    let (lost, won) = if loser == 0 { (a, b) } else { (b, a) };
    let out = exited_output(lost);
    assert!(!out.0.success());
    assert!(
        out.1.contains(&format!(
            "another lockfair-server is serving {} (pid {})",
            path.display(),
            won.id()
        )) || out.1.contains(&format!(
            "another lockfair-server is serving {};",
            path.display()
        )),
        "{}",
        out.1
    );
    assert_eq!(out.1.lines().count(), 1, "one clear line: {}", out.1);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(won.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), format!("listening on {}", path.display()));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(won.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(won, HANG).expect("SIGTERM stops it");
    assert!(status.success());
    assert!(!path.exists(), "no socket left");
    assert!(
        !lockfair::runtime_dir::lock_path(&path).exists(),
        "no lock file left"
    );
}

/// The exit status and standard error of a child that has exited.
fn exited_output(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (child.wait().unwrap(), err)
}

#[test]
fn sigint_and_sigterm_remove_the_socket() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut server = Server::start();
        let path = server.socket.clone();
        assert!(server.stop_with(signal, HANG), "{signal}");
        assert!(!path.exists(), "{signal} left {}", path.display());
    }
}

#[test]
fn another_uid_is_refused_unless_allowed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root may send SCM_CREDENTIALS for another uid");
        return;
    }
    let send_as_nobody = |server: &Server| crate::util::hello_as(server, 65534);
    let server = Server::start();
    match send_as_nobody(&server) {
        Message::Error(why) => assert!(
            why.contains("uid 65534 may not use this server") && why.contains("--allow-uid 65534"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    let allowing = Server::start_with(&["--allow-uid", "65534", "--peer-timeout", "1"]);
    assert!(matches!(send_as_nobody(&allowing), Message::Ready(_)));
    // Nobody plays the client's side: the session gives up at the start line.
    let line = allowing.wait_for_line("failed", HANG);
    assert!(line.contains("start line"), "{line}");
}

#[test]
fn a_peer_scribbling_over_the_arena_can_neither_hang_nor_crash_a_session() {
    use lockfair::variant::{MAX_SPIN, Mode};
    use std::sync::atomic::AtomicU64;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Instant;

    // Short bounds: 1 s at the start line, 0.3 s of run, then the server's 5 s grace.
    let mut server = Server::start_with(&["--peer-timeout", "1"]);
    let cases = [
        (Variant::Futex, 0),
        (Variant::SpinFutex, MAX_SPIN),
        (Variant::Ticket, 0),
        (Variant::Ofd, 0),
        (Variant::Eventfd, 0),
        (Variant::LockChain, 0),
        // Locks whose every word lives in the variant region.
        (Variant::PiFutex, 0),
        (Variant::RobustMutex, 0),
        (Variant::FairFutex, 0),
        (Variant::StarvationFutex, 0),
    ];
    let mut sessions = Vec::new();
    for (variant, spin) in cases {
        let arena = Arena::create(2).unwrap();
        variant.prepare(&arena, Mode::Turns, 2).unwrap();
        let channels = variant.create_handoff_fds(2, Mode::Turns).unwrap();
        let theirs = channels.fds_for(variant, Mode::Turns, 0, 2).unwrap();
        let mut h = hello(variant);
        h.max_ms = 300;
        h.spin = spin;
        let mut raw = vec![arena.file().as_raw_fd()];
        raw.extend(theirs.iter().map(|f| f.as_raw_fd()));
        let sock = raw_client(&server);
        match exchange(&sock, &proto::encode(&Message::Hello(h)), &raw) {
            Message::Ready(_) => {}
            other => panic!("{variant}: {other:?}"),
        }
        // Keep our ends (and the socket) open: the session must end by its own bounds.
        sessions.push((variant, arena, channels, sock));
    }
    // Scribble over every word the server reads, with values that are plausible, extreme, or
    // the ones that make counters overflow.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 4 {
            0 => x % 3,
            1 => u64::MAX,
            2 => u64::MAX - x % 3,
            _ => x,
        }
    };
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for (_, arena, _, _) in &sessions {
            let h = arena.header();
            // Everything but `stop`: the sessions must end by their own bounds.
            for w in [
                &h.turn,
                &h.line_len,
                &h.arrived,
                &h.started,
                &h.last_holder,
                &h.first_finished,
                &h.begun,
            ] {
                w.store(next() as u32, Relaxed);
            }
            for w in [
                &h.occupant,
                &h.round,
                &h.release_ns,
                &h.waiting,
                &h.waiting_at_release,
            ] {
                w.store(next(), Relaxed);
            }
            for w in &h.line {
                w.store(next(), Relaxed);
            }
            // The variant's own words, wherever its region keeps them (for `robust-mutex`, the
            // mutex itself).
            for w in arena.region::<[AtomicU64; REGION_SIZE / 8]>() {
                w.store(next(), Relaxed);
            }
        }
    }
    // Every session ends within its bound, and the server lives on.
    let mut ended: Vec<String> = Vec::new();
    let give_up = Instant::now() + HANG;
    while ended.len() < sessions.len() {
        let left = give_up.saturating_duration_since(Instant::now());
        match server.next_line(left) {
            Some(line) if !line.ends_with("started") => ended.push(line),
            Some(_) => {}
            None => panic!("sessions still running after their bound; ended: {ended:?}"),
        }
    }
    for (variant, ..) in &sessions {
        assert!(
            ended.iter().any(|l| l.contains(&format!(": {variant} "))),
            "{variant} never ended: {ended:?}"
        );
    }
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the server never died"
    );
    let report = run_json(&server, &["--variant", "futex", "--rounds", "100"]);
    assert_eq!(report["client"]["rounds"], 100, "and it still serves");
}
