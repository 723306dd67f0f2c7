//! A private server for `compare`: started on a socket in a fresh 0700 directory, stopped (and
//! its directory removed) whatever happens. It is also told our pid, so it exits by itself if we
//! are killed before we can stop it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use thiserror::Error;

/// Why the private server could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    #[error(
        "cannot find lockfair-server next to {0}: build the whole workspace (`cargo build --release`) or pass --server-bin"
    )]
    NotFound(PathBuf),
    #[error(
        "cannot find lockfair-server: the path of this program is unknown; pass --server-bin or set LOCKFAIR_SERVER"
    )]
    OwnPath(#[source] std::io::Error),
    #[error("cannot create a private directory for the server's socket")]
    Dir(#[source] crate::runtime_dir::PrivateDirError),
    #[error("cannot start {path}: {err}")]
    Start { path: PathBuf, err: std::io::Error },
    #[error("the server did not say `listening on` within {0:?}")]
    NotListening(Duration),
    #[error(
        "{path} is from another build of lockfair (build {theirs}, this client is {ours}): the two sides would not speak the same shared-memory protocol; rebuild both (`cargo build --release --workspace`) or pass --server-bin"
    )]
    OtherBuild {
        path: PathBuf,
        theirs: String,
        ours: &'static str,
    },
}

const BUILD_ID_TIMEOUT: Duration = Duration::from_secs(10);

/// Refuses a server binary built from other sources than this client: a stale binary left next
/// to a fresh one would otherwise be measured (or hang) in its place.
fn check_build(binary: &Path) -> Result<(), SpawnError> {
    let start = |err| SpawnError::Start {
        path: binary.to_path_buf(),
        err,
    };
    let out =
        crate::command::output_within(Command::new(binary).arg("--build-id"), BUILD_ID_TIMEOUT)
            .map_err(start)?
            .ok_or_else(|| start(std::io::Error::from(std::io::ErrorKind::TimedOut)))?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if theirs == crate::BUILD_ID {
        Ok(())
    } else {
        Err(SpawnError::OtherBuild {
            path: binary.to_path_buf(),
            theirs: if theirs.is_empty() {
                "unknown".into()
            } else {
                theirs
            },
            ours: crate::BUILD_ID,
        })
    }
}

/// Finds `lockfair-server`: `explicit`, else `$LOCKFAIR_SERVER`, else next to this executable.
pub fn find_server(explicit: Option<&Path>) -> Result<PathBuf, SpawnError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("LOCKFAIR_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(SpawnError::OwnPath)?;
    let candidate = me.with_file_name("lockfair-server");
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(SpawnError::NotFound(me))
    }
}

/// A running private server.
#[derive(Debug)]
pub struct SpawnedServer {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

impl SpawnedServer {
    /// Starts `binary` on a private socket and waits for it to listen.
    pub fn start(binary: &Path) -> Result<SpawnedServer, SpawnError> {
        check_build(binary)?;
        let base = crate::runtime_dir::xdg_runtime_dir().unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "lockfair-compare-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        crate::runtime_dir::ensure_private_dir(&dir).map_err(SpawnError::Dir)?;
        let socket = dir.join("server.sock");
        let child = Command::new(binary)
            .arg("--socket")
            .arg(&socket)
            .arg("--exit-with")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(SpawnError::Start {
                    path: binary.to_path_buf(),
                    err,
                });
            }
        };
        let stdout = child.stdout.take();
        let server = SpawnedServer { child, dir, socket };
        // Read its stdout on a thread (and keep draining it) so the wait can time out.
        let (tx, rx) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line.starts_with("listening on ") {
                        let _ = tx.send(());
                    }
                }
            });
        }
        match rx.recv_timeout(LISTEN_TIMEOUT) {
            Ok(()) => Ok(server),
            Err(_) => Err(SpawnError::NotListening(LISTEN_TIMEOUT)),
        }
    }

    /// The socket the server listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // SIGTERM lets it remove its socket; SIGKILL if it does not go within 3 s.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let give_up = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        // A killed server leaves its socket and its (unlocked) lock file.
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(crate::runtime_dir::lock_path(&self.socket));
        let _ = std::fs::remove_dir(&self.dir);
    }
}
