//! A peer that dies mid-run: the other side ends promptly with a clear error, never hangs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{Server, client_bin, run_json, wait_exit};

/// Starts a client run that would take long, and returns it once the server reports it running.
fn long_client(server: &Server, variant: &str) -> std::process::Child {
    let child = Command::new(client_bin())
        .args(["run", "--socket", server.socket.to_str().unwrap()])
        .args([
            "--variant",
            variant,
            "--rounds",
            "1000000000",
            "--max-seconds",
            "60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server says when a session has started (it has the arena and runs its side).
    server.wait_for_line("started", Duration::from_secs(10));
    child
}

#[test]
fn a_client_killed_mid_run_frees_its_session_and_the_server_serves_the_next() {
    for variant in ["ofd", "futex"] {
        let server = Server::start();
        let mut victim = long_client(&server, variant);
        let killed_at = Instant::now();
        kill(Pid::from_raw(victim.id() as i32), Signal::SIGKILL).unwrap();
        let _ = victim.wait();
        let line = server.wait_for_line("failed", Duration::from_secs(5));
        assert!(line.contains("exited mid-run"), "{variant}: {line}");
        assert!(
            killed_at.elapsed() < Duration::from_secs(2),
            "{variant}: the session ended within 2 s"
        );
        let report = run_json(&server, &["--variant", variant, "--rounds", "500"]);
        assert_eq!(
            report["client"]["rounds"], 500,
            "{variant}: the next client is served"
        );
    }
}

#[test]
fn a_server_killed_mid_run_ends_the_client_with_a_clear_error() {
    for variant in ["ofd", "eventfd"] {
        let mut server = Server::start();
        let mut victim = long_client(&server, variant);
        assert!(server.stop_with(Signal::SIGKILL, Duration::from_secs(5)));
        let status = wait_exit(&mut victim, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{variant}: the client hung after its server died"));
        assert!(!status.success());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut victim.stderr.take().unwrap(), &mut err).unwrap();
        assert!(err.contains("exited mid-run"), "{variant}: {err}");
    }
}
