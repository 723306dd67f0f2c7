//! The blog's loop, as its programs run it: count turns, not iterations.
//!
//! Each side keeps `n` from 0 and loops while `n` is below its turn count. An iteration takes the
//! whole-file `F_OFD_SETLKW` write lock through the descriptor this side has, reads the shared
//! offset (`lseek(fd, 0, SEEK_CUR)`), takes its turn or counts a whoop, and unlocks. Only a turn
//! moves `n`; a whoop moves nothing else. So a side ends after exactly its turns, however many
//! whoops that took, and never early on its own: the blog's programs then loop forever when their
//! peer is gone. lockfair's side does not: its watchdog (peer's pidfd, time limit, shutdown)
//! stops it, and [`Played`] says after how many turns and why.

use std::fmt;
use std::fs::File;

use nix::errno::Errno;
use thiserror::Error;

use super::overlap::OffsetWitness;
use crate::session::watchdog::{AbortHandle, AbortReason, Watchdog, WatchdogSpec};
use crate::session::{SessionError, retry};
use crate::sys::clock::monotonic_ns;
use crate::sys::locks::{self, ByteRange, LockMode, RecordOwner, Wait};

/// How many wrong reads a report names one by one; the rest are only counted.
pub const NAMED_WRONG_READS: usize = 3;

/// The decimal text of `n`, as the blog's writer writes it: ASCII digits, no newline, no
/// terminator. Built on the stack: the loop does not allocate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(mut n: u64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return Decimal { digits, start };
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A turn whose `pread` did not return the decimal `n` the reader expected. In the blog's
/// protocol this happens when the writer writes line `n + 1` between the reader's `lseek` to 0
/// and its `pread`: the lock excludes nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongRead {
    /// The reader's `n` at that turn.
    pub turn: u64,
    /// What it read (lossy UTF-8, at most the file's bytes).
    pub got: String,
}

/// One side's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Turns taken: lines written, or lines read. The loop ends when this reaches its target.
    pub turns: u64,
    /// Iterations that held the lock and found it was not this side's turn.
    pub whoops: u64,
    /// Turns that read something other than the expected line (the reader only).
    pub wrong_reads: u64,
    /// The first [`NAMED_WRONG_READS`] of them.
    pub first_wrong_reads: Vec<WrongRead>,
    /// Critical sections during which the offset moved without this side moving it.
    pub overlaps: u64,
}

impl Counts {
    /// Iterations done: every one was a turn or a whoop.
    pub fn iterations(&self) -> u64 {
        self.turns.saturating_add(self.whoops)
    }

    /// The wrong reads named one by one, for a report line.
    pub fn wrong_reads_text(&self) -> String {
        let named: Vec<String> = self
            .first_wrong_reads
            .iter()
            .map(|w| format!("turn {} read {:?}", w.turn, w.got))
            .collect();
        let more = self.wrong_reads.saturating_sub(named.len() as u64);
        let mut text = named.join("; ");
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        text
    }
}

/// What one turn did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The offset this side itself left behind (its `write`, or its `lseek` to 0).
    pub left_at: u64,
    /// `Some(text)` when the reader read something other than the expected line.
    pub wrong: Option<String>,
}

/// One side of the blog's protocol: when its turn is, and what it does with it.
pub(crate) trait BlogRole {
    /// True if `offset` (read under the lock) means it is this side's turn.
    fn is_my_turn(&self, offset: u64) -> bool;
    /// Takes turn `n`, found at `offset`.
    fn take(&mut self, file: &File, offset: u64, n: u64) -> Result<Taken, Errno>;
    /// Called after each iteration's unlock, outside the critical section.
    fn after_unlock(&mut self, _file: &File, _counts: &Counts) {}
}

/// Why lockfair's side stopped before its turns were done.
#[derive(Debug, Error)]
pub enum StopCause {
    #[error("the {peer} (pid {pid}{}) exited mid-run", command_suffix(.command))]
    PeerExited {
        peer: &'static str,
        pid: i32,
        /// Its `/proc/PID/comm`, if known.
        command: String,
    },
    #[error("its {seconds} s time limit ({flag}) passed")]
    TimeLimit { seconds: f64, flag: &'static str },
    #[error("{0}")]
    Aborted(AbortReason),
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error(transparent)]
    Session(SessionError),
}

fn command_suffix(command: &str) -> String {
    if command.is_empty() {
        String::new()
    } else {
        format!(", {command}")
    }
}

/// Who the other side is and what limits this one, to say why a run stopped.
#[derive(Clone, Debug)]
pub(crate) struct StopWords {
    /// "client" or "server".
    pub peer: &'static str,
    /// The peer's `/proc/PID/comm`, if known.
    pub command: String,
    pub limit_seconds: f64,
    /// The option that sets the limit.
    pub limit_flag: &'static str,
}

impl StopWords {
    fn cause(&self, e: SessionError) -> StopCause {
        match e {
            SessionError::Aborted(AbortReason::PeerDied(pid)) => StopCause::PeerExited {
                peer: self.peer,
                pid,
                command: self.command.clone(),
            },
            SessionError::Aborted(AbortReason::Timeout) => StopCause::TimeLimit {
                seconds: self.limit_seconds,
                flag: self.limit_flag,
            },
            SessionError::Aborted(other) => StopCause::Aborted(other),
            SessionError::Sys { what, errno } => StopCause::Sys { what, errno },
            other => StopCause::Session(other),
        }
    }
}

/// How one side's loop ended.
#[derive(Debug)]
pub struct Played {
    pub counts: Counts,
    /// The turns it was to take.
    pub target: u64,
    /// `None`: all of them were taken.
    pub stopped: Option<StopCause>,
}

impl Played {
    /// The one line that says a run gave up: turns done, whoops, why.
    pub fn stop_line(&self) -> Option<String> {
        self.stopped.as_ref().map(|cause| {
            format!(
                "stopped after {} of {} turns, {} whoops: {cause}",
                self.counts.turns, self.target, self.counts.whoops
            )
        })
    }
}

/// The watchdog of one side of the blog's protocol: it stops the turns when process `peer`
/// exits, once `seconds` have passed, or through `handle` (shutdown, the server's pidfd watch).
pub(crate) fn side_watchdog(
    peer: Option<i32>,
    seconds: f64,
    handle: AbortHandle,
) -> Result<Watchdog, SessionError> {
    Watchdog::start(WatchdogSpec {
        peer_pids: peer.into_iter().collect(),
        stop: None,
        deadline_ns: monotonic_ns().saturating_add((seconds * 1e9) as u64),
        watch: None,
        handle,
    })
    .map_err(|errno| SessionError::Sys {
        what: "start the watchdog",
        errno,
    })
}

/// The shared file offset, read without moving it.
pub(crate) fn offset(file: &File) -> Result<u64, Errno> {
    crate::sys::rawio::offset(file)
}

/// The blog's loop: while fewer than `turns` turns are done, lock the whole file
/// (`F_OFD_SETLKW`), look at the offset, take the turn or count a whoop, unlock. The lock is
/// released on every path out of an iteration. Stops early only when the watchdog says so (peer
/// gone, time limit, shutdown) or a system call fails; the counts so far are kept either way.
pub(crate) fn run_turns(
    file: &File,
    role: &mut dyn BlogRole,
    turns: u64,
    dog: &Watchdog,
    words: &StopWords,
) -> Played {
    let mut counts = Counts::default();
    let mut stopped = None;
    while counts.turns < turns {
        if let Err(e) = iteration(file, role, &mut counts, dog) {
            stopped = Some(words.cause(e));
            break;
        }
        role.after_unlock(file, &counts);
    }
    Played {
        counts,
        target: turns,
        stopped,
    }
}

/// One lock, look, turn-or-whoop, unlock.
fn iteration(
    file: &File,
    role: &mut dyn BlogRole,
    counts: &mut Counts,
    dog: &Watchdog,
) -> Result<(), SessionError> {
    dog.check()?;
    retry(dog, "take the OFD lock", || {
        locks::record_lock(
            file,
            RecordOwner::Description,
            LockMode::Exclusive,
            ByteRange::ALL,
            Wait::Block,
        )
    })?;
    let inside = critical_section(file, role, counts);
    // F_OFD_SETLK, where the blog writes F_OFD_SETLKW: an unlock never waits, so the kernel
    // treats the two alike.
    let unlocked = locks::record_unlock(file, RecordOwner::Description, ByteRange::ALL);
    inside.map_err(|(what, errno)| SessionError::Sys { what, errno })?;
    unlocked.map_err(|errno| SessionError::Sys {
        what: "release the OFD lock",
        errno,
    })
}

/// What happens while the lock is held; `counts` takes the outcome.
fn critical_section(
    file: &File,
    role: &mut dyn BlogRole,
    counts: &mut Counts,
) -> Result<(), (&'static str, Errno)> {
    let look = |e| ("read the file offset", e);
    let mut witness = OffsetWitness::enter(offset(file).map_err(look)?);
    let entry = witness.entry();
    if role.is_my_turn(entry) {
        let taken = role
            .take(file, entry, counts.turns)
            .map_err(|e| ("take the turn", e))?;
        witness.moved_to(taken.left_at);
        if let Some(got) = taken.wrong {
            counts.wrong_reads += 1;
            if counts.first_wrong_reads.len() < NAMED_WRONG_READS {
                counts.first_wrong_reads.push(WrongRead {
                    turn: counts.turns,
                    got,
                });
            }
        }
        counts.turns += 1;
    } else {
        counts.whoops += 1;
    }
    if witness.leave(offset(file).map_err(look)?) {
        counts.overlaps += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::reader::Reader;
    use crate::compat::writer::Writer;

    fn blog_file() -> File {
        crate::sys::memfd::create_sealed("turns-test", 64, crate::arena::REQUIRED_SEALS).unwrap()
    }

    fn words(peer: &'static str, limit_seconds: f64) -> StopWords {
        StopWords {
            peer,
            command: String::new(),
            limit_seconds,
            limit_flag: "--test-limit",
        }
    }

    /// Runs `role` on this thread for `turns` turns, watched like a compat session.
    fn play(file: &File, role: &mut dyn BlogRole, turns: u64, peer: Option<i32>, s: f64) -> Played {
        let dog = side_watchdog(peer, s, AbortHandle::new().unwrap()).unwrap();
        run_turns(file, role, turns, &dog, &words("peer", s))
    }

    #[test]
    fn both_sides_end_after_exactly_their_turns_through_one_description() {
        for _ in 0..5 {
            let file = blog_file();
            // One open file description, as SCM_RIGHTS makes it.
            let theirs = file.try_clone().unwrap();
            let (wrote, read) = std::thread::scope(|s| {
                let w = s.spawn(|| play(&file, &mut Writer, 100, None, 60.0));
                let r = play(&theirs, &mut Reader::default(), 100, None, 60.0);
                (w.join().unwrap(), r)
            });
            for side in [&wrote, &read] {
                assert!(side.stopped.is_none(), "{side:?}");
                assert_eq!(side.counts.turns, 100, "{side:?}");
                assert_eq!(side.stop_line(), None);
            }
            assert_eq!(wrote.counts.wrong_reads, 0);
            let r = &read.counts;
            // A wrong read is the writer writing inside the reader's section, which moves the
            // offset the reader just put at 0: each one is also an overlap.
            assert!(r.wrong_reads <= r.overlaps, "{r:?}");
            assert_eq!(
                r.first_wrong_reads.len() as u64,
                r.wrong_reads.min(NAMED_WRONG_READS as u64)
            );
            // The writer's last line is still there: "99", no newline.
            let mut last = [0u8; 3];
            let n = crate::sys::rawio::pread(&file, &mut last, 0).unwrap();
            assert_eq!(&last[..n], b"99\0");
        }
    }

    #[test]
    fn a_side_alone_whoops_until_its_limit_and_says_so() {
        let file = blog_file();
        let played = play(&file, &mut Reader::default(), 100, None, 0.2);
        assert_eq!(played.counts.turns, 0);
        assert!(played.counts.whoops > 0);
        assert!(
            matches!(
                played.stopped,
                Some(StopCause::TimeLimit {
                    flag: "--test-limit",
                    ..
                })
            ),
            "{played:?}"
        );
        let line = played.stop_line().unwrap();
        assert!(
            line.starts_with("stopped after 0 of 100 turns, ")
                && line.ends_with("whoops: its 0.2 s time limit (--test-limit) passed"),
            "{line}"
        );
    }

    #[test]
    fn a_side_whose_peer_exited_stops_and_names_it() {
        let file = blog_file();
        let mut peer = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = peer.id() as i32;
        peer.kill().unwrap();
        // Not reaped yet: its pidfd opens, and is readable at once.
        let played = play(&file, &mut Writer, 100, Some(pid), 60.0);
        peer.wait().unwrap();
        // The writer's first turn needs nobody; the second waits for a reader that is gone.
        assert!(played.counts.turns <= 1, "{played:?}");
        assert!(
            matches!(played.stopped, Some(StopCause::PeerExited { pid: p, .. }) if p == pid),
            "{played:?}"
        );
        let line = played.stop_line().unwrap();
        assert!(
            line.ends_with(&format!("the peer (pid {pid}) exited mid-run")),
            "{line}"
        );
    }

    #[test]
    fn decimals_have_no_newline_and_no_terminator() {
        for n in [0u64, 7, 10, 57, 99, 100, 12_345, u64::MAX] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn wrong_reads_are_named_then_counted() {
        let mut c = Counts {
            wrong_reads: 5,
            ..Counts::default()
        };
        for turn in [3, 9, 40] {
            c.first_wrong_reads.push(WrongRead {
                turn,
                got: (turn + 1).to_string(),
            });
        }
        assert_eq!(
            c.wrong_reads_text(),
            "turn 3 read \"4\"; turn 9 read \"10\"; turn 40 read \"41\"; and 2 more"
        );
    }
}
