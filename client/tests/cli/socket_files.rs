//! The server's socket and its lock file where other users could reach them (issue 26): each
//! attack as it was done on the old code, and the server and the files surviving it. The other
//! user is uid 65534 in a child process (root only; elsewhere those tests say why they skip).

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use lockfair::runtime_dir::lock_path;
use lockfair::sys::locks::{LockMode, Wait, flock};
use nix::errno::Errno;

use crate::util::{HANG, TestDir, client_bin, forward_lines, run_within, server_bin, wait_exit};

/// The unprivileged user the attacks run as.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `lockfair-server --socket <socket>`, expected to refuse: its output, bounded in time.
fn refused(socket: &Path) -> Output {
    let out = run_within(Command::new(server_bin()).arg("--socket").arg(socket), HANG);
    assert!(!out.status.success(), "the server must refuse {socket:?}");
    out
}

/// The one line a refusing server printed.
fn one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    err
}

/// A directory `name` in `dir` with `mode` (set after creation, so the umask has no say).
fn subdir(dir: &TestDir, name: &str, mode: u32) -> std::path::PathBuf {
    let sub = dir.path().join(name);
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(mode)).unwrap();
    sub
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A child process, stopped (SIGTERM, then SIGKILL) and reaped on drop, however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if wait_exit(&mut self.0, HANG).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Plants `path` as the other user's lock file naming a false pid (1), and keeps it locked in a
/// process of theirs: the file is opened and locked here, then handed to their `sleep` as its
/// standard input, and our copy closed, so theirs is the only descriptor holding the lock.
fn plant_held_lock(path: &Path) -> Reaped {
    fs::write(path, b"1").unwrap();
    nix::unistd::chown(path, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let file = fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    flock(&file, Some(LockMode::Exclusive), Wait::NoWait).unwrap();
    let child = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::from(file))
        .uid(NOBODY)
        .gid(NOBODY)
        .spawn()
        .unwrap();
    let theirs = Reaped(child);
    let ours = fs::File::open(path).unwrap();
    assert_eq!(
        flock(&ours, Some(LockMode::Exclusive), Wait::NoWait),
        Err(Errno::EWOULDBLOCK),
        "their process holds the lock"
    );
    theirs
}

#[test]
fn a_socket_directory_of_another_user_is_refused_and_nothing_is_made_in_it() {
    if !is_root() {
        eprintln!("skipped: only root can give a directory to uid {NOBODY}");
        return;
    }
    let dir = TestDir::new("theirs");
    let theirs = subdir(&dir, "theirs", 0o755);
    nix::unistd::chown(&theirs, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let socket = theirs.join("s.sock");
    let err = one_line(&refused(&socket));
    for needed in [
        &format!("{} (owner uid {NOBODY}, mode 755)", theirs.display()),
        "belongs to another user",
        "pass a --socket in a directory only you can write, e.g. the default",
    ] {
        assert!(err.contains(needed), "{needed:?} in {err}");
    }
    assert!(
        names_in(&theirs).is_empty(),
        "nothing made in their directory"
    );

    // The attack as it was done: their lock file, held, naming pid 1. The refusal is about the
    // directory, never "another lockfair-server is serving … (pid 1)"; their file is untouched.
    let lock = lock_path(&socket);
    let _holder = plant_held_lock(&lock);
    let err = one_line(&refused(&socket));
    assert!(err.contains("belongs to another user"), "{err}");
    assert!(!err.contains("is serving"), "{err}");
    assert_eq!(fs::read(&lock).unwrap(), b"1");
    assert_eq!(names_in(&theirs), ["s.sock.lock"]);
}

#[test]
fn a_socket_directory_others_can_write_is_refused_even_sticky() {
    let dir = TestDir::new("writable");
    for mode in [0o777, 0o1777, 0o775] {
        let open = subdir(&dir, &format!("open-{mode:o}"), mode);
        let err = one_line(&refused(&open.join("s.sock")));
        for needed in [
            &format!("{} (owner uid ", open.display()),
            &format!(", mode {mode:o})"),
            "can be written by other users",
            "pass a --socket in a directory only you can write, e.g. the default",
        ] {
            assert!(err.contains(needed), "{needed:?} in {err}");
        }
        assert!(names_in(&open).is_empty(), "{mode:o}: nothing made in it");
    }
}

#[test]
fn the_socket_is_born_0600_under_umask_0_and_another_uid_cannot_connect() {
    if !is_root() {
        eprintln!("skipped: only root can run a client as uid {NOBODY}");
        return;
    }
    // Others may enter the directory (a warning, not a refusal): only the socket's mode stops them.
    let dir = TestDir::new("mode");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let socket = dir.path().join("s.sock");
    // umask 0: a socket file that is 0600 got its mode from the socket itself, not the umask.
    let mut server = Reaped(
        Command::new("sh")
            .args(["-c", "umask 0; exec \"$0\" \"$@\""])
            .arg(server_bin())
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = forward_lines(server.0.stdout.take().unwrap());
    assert_eq!(
        lines.recv_timeout(HANG).as_deref(),
        Ok(format!("listening on {}", socket.display()).as_str())
    );
    let meta = fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        fs::symlink_metadata(lock_path(&socket))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    // They can see the socket (the directory lets them in) ...
    let sees = run_within(
        Command::new("sh")
            .args(["-c", "test -S \"$0\""])
            .arg(&socket)
            .uid(NOBODY)
            .gid(NOBODY),
        HANG,
    );
    assert!(sees.status.success(), "uid {NOBODY} can reach the path");
    // ... and cannot connect to it.
    let out = run_within(
        Command::new(client_bin())
            .args(["run", "--variant", "futex", "--rounds", "1"])
            .args(["--max-seconds", "10", "--socket"])
            .arg(&socket)
            .uid(NOBODY)
            .gid(NOBODY),
        HANG,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EACCES"), "{err}");
}

#[test]
fn a_symlink_swapped_in_after_bind_is_never_chmodded() {
    // The old server bound, then chmod-ed the path: a racer that replaced the fresh socket with
    // a symlink to a victim got the victim made 0600. Try the race a few times.
    let dir = TestDir::new("swap");
    let socket = dir.path().join("s.sock");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    for attempt in 0..30 {
        let stop = AtomicBool::new(false);
        let outcome = std::thread::scope(|s| {
            s.spawn(|| swap_in_symlink(&socket, &victim, &stop));
            let outcome = start_and_stop(&socket);
            stop.store(true, Ordering::Relaxed);
            outcome
        });
        let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "attempt {attempt}: {outcome}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        // The server serves, or refuses in one line (the racer replaced its socket).
        assert!(
            outcome.starts_with("listening on") || outcome.contains("was replaced while we bound"),
            "attempt {attempt}: {outcome}"
        );
        let _ = fs::remove_file(&socket);
        let _ = fs::remove_file(socket.with_extension("swap"));
    }
}

/// The racer: the moment a socket appears at `socket`, swaps a symlink to `victim` into its
/// place (`RENAME_EXCHANGE` fails until both names exist, then swaps them in one step).
fn swap_in_symlink(socket: &Path, victim: &Path, stop: &AtomicBool) {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let link = socket.with_extension("swap");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(victim, &link).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let swapped = renameat2(
            AT_FDCWD,
            &link,
            AT_FDCWD,
            socket,
            RenameFlags::RENAME_EXCHANGE,
        );
        if swapped.is_ok() {
            break;
        }
    }
}

/// Starts a server on `socket` and stops it: its first line, or its error if it refused.
fn start_and_stop(socket: &Path) -> String {
    let mut server = Reaped(
        Command::new(server_bin())
            .arg("--socket")
            .arg(socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = forward_lines(server.0.stdout.take().unwrap());
    if let Ok(line) = lines.recv_timeout(HANG) {
        return line;
    }
    let status = wait_exit(&mut server.0, HANG).expect("the server neither listened nor exited");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut server.0.stderr.take().unwrap(), &mut err);
    format!("{status}: {err}")
}

#[test]
fn a_lock_file_that_is_a_hard_link_is_refused_and_its_target_kept() {
    let dir = TestDir::new("hardlink");
    let socket = dir.path().join("s.sock");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let lock = lock_path(&socket);
    fs::hard_link(&victim, &lock).unwrap();
    let err = one_line(&refused(&socket));
    for needed in [
        &format!(
            "{} has 2 names (a hard link to another file)",
            lock.display()
        ),
        "remove it",
    ] {
        assert!(err.contains(needed), "{needed:?} in {err}");
    }
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"precious",
        "the victim is kept"
    );
    assert!(!socket.exists(), "no socket made");
    assert_eq!(names_in(dir.path()), ["s.sock.lock", "victim"]);
}

#[test]
fn a_lock_file_another_uid_holds_is_refused_without_a_false_pid() {
    if !is_root() {
        eprintln!("skipped: only root can give a file to uid {NOBODY}");
        return;
    }
    // Ours, and they may enter it (a warning): so they can hold a file in it that they own.
    let dir = TestDir::new("heldlock");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let socket = dir.path().join("s.sock");
    let lock = lock_path(&socket);
    let _holder = plant_held_lock(&lock);
    let out = refused(&socket);
    let err = String::from_utf8_lossy(&out.stderr);
    let refusal = err
        .lines()
        .find(|l| !l.contains("warning:"))
        .unwrap_or_default();
    assert!(
        refusal.contains(&format!(
            "{} belongs to uid {NOBODY}, not to uid 0: someone else made it; remove it",
            lock.display()
        )),
        "{err}"
    );
    assert!(!err.contains("is serving"), "{err}");
    assert_eq!(err.lines().filter(|l| !l.contains("warning:")).count(), 1);
    assert_eq!(
        fs::read(&lock).unwrap(),
        b"1",
        "their file is left as it was"
    );
    assert!(!socket.exists(), "no socket made");
}
