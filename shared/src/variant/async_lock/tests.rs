//! What a timed-out async waiter leaves behind: with the ecosystem's plain pattern, an orphaned
//! lock; with [`lock_within`] and [`Attempt`], nothing. Each test holds the lock on a scratch
//! file through one description and asks the kernel (`/proc/locks`, a `LOCK_NB` probe through
//! another description) what the waiter's description holds or waits for. Every wait is bounded.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tokio::runtime::Runtime;

use super::attempt::{Attempt, Progress, wait_in_pool};
use super::pool_cpu::PoolCpu;
use super::*;
use crate::procinfo::{ProcLock, proc_locks_for};

/// A scratch file whose lock a holder takes through a description of its own.
struct Scratch {
    path: PathBuf,
    holder: File,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("lockfair-async-{tag}-{}", std::process::id()));
        let holder = File::create(&path).unwrap();
        holder.lock().unwrap();
        Scratch { path, holder }
    }

    /// Another open file description of the file: another lock owner.
    fn open(&self) -> File {
        File::options().write(true).open(&self.path).unwrap()
    }

    /// The kernel's lines for this file: (granted locks, queued requests).
    fn kernel(&self) -> (Vec<ProcLock>, Vec<ProcLock>) {
        proc_locks_for(&self.holder)
            .into_iter()
            .partition(|l| !l.blocked)
    }

    /// True if a description of nobody's can take the lock now (and lets it go again).
    fn free(&self) -> bool {
        let probe = self.open();
        match probe.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(e)) => panic!("probe: {e}"),
        }
    }

    /// Descriptors of this process open on the file.
    fn descriptors(&self) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| *target == self.path)
            .count()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `done` every millisecond for at most 10 s; true if it became true.
fn within_10s(mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done()
}

/// The ecosystem's pattern: `timeout(spawn_blocking(lock))`. The timeout fires, the program
/// moves on believing it has no lock, and when the holder lets go the pool thread takes it for
/// the program's description: held, by nobody's code, until the program exits.
#[test]
fn the_plain_spawn_blocking_timeout_orphans_the_lock() {
    let scratch = Scratch::new("plain");
    let mine = scratch.open();
    let theirs = mine.try_clone().unwrap();
    let rt = runtime();
    let got = rt.block_on(async move {
        let wait = tokio::task::spawn_blocking(move || theirs.lock());
        tokio::time::timeout(Duration::from_millis(50), wait).await
    });
    assert!(got.is_err(), "the holder holds it: the wait times out");
    assert!(
        within_10s(|| scratch.kernel().1.len() == 1),
        "the pool thread still waits, queued behind the holder"
    );
    scratch.holder.unlock().unwrap();
    assert!(
        within_10s(|| {
            let (held, queued) = scratch.kernel();
            held.len() == 1 && queued.is_empty()
        }),
        "the pool thread takes the lock once the holder lets go"
    );
    let (held, _) = scratch.kernel();
    assert_eq!(
        (held[0].kind.as_str(), held[0].access.as_str()),
        ("FLOCK", "WRITE")
    );
    assert_eq!(held[0].pid, i64::from(std::process::id()));
    assert!(!scratch.free(), "nobody else can have it: an orphan");
    // Only the program's own description can let it go, had it known.
    mine.unlock().unwrap();
    assert!(scratch.free());
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// lockfair's async acquire with a deadline: timed out, it leaves no request queued, no lock
/// held once the holder lets go, no reference to the description and no descriptor.
#[test]
fn a_timed_out_lock_within_leaves_nothing_behind() {
    let scratch = Scratch::new("within");
    let mine = Arc::new(scratch.open());
    let descriptors = scratch.descriptors();
    let rt = runtime();
    let got = rt.block_on(lock_within(&mine, Duration::from_millis(50)));
    assert_eq!(got, Err(Errno::ETIMEDOUT));
    let (held, queued) = scratch.kernel();
    assert_eq!((held.len(), queued.len()), (1, 0), "{held:?} {queued:?}");
    scratch.holder.unlock().unwrap();
    assert!(scratch.free(), "nobody took it behind the program's back");
    assert!(
        within_10s(|| Arc::strong_count(&mine) == 1),
        "the pool let go"
    );
    assert_eq!(
        scratch.descriptors(),
        descriptors,
        "no descriptor left open"
    );
    assert_eq!(scratch.kernel(), (Vec::new(), Vec::new()));
    // And once the lock is free, the same call takes it.
    assert_eq!(
        rt.block_on(lock_within(&mine, Duration::from_secs(10))),
        Ok(())
    );
    assert!(!scratch.free());
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// Dropped while its pool thread is queued in the kernel, an attempt gets the thread out at
/// once: the queue is empty as soon as the drop returns.
#[test]
fn a_dropped_attempt_takes_its_thread_out_of_the_queue() {
    let scratch = Scratch::new("dropped");
    let mine = Arc::new(scratch.open());
    let rt = runtime();
    let attempt = {
        let _entered = rt.enter();
        Attempt::start(&mine, &Arc::new(PoolCpu::default()))
    };
    assert!(within_10s(|| scratch.kernel().1.len() == 1), "queued");
    drop(attempt);
    assert_eq!(scratch.kernel().1, Vec::new(), "out of the queue");
    scratch.holder.unlock().unwrap();
    assert!(scratch.free());
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// A grant that arrived before the drop but was never collected is given back by the drop.
#[test]
fn a_dropped_attempt_gives_back_a_grant_nobody_collected() {
    let scratch = Scratch::new("uncollected");
    scratch.holder.unlock().unwrap();
    let mine = Arc::new(scratch.open());
    let rt = runtime();
    let attempt = {
        let _entered = rt.enter();
        Attempt::start(&mine, &Arc::new(PoolCpu::default()))
    };
    assert!(within_10s(|| !scratch.free()), "granted");
    drop(attempt);
    assert!(scratch.free(), "given back");
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// The pool thread's side of the race a deadline can lose: its waiter left (without a signal
/// reaching it) while it was queued; granted later, it gives the lock straight back.
#[test]
fn a_pool_thread_granted_after_its_waiter_left_unlocks_at_once() {
    let scratch = Scratch::new("late-grant");
    let mine = scratch.open();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let shared = Arc::clone(&progress);
    let thread = std::thread::spawn(move || wait_in_pool(&mine, &shared));
    assert!(within_10s(|| scratch.kernel().1.len() == 1), "queued");
    progress.lock().unwrap().abandoned = true;
    scratch.holder.unlock().unwrap();
    assert!(within_10s(|| thread.is_finished()));
    assert_eq!(thread.join().unwrap(), Err(Errno::ECANCELED));
    assert!(scratch.free(), "given back");
}

/// The pool threads' CPU time reaches the contender's account.
#[test]
fn the_pool_threads_cpu_time_is_charged() {
    let scratch = Scratch::new("cpu");
    scratch.holder.unlock().unwrap();
    let mine = Arc::new(scratch.open());
    let cpu = Arc::new(PoolCpu::default());
    let rt = runtime();
    for _ in 0..20 {
        rt.block_on(async { Attempt::start(&mine, &cpu).await })
            .unwrap();
        mine.unlock().unwrap();
    }
    assert!(cpu.total_ns() > 0);
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// The variant's own wait, stopped by the session's abort eventfd (the watchdog's signal cannot
/// reach a runtime): `EINTR`, as an interrupted syscall, and the pool thread is out of the queue.
#[test]
fn an_aborted_acquire_returns_eintr_and_leaves_no_request_queued() {
    use std::os::fd::{AsFd, AsRawFd};

    use nix::sys::eventfd::{EfdFlags, EventFd};

    use crate::arena::Arena;
    use crate::variant::Mode;

    let arena = Arena::create(2).unwrap();
    let fd = arena.file().as_raw_fd();
    let holder = File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .unwrap();
    holder.lock().unwrap();
    let queued = || {
        proc_locks_for(&holder)
            .into_iter()
            .filter(|l| l.blocked)
            .count()
    };
    let abort = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap();
    let ctx = Ctx {
        arena: &arena,
        contender: 1,
        contenders: 2,
        mode: Mode::Free,
        spin: 0,
        abort: abort.as_fd(),
    };
    let got = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| AsyncLock::new(&ctx).unwrap().acquire());
        assert!(within_10s(|| queued() == 1), "queued behind the holder");
        abort.write(1).unwrap();
        assert!(
            within_10s(|| waiter.is_finished()),
            "the abort ends the wait"
        );
        waiter.join().unwrap()
    });
    assert_eq!(got, Err(Errno::EINTR));
    assert_eq!(queued(), 0);
    holder.unlock().unwrap();
}
