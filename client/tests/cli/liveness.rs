//! A peer that dies mid-run: the other side ends by its liveness check, says why, and never hangs.
//! No test here times the detection: a loaded machine may take seconds; what matters is that the
//! session ends for this reason and not by its own deadline, which is far beyond the tests' bound.

use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{HANG, Server, client_bin, run_json, wait_exit};

/// A server whose sessions wait at the start line longer than any test: a peer killed before it
/// reached the line is then caught by the liveness check too, never by the start line's timeout.
fn patient_server() -> Server {
    Server::start_with(&["--peer-timeout", "600"])
}

/// Starts a client run that would outlast any test, and returns it once the server reports it
/// running.
fn long_client(server: &Server, variant: &str) -> std::process::Child {
    let child = Command::new(client_bin())
        .args(["run", "--socket", server.socket.to_str().unwrap()])
        .args([
            "--variant",
            variant,
            "--rounds",
            "1000000000",
            "--max-seconds",
            "600",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server says when a session has started (it has the arena and runs its side).
    server.wait_for_line("started", HANG);
    child
}

#[test]
fn a_client_killed_mid_run_frees_its_session_and_the_server_serves_the_next() {
    for variant in ["ofd", "futex"] {
        let server = patient_server();
        let mut victim = long_client(&server, variant);
        let pid = victim.id();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let _ = victim.wait();
        // The session's last line: it failed, because this very process died.
        let line = server.wait_for_outcome(variant, HANG);
        assert!(
            line.contains(": failed: ") && line.contains(&format!("(pid {pid}) exited mid-run")),
            "{variant}: {line}"
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
        let mut server = patient_server();
        let server_pid = server.pid();
        let mut victim = long_client(&server, variant);
        assert!(server.stop_with(Signal::SIGKILL, HANG));
        let status = wait_exit(&mut victim, HANG)
            .unwrap_or_else(|| panic!("{variant}: the client hung after its server died"));
        assert!(!status.success());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut victim.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            err.contains(&format!("(pid {server_pid}) exited mid-run")),
            "{variant}: {err}"
        );
    }
}
