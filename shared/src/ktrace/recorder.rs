//! One run's recording: prepare an instance before the contenders start, arm it once their
//! threads are known, and collect the events when they are done.

use std::time::Duration;

use super::TraceError;
use super::event::{Decoder, EVENTS, Record};
use super::instance::{Instance, sweep_stale};
use super::text::parse_line;
use super::tracefs::{MountGuard, Tracefs};

/// Bytes one event takes in the ring buffer, roughly (header and the largest record, a lock
/// event, rounded up).
const EVENT_BYTES: u64 = 100;
/// Per-CPU buffer bounds: enough for a short run at the least; at most what can be read back as
/// text in a few seconds.
const MIN_BUFFER_KB: u64 = 4 << 10;
const MAX_BUFFER_KB: u64 = 32 << 10;

/// The per-CPU buffer size, in KiB, for a run expected to record `events` events: all of them
/// may land on one CPU (`same-cpu`), so each CPU gets room for all of them, within bounds.
pub fn buffer_kb_for(events: u64) -> u64 {
    (events.saturating_mul(EVENT_BYTES) / 1024).clamp(MIN_BUFFER_KB, MAX_BUFFER_KB)
}

/// What the kernel recorded for the run.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The events of the contenders, in the kernel's order.
    pub records: Vec<Record>,
    /// Events the ring buffer lost (it filled up): the counts then cover only part of the run.
    pub lost_events: u64,
    /// Stale instances of dead lockfair processes removed before this one was made.
    pub swept: Vec<String>,
}

/// A recording in progress. Dropping it removes the instance (and the mount, if it made one).
#[derive(Debug)]
pub struct Recorder {
    // Field order is drop order: the instance goes before the mount it lives in.
    instance: Instance,
    tracefs: Tracefs,
    decoder: Decoder,
    swept: Vec<String>,
}

impl Recorder {
    /// Finds (or mounts) tracefs, sweeps stale instances, makes ours with the mono clock and a
    /// `buffer_kb` per-CPU buffer that keeps the start of the run if it fills, and reads the
    /// events' formats. Nothing is recorded yet.
    pub fn prepare(buffer_kb: u64) -> Result<Recorder, TraceError> {
        let guard = MountGuard::take()?;
        let tracefs = Tracefs::open(&guard)?;
        let swept = sweep_stale(tracefs.root());
        let made = Instance::create(tracefs.root()).map_err(TraceError::or_not_allowed);
        // Our instance now keeps any other lockfair run from unmounting tracefs. (Let go before
        // a failure drops `tracefs`, whose release takes the guard again.)
        drop(guard);
        let instance = made?;
        instance.write("tracing_on", "0")?;
        instance.write("trace_clock", "mono")?;
        instance.write("options/overwrite", "0")?;
        instance.write("buffer_size_kb", &buffer_kb.to_string())?;
        let formats = EVENTS.map(|e| instance.read(&format!("events/{e}/format")));
        let [a, b, c, d] = formats;
        let formats = [a?, b?, c?, d?];
        let decoder =
            Decoder::new(formats.each_ref().map(String::as_str)).map_err(TraceError::Format)?;
        Ok(Recorder {
            instance,
            tracefs,
            decoder,
            swept,
        })
    }

    /// Starts recording the lock events on `inode` and the scheduler events of `tids`.
    pub fn arm(&mut self, inode: u64, tids: &[i32]) -> Result<(), TraceError> {
        let filters = self.decoder.filters(inode, tids);
        for (event, filter) in EVENTS.iter().zip(filters) {
            self.instance
                .write(&format!("events/{event}/filter"), &filter)?;
            self.instance
                .write(&format!("events/{event}/enable"), "1")?;
        }
        self.instance.write("trace", "")?;
        self.instance.write("tracing_on", "1")
    }

    /// Stops recording, reads the events back, and removes the instance (and the mount, if
    /// this run made it and nobody else uses it).
    pub fn finish(mut self) -> Result<Capture, TraceError> {
        self.instance.write("tracing_on", "0")?;
        // Events fired on another CPU just before the stop may still be committing.
        std::thread::sleep(Duration::from_millis(1));
        let lost_events = self.instance.lost_events()?;
        let mut records = Vec::new();
        let decoder = &self.decoder;
        self.instance.each_trace_line(|line| {
            if let Some(r) = parse_line(line).and_then(|l| decoder.decode(&l)) {
                records.push(r);
            }
        })?;
        self.instance.remove()?;
        self.tracefs.release();
        Ok(Capture {
            records,
            lost_events,
            swept: std::mem::take(&mut self.swept),
        })
    }

    /// The instance's directory (for tests and messages).
    pub fn instance_dir(&self) -> &std::path::Path {
        self.instance.dir()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::Instant;

    use super::*;
    use crate::arena::Arena;
    use crate::errors::error_chain;
    use crate::ktrace::figures::kernel_figures;
    use crate::ktrace::handoff::rebuild;
    use crate::procinfo::proc_locks_for;
    use crate::sys::locks::{ByteRange, LockMode, RecordOwner, Wait, record_lock, record_unlock};

    /// A recorder, or `None` (with the reason printed) where tracing is not allowed.
    fn recorder() -> Option<Recorder> {
        match Recorder::prepare(MIN_BUFFER_KB) {
            Ok(r) => Some(r),
            Err(e) if e.is_unavailable() => {
                // CI sets it: there, a skip would hide the only kernel-confirmed check.
                assert!(
                    std::env::var_os("LOCKFAIR_REQUIRE_TRACEFS").is_none(),
                    "LOCKFAIR_REQUIRE_TRACEFS is set, but kernel tracing is unavailable: {}",
                    error_chain(&e)
                );
                eprintln!("SKIPPED, kernel tracing unavailable: {}", error_chain(&e));
                None
            }
            Err(e) => panic!("{}", error_chain(&e)),
        }
    }

    fn tid() -> i32 {
        nix::unistd::gettid().as_raw()
    }

    fn ofd(file: impl AsFd, kind: Option<LockMode>) {
        match kind {
            Some(mode) => record_lock(
                file,
                RecordOwner::Description,
                mode,
                ByteRange::ALL,
                Wait::Block,
            ),
            None => record_unlock(file, RecordOwner::Description, ByteRange::ALL),
        }
        .unwrap();
    }

    #[test]
    fn records_one_queued_handoff_between_two_threads_and_leaves_nothing() {
        let Some(mut rec) = recorder() else { return };
        let dir = rec.instance_dir().to_path_buf();
        assert!(dir.is_dir());
        let arena = Arena::create(2).unwrap();
        // Two independent open file descriptions, as two contenders have.
        let reopen = || {
            let fd = arena.file().as_fd().as_raw_fd();
            let path = format!("/proc/self/fd/{fd}");
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap()
        };
        let (mine, theirs) = (reopen(), reopen());
        let inode = nix::sys::stat::fstat(arena.file()).unwrap().st_ino;
        let (tx, rx) = std::sync::mpsc::channel();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let me = tid();
        let waiter_tid = std::thread::scope(|s| {
            ofd(&mine, Some(LockMode::Exclusive));
            let theirs = &theirs;
            let waiter = s.spawn(move || {
                tx.send(tid()).unwrap();
                wait_go.recv().unwrap();
                ofd(theirs, Some(LockMode::Exclusive));
                ofd(theirs, None);
            });
            let waiter_tid = rx.recv().unwrap();
            rec.arm(inode, &[me, waiter_tid]).unwrap();
            go.send(()).unwrap();
            // Let go only once the waiter is queued in the kernel.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !proc_locks_for(arena.file()).iter().any(|l| l.blocked) {
                assert!(Instant::now() < deadline, "the waiter never queued");
                std::thread::sleep(Duration::from_millis(1));
            }
            ofd(&mine, None);
            waiter.join().unwrap();
            waiter_tid
        });
        let cap = rec.finish().unwrap();
        assert!(!dir.exists(), "the instance is gone after a normal end");
        let h = rebuild(&cap.records, &[me, waiter_tid], inode);
        let k = kernel_figures(&h, cap.lost_events);
        assert_eq!(k.lost_events, 0);
        let (holder, waiter) = (&h.contenders[0], &h.contenders[1]);
        assert_eq!(
            (holder.counts.lock_requests, holder.counts.unlocks),
            (0, 1),
            "{holder:?}"
        );
        assert_eq!(
            (
                waiter.counts.blocks,
                waiter.counts.grants,
                waiter.counts.unlocks
            ),
            (1, 1, 1),
            "{waiter:?}"
        );
        // The unlock woke it; so may the channel's `go`, if it slept on it.
        assert!((1..=2).contains(&waiter.counts.wakeups), "{waiter:?}");
        // One sample per wakeup that put a sleeping contender back on a CPU (the join wakes us).
        assert!(!h.wake_to_run.is_empty() && h.wake_to_run.len() <= k.counts.wakeups);
        assert_eq!(k.counts.barges, 0);
    }

    #[test]
    fn a_dropped_recorder_removes_its_instance() {
        let Some(rec) = recorder() else { return };
        let dir = rec.instance_dir().to_path_buf();
        assert!(dir.is_dir());
        drop(rec);
        assert!(!dir.exists());
    }

    #[test]
    fn the_next_start_sweeps_the_instance_of_a_killed_process() {
        let Some(rec) = recorder() else { return };
        // A process that is gone, as after SIGKILL, and the instance it left.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = rec
            .instance_dir()
            .parent()
            .unwrap()
            .join(format!("lockfair-{dead}"));
        std::fs::create_dir(&stale).unwrap();
        let live = rec.instance_dir().to_path_buf();
        let Some(next) = recorder() else { return };
        assert!(!stale.exists(), "the stale instance was swept");
        assert!(live.exists(), "a live process's instance is kept");
        let cap = next.finish().unwrap();
        assert!(cap.swept.contains(&format!("lockfair-{dead}")) || !stale.exists());
        drop(rec);
        assert!(!live.exists());
    }
}
