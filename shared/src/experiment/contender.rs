//! Extra contenders (`--contenders N` with N > 2): child processes of the client.
//!
//! The server plays contender 0 and the client contender 1; contenders 2.. are processes the
//! client starts (`lockfair-client contender`, hidden), because every lock family has its real
//! semantics only between processes: POSIX record locks belong to the process, so contenders
//! that were threads of one process would share them and never exclude each other. Letting the
//! client fork them keeps the server simple (it never creates processes for a peer) and keeps
//! every contender's life in the hands of the one process that waits for them all.
//!
//! A child gets the very same hello, arena and descriptors the server gets, over a
//! SOCK_SEQPACKET socketpair on its stdin, checks them as strictly, and answers `ready`, then
//! `result` or `error`. It watches its parent and ends with it; the parent hangs up, then kills and
//! reaps it on drop ([`crate::child`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use thiserror::Error;

use crate::admission::{Limits, adopt, check_hello, contender_spec};
use crate::channel::wait_readable;
use crate::child::{ChildProcess, ChildStartError};
use crate::errors::error_chain;
use crate::measure::ContenderStats;
use crate::proto::{self, DecodeError, Hello, MAX_DATAGRAM, Message, Ready, version_mismatch};
use crate::session::run_contender;
use crate::session::watchdog::AbortHandle;
use crate::sys::scm::{control_space, recv_with_fds, send_with_fds};

/// What went wrong with a helper contender.
#[derive(Debug, Error)]
pub enum ContenderError {
    #[error("cannot start contender {contender} ({path}): {err}")]
    Spawn {
        contender: usize,
        path: String,
        err: std::io::Error,
    },
    #[error("cannot talk to contender {0}: {1}")]
    Sys(usize, Errno),
    #[error("contender {0} did not answer within {1:?}")]
    Timeout(usize, Duration),
    #[error("contender {0} failed: {1}")]
    Failed(usize, String),
    #[error("contender {0} sent something unreadable")]
    Garbled(usize),
    #[error("{}", version_mismatch("this client", &format!("its contender {contender}"), *theirs))]
    Version { contender: usize, theirs: u16 },
}

/// A running helper contender.
#[derive(Debug)]
pub struct ContenderProcess {
    child: ChildProcess,
    contender: usize,
}

const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a contender that was hung up on may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

impl ContenderProcess {
    /// Starts `helper contender`, sends it `hello` with the arena and its descriptors, and waits
    /// for its `ready`.
    pub fn start(
        helper: &Path,
        hello: &Hello,
        arena: BorrowedFd<'_>,
        fds: Vec<OwnedFd>,
    ) -> Result<ContenderProcess, ContenderError> {
        let contender = hello.contender as usize;
        let sys = |e| ContenderError::Sys(contender, e);
        // Owned from here on, so the child is always reaped.
        let child = ChildProcess::spawn(helper, "contender", Stdio::null(), EXIT_GRACE).map_err(
            |e| match e {
                ChildStartError::Socketpair(errno) => sys(errno),
                ChildStartError::Spawn { path, err } => ContenderError::Spawn {
                    contender,
                    path: path.display().to_string(),
                    err,
                },
            },
        )?;
        let me = ContenderProcess { child, contender };
        let mut attached: Vec<BorrowedFd<'_>> = vec![arena];
        attached.extend(fds.iter().map(|f| f.as_fd()));
        me.child
            .send(&proto::encode(&Message::Hello(hello.clone())), &attached)
            .map_err(sys)?;
        drop(attached);
        drop(fds);
        match me.next(READY_TIMEOUT)? {
            Message::Ready(_) => Ok(me),
            Message::Error(why) => Err(ContenderError::Failed(contender, why)),
            _ => Err(ContenderError::Garbled(contender)),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Waits up to `timeout` for the child's measurements.
    pub fn result(&mut self, timeout: Duration) -> Result<ContenderStats, ContenderError> {
        match self.next(timeout)? {
            Message::Result(stats) => Ok(*stats),
            Message::Error(why) => Err(ContenderError::Failed(self.contender, why)),
            _ => Err(ContenderError::Garbled(self.contender)),
        }
    }

    fn next(&self, timeout: Duration) -> Result<Message, ContenderError> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let got = self
            .child
            .recv(&mut buf, 1, timeout)
            .map_err(|e| ContenderError::Sys(self.contender, e))?
            .ok_or(ContenderError::Timeout(self.contender, timeout))?;
        if got.len == 0 {
            return Err(ContenderError::Failed(
                self.contender,
                "it exited without a word".into(),
            ));
        }
        read_reply(self.contender, &buf[..got.len])
    }
}

/// A helper's reply; one of another protocol version is named as such.
fn read_reply(contender: usize, datagram: &[u8]) -> Result<Message, ContenderError> {
    proto::decode(datagram).map_err(|e| match e {
        DecodeError::Version { got, .. } => ContenderError::Version {
            contender,
            theirs: got,
        },
        _ => ContenderError::Garbled(contender),
    })
}

fn send(socket: BorrowedFd<'_>, msg: &Message, fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    send_with_fds(socket, &proto::encode(msg), fds, None)
}

/// The child's side (`lockfair-client contender`), on the socket it got as stdin: the same checks
/// and the same session as the server's, for contender `hello.contender`, watching the parent.
pub fn serve(socket: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut control = vec![0u8; control_space(8)];
    if !wait_readable(socket, READY_TIMEOUT).unwrap_or(false) {
        return Err(Errno::ETIMEDOUT);
    }
    let got = recv_with_fds(socket, &mut buf, &mut control, MsgFlags::empty())?;
    let reply = |msg: &Message| send(socket, msg, &[]);
    // The parent is this very program: accept what its command line accepts (a server may
    // allow a longer run than the default limits).
    let limits = Limits {
        max_ms: 86_400_000,
        ..Limits::default()
    };
    let hello = match proto::decode_hello(&buf[..got.len]) {
        Ok(hello) => hello,
        Err(e) => return reply(&Message::Error(e.to_string())),
    };
    if let Err(why) = check_hello(&hello, &limits, crate::placement::allowed_cpus()) {
        return reply(&Message::Error(why.to_string()));
    }
    let (arena, fds) = match adopt(&hello, got.fds) {
        Ok(parts) => parts,
        Err(why) => return reply(&Message::Error(why.to_string())),
    };
    reply(&Message::Ready(Ready { cpu: hello.cpu }))?;
    let parent = nix::unistd::getppid().as_raw();
    let spec = contender_spec(&hello, &limits, Some(parent));
    let outcome = AbortHandle::new()
        .map_err(|e| e.to_string())
        .and_then(|handle| {
            run_contender(&spec, &arena, fds, None, handle).map_err(|e| error_chain(&e))
        });
    match outcome {
        Ok(stats) => reply(&Message::Result(Box::new(stats)))?,
        Err(why) => reply(&Message::Error(why))?,
    }
    // Stay until the parent hangs up (it does once every contender is done, or when it dies):
    // the others watch our pid, and a contender that left early would look like one that died.
    let patience =
        Duration::from_millis(hello.max_ms) + 2 * READY_TIMEOUT + Duration::from_secs(10);
    let _ = wait_readable(socket, patience);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::VERSION;

    #[test]
    fn a_helper_of_another_protocol_version_is_named_with_both_versions() {
        let theirs = VERSION + 1;
        let mut reply = proto::encode(&Message::Ready(Ready { cpu: None }));
        reply[4..6].copy_from_slice(&theirs.to_le_bytes());
        assert_eq!(
            read_reply(2, &reply).unwrap_err().to_string(),
            format!(
                "this client speaks lockfair protocol {VERSION}, its contender 2 sent protocol \
                 {theirs}: run a client and server from the same build"
            )
        );
        assert!(matches!(
            read_reply(2, b"LKFR"),
            Err(ContenderError::Garbled(2))
        ));
    }
}
