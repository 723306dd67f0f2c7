//! Output to a reader that has gone (`| head -1`) ends a command quietly with status 0, as with
//! other Unix tools: no panic, no error line, nothing left behind.

use std::process::{Command, Stdio};

use crate::util::{HANG, Server, TestDir, client_bin, server_bin, wait_exit};

/// A standard output whose reader is already gone: every write fails with EPIPE. Close-on-exec,
/// so that no child another test starts meanwhile inherits the read end and keeps it open.
fn closed_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    drop(read);
    Stdio::from(write)
}

/// Runs `command` with its standard output going nowhere (bounded), and checks that it ended
/// with status 0 and said nothing on standard error.
fn assert_quiet_success(command: &mut Command, what: &str) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, HANG);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    let status = status.unwrap_or_else(|| panic!("{what} did not end within {HANG:?}: {err}"));
    assert!(status.success(), "{what}: {status:?} {err}");
    assert!(err.is_empty(), "{what} said something: {err}");
}

#[test]
fn client_commands_end_quietly_when_their_reader_has_gone() {
    assert_quiet_success(
        Command::new(client_bin()).args(["completions", "bash"]),
        "completions",
    );
    let server = Server::start();
    let socket = server.socket.to_str().unwrap();
    let run = [
        "run",
        "--socket",
        socket,
        "--variant",
        "pipe",
        "--rounds",
        "20",
    ];
    assert_quiet_success(Command::new(client_bin()).args(run), "run");
    assert_quiet_success(
        Command::new(client_bin()).args(run).arg("--json"),
        "run --json",
    );
}

#[test]
fn the_server_stops_cleanly_when_its_log_reader_has_gone() {
    let dir = TestDir::new("pipe-srv");
    let socket = dir.path().join("server.sock");
    assert_quiet_success(
        Command::new(server_bin()).arg("--socket").arg(&socket),
        "lockfair-server",
    );
    assert!(!socket.exists(), "the socket is removed");
    assert!(
        !lockfair::runtime_dir::lock_path(&socket).exists(),
        "and its lock file"
    );
}
