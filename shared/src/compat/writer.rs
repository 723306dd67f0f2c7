//! The blog's server, played by `lockfair-server --seed-compat`: the writer.
//!
//! A checked hello becomes a [`BlogSession`]; [`BlogSession::play`] runs the blog's turns on the
//! calling (blocking) thread and returns what the blog's server would print, plus what lockfair
//! adds: the overlaps the offset witnessed, the kernel's verdict on the passed descriptor, and,
//! if it had to give up (the client exited, the time limit passed), why.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use super::overlap::{Sharing, command, sharing_with};
use super::turns::{BlogRole, Decimal, Played, StopWords, Taken, run_turns, side_watchdog};
use super::{CompatError, SeedCompat, check_blog_fds};
use crate::session::watchdog::AbortHandle;

/// The writer's turn: the offset is 0; it writes the decimal `n` there, which moves the offset.
#[derive(Debug, Default)]
pub(super) struct Writer;

impl BlogRole for Writer {
    fn is_my_turn(&self, offset: u64) -> bool {
        offset == 0
    }

    fn take(&mut self, file: &File, offset: u64, n: u64) -> Result<Taken, Errno> {
        let wrote = crate::sys::rawio::write(file, Decimal::new(n).as_bytes())?;
        Ok(Taken {
            left_at: offset + wrote as u64,
            wrong: None,
        })
    }
}

/// A blog client's checked hello, ready to play.
#[derive(Debug)]
pub struct BlogSession {
    file: File,
    size: u64,
    peer_pid: i32,
    /// The client's `/proc/PID/comm`, read on arrival.
    command: String,
    /// kcmp's answer, asked on arrival: the blog's client exits as soon as its own turns are
    /// done, and with it the evidence.
    sharing: Sharing,
    compat: SeedCompat,
}

impl BlogSession {
    /// Checks the hello's descriptors ([`check_blog_fds`]: every one is closed if it fails),
    /// then compares the memfd with the sender's descriptors (`peer_pid` from SCM_CREDENTIALS).
    pub fn accept(
        fds: Vec<OwnedFd>,
        peer_pid: i32,
        compat: &SeedCompat,
    ) -> Result<BlogSession, CompatError> {
        let file = check_blog_fds(fds)?;
        let sharing = sharing_with(file.as_fd(), peer_pid);
        let size = crate::sys::fdkind::size(&file).map_err(super::sys("stat the memfd"))?;
        Ok(BlogSession {
            file,
            size,
            peer_pid,
            command: if peer_pid > 0 {
                command(peer_pid)
            } else {
                String::new()
            },
            sharing,
            compat: compat.clone(),
        })
    }

    /// Plays the blog's server: lock, look, write or whoop, unlock, until its turns are done.
    /// Blocks the calling thread until then, or until the session's time limit passes, or
    /// `handle` aborts it (the server does when the client's pidfd says it exited: the blog's
    /// client never exits before the writer's last turn), or process `watch_pid` exits (for a
    /// caller that has no pidfd of the client to watch). The memfd is closed when this returns.
    pub fn play(
        self,
        handle: AbortHandle,
        watch_pid: Option<i32>,
    ) -> Result<WriterReport, CompatError> {
        // Blocking-pool threads are reused: undo a previous session's pinning.
        let _ = crate::placement::pin_current_thread(None);
        let dog = side_watchdog(watch_pid, self.compat.max_seconds as f64, handle)?;
        let words = StopWords {
            peer: "client",
            command: self.command.clone(),
            limit_seconds: self.compat.max_seconds as f64,
            limit_flag: "--seed-max-seconds",
        };
        let played = run_turns(&self.file, &mut Writer, self.compat.turns, &dog, &words);
        Ok(WriterReport {
            played,
            size: self.size,
            peer_pid: self.peer_pid,
            sharing: self.sharing,
        })
    }
}

/// What one compat session saw.
#[derive(Debug)]
pub struct WriterReport {
    pub played: Played,
    /// The memfd's size.
    pub size: u64,
    pub peer_pid: i32,
    pub sharing: Sharing,
}

impl WriterReport {
    /// The lines `lockfair-server` prints for compat session `id`: the blog's own line (or, if
    /// it gave up, why), then lockfair's counts, overlaps and verdict.
    pub fn to_text(&self, id: u64) -> String {
        let c = &self.played.counts;
        let who = format!("compat session {id} (pid {})", self.peer_pid);
        let ending = match self.played.stop_line() {
            None => format!("Ending connection, whoops = {}", c.whoops),
            Some(stop) => format!("{who}: {stop}"),
        };
        format!(
            "{who}: \"CACHEDFILE HELLO\" and a {}-byte sealed memfd; played the blog's server\n\
             {ending}\n\
             lines written: {} of {}, whoops: {} ({} iterations)\n\
             overlaps seen: {} (offset moved under a held lock)\n\
             verdict: {}",
            self.size,
            c.turns,
            self.played.target,
            c.whoops,
            c.iterations(),
            c.overlaps,
            verdict(self.sharing, c.overlaps),
        )
    }

    /// True if every turn was taken.
    pub fn completed(&self) -> bool {
        self.played.stopped.is_none()
    }
}

/// What the evidence says about the passed descriptor.
fn verdict(sharing: Sharing, overlaps: u64) -> String {
    match sharing {
        Sharing::Shared { fd, .. } => format!(
            "the passed descriptor is the client's own open file description (kcmp: its fd {fd}): F_OFD_SETLKW through it excludes nobody"
        ),
        _ if overlaps > 0 => format!(
            "critical sections overlapped under the lock: F_OFD_SETLKW through the passed descriptor gave no mutual exclusion ({})",
            no_kcmp(sharing)
        ),
        other => format!(
            "not proven by this run: no overlap was seen, and {}",
            no_kcmp(other)
        ),
    }
}

/// Why kcmp could not confirm sharing.
fn no_kcmp(sharing: Sharing) -> String {
    match sharing {
        Sharing::Shared { pid, fd } => format!("kcmp: fd {fd} of pid {pid} is this description"),
        Sharing::NotShared { pid } => format!(
            "the client (pid {pid}) no longer held a descriptor of this open file description when kcmp looked"
        ),
        Sharing::Gone { pid } => {
            format!("the client (pid {pid}) had exited before kcmp could look")
        }
        Sharing::Unavailable { errno, .. } => format!("kcmp(2) is not permitted here ({errno})"),
        Sharing::NoPid => "the client's pid is not visible in this pid namespace".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_its_evidence() {
        let shared = verdict(Sharing::Shared { pid: 7, fd: 3 }, 0);
        assert!(
            shared.starts_with("the passed descriptor is the client's own open file description")
                && shared.ends_with("F_OFD_SETLKW through it excludes nobody"),
            "{shared}"
        );
        let closed = verdict(Sharing::NotShared { pid: 7 }, 0);
        assert!(
            closed.starts_with("not proven") && closed.contains("no longer held"),
            "{closed}"
        );
        let gone = verdict(Sharing::Gone { pid: 7 }, 2);
        assert!(
            gone.contains("gave no mutual exclusion") && gone.contains("exited"),
            "{gone}"
        );
        let eperm = verdict(
            Sharing::Unavailable {
                pid: 7,
                errno: Errno::EPERM,
            },
            0,
        );
        assert!(
            eperm.starts_with("not proven") && eperm.contains("EPERM"),
            "{eperm}"
        );
    }
}
