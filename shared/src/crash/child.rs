//! The crash experiment's child processes: a holder that dies inside its critical section, a
//! survivor that then tries its luck, and the echo side of the overhead ping-pong.
//!
//! `lockfair-client crash-child` (hidden) re-executes this program with one end of a
//! SOCK_SEQPACKET socketpair as its stdin, like the other helper processes: the driver sends one
//! [`Job`] with the arena and the variant's descriptors attached (SCM_RIGHTS), the child answers
//! with [`Report`]s. A child asks the kernel to SIGKILL it when the driver dies
//! (`PR_SET_PDEATHSIG`), so none can outlive the experiment, whatever happens to the driver.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use serde::{Deserialize, Serialize};

use super::CrashError;
use super::cells::Description;
use crate::channel::wait_readable;
use crate::child::ChildProcess;
use crate::sys::scm::{control_space, recv_with_fds, send_with_fds};
use crate::variant::Variant;

/// What a child is asked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Role {
    /// Contender 0: takes the lock (or holds the turn), says so, and waits to be killed.
    Holder,
    /// Contender 1: waits for the lock or the turn, and reports what it got.
    Survivor,
    /// Contender 1 of the overhead ping-pong: `blocks` blocks of `rounds` turns, every other
    /// block protected (the odd ones). It gets the variant's descriptors twice: a set for each.
    Echo { rounds: u64, blocks: u32 },
}

/// The one request a child gets. Attached: the arena, the variant's descriptors for this
/// contender ([`Variant::expected_fds`] in `turns` mode), then `pidfds` pidfds of its peers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Job {
    pub variant: Variant,
    pub role: Role,
    pub description: Description,
    /// With the protection of `crash --survivable` on.
    pub survivable: bool,
    pub pidfds: u32,
    /// The driver's pid: a child whose parent is already someone else exits at once.
    pub driver: i32,
}

/// What a child tells the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Report {
    /// The holder is inside its critical section.
    Inside,
    /// The survivor (or the echo) is set up and about to wait.
    Waiting,
    /// The survivor holds the lock or the turn, since `at_ns` (CLOCK_MONOTONIC); `owner_died`
    /// if it was told that the holder died; `relock`: for the robust mutex, the errno of a second
    /// lock after letting go (0: it worked).
    Got {
        at_ns: u64,
        owner_died: bool,
        relock: Option<i32>,
    },
    /// The survivor's wait ended with end-of-file at `at_ns`: told, but given nothing.
    Eof { at_ns: u64 },
    /// The survivor's wait failed with this errno at `at_ns`.
    Refused { at_ns: u64, errno: i32 },
    /// The echo finished its rounds.
    Done,
    /// Something failed; why, in one line.
    Failed(String),
}

/// The hidden subcommand that runs [`serve`].
pub const SUBCOMMAND: &str = "crash-child";

/// The time a child gets to set itself up and answer: generous, for a loaded machine.
pub(super) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child waits for its driver to hang up before leaving by itself.
const PATIENCE: Duration = Duration::from_secs(600);

/// A running child of the experiment; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub(super) struct ExperimentChild {
    child: ChildProcess,
}

impl ExperimentChild {
    /// Starts `helper crash-child` and sends it `job` with `fds` attached.
    pub(super) fn start(
        helper: &Path,
        job: &Job,
        fds: &[BorrowedFd<'_>],
    ) -> Result<ExperimentChild, CrashError> {
        // No grace on drop: a holder or survivor never exits by itself.
        let child = ChildProcess::spawn(helper, SUBCOMMAND, Stdio::null(), Duration::ZERO)
            .map_err(CrashError::Spawn)?;
        let bytes = postcard::to_allocvec(job).map_err(|_| CrashError::Garbled)?;
        child.send(&bytes, fds).map_err(|errno| CrashError::Sys {
            what: "send a child its job",
            errno,
        })?;
        Ok(ExperimentChild { child })
    }

    pub(super) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The next report, if one comes within `timeout`.
    pub(super) fn next(&mut self, timeout: Duration) -> Result<Option<Report>, CrashError> {
        let mut buf = [0u8; 1024];
        let got = self
            .child
            .recv(&mut buf, 0, timeout)
            .map_err(|errno| CrashError::Sys {
                what: "read a child's report",
                errno,
            })?;
        match got {
            None => Ok(None),
            Some(got) if got.len == 0 => Err(CrashError::ChildGone(self.pid())),
            Some(got) => postcard::from_bytes(&buf[..got.len])
                .map(Some)
                .map_err(|_| CrashError::Garbled),
        }
    }

    /// The next report, which must be `want`, within [`ANSWER_TIMEOUT`].
    pub(super) fn expect(&mut self, want: &Report) -> Result<(), CrashError> {
        match self.next(ANSWER_TIMEOUT)? {
            Some(r) if &r == want => Ok(()),
            Some(Report::Failed(why)) => Err(CrashError::ChildFailed(why)),
            Some(_) => Err(CrashError::Garbled),
            None => Err(CrashError::Timeout(ANSWER_TIMEOUT)),
        }
    }

    /// SIGKILLs the child, then hangs up and reaps it. The signal comes first: a hang-up alone
    /// would let the child leave its wait and exit by itself, outside its critical section.
    pub(super) fn kill(self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        drop(self.child);
    }
}

/// The child's side, on the socket it got as stdin: reads its job and plays its role.
pub fn serve(socket: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if !wait_readable(socket, ANSWER_TIMEOUT).unwrap_or(false) {
        return Err(Errno::ETIMEDOUT);
    }
    let mut buf = [0u8; 1024];
    let mut control = vec![0u8; control_space(8)];
    let got = recv_with_fds(socket, &mut buf, &mut control, MsgFlags::empty())?;
    let job: Job = postcard::from_bytes(&buf[..got.len]).map_err(|_| Errno::EINVAL)?;
    // The death signal is armed only now: if the driver died before, our parent changed.
    if nix::unistd::getppid().as_raw() != job.driver {
        return Ok(());
    }
    let report = |r: &Report| {
        let bytes = postcard::to_allocvec(r).map_err(|_| Errno::EINVAL)?;
        send_with_fds(socket, &bytes, &[], None)
    };
    // The holder (and a survivor that got in) stays inside until the driver kills it.
    let stay = || {
        let _ = wait_readable(socket, PATIENCE);
    };
    if let Err(why) = super::cells::play(&job, got.fds, &report, &stay) {
        report(&Report::Failed(why.to_string()))?;
        stay();
    }
    Ok(())
}

/// Splits the descriptors a child received: the arena, the variant's own, the peers' pidfds.
pub(super) fn split_fds(
    job: &Job,
    mut fds: Vec<OwnedFd>,
) -> Result<(OwnedFd, Vec<OwnedFd>, Vec<OwnedFd>), CrashError> {
    let sets = if matches!(job.role, Role::Echo { .. }) {
        2
    } else {
        1
    };
    let want = sets * job.variant.expected_fds(crate::variant::Mode::Turns).len();
    if fds.len() != 1 + want + job.pidfds as usize {
        return Err(CrashError::Garbled);
    }
    let pidfds = fds.split_off(1 + want);
    let channels = fds.split_off(1);
    let arena = fds.pop().ok_or(CrashError::Garbled)?;
    Ok((arena, channels, pidfds))
}
