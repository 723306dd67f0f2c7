//! `--kernel-trace` for one session: a tracefs recording of the contenders' threads and the
//! arena's inode, taken from just before the start line to the end, and rebuilt into the
//! kernel's account of the run ([`KernelTrace`]).
//!
//! Where tracing is not possible (no right, no tracefs) the run goes on without it and the
//! report says why in one line; a failure mid-run does the same. The tracefs instance goes away
//! with the recorder on every path.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::arena::Arena;
use crate::errors::error_chain;
use crate::ktrace::timeline::{self, View};
use crate::ktrace::{Recorder, TraceError, buffer_kb_for, handoff, kernel_figures};
use crate::outcome::kernel::{KernelRun, KernelTrace};
use crate::variant::{Mode, Variant};

/// How long to wait for every contender to publish its thread id.
const TID_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest stretch `timeline.svg` shows.
const TIMELINE_NS: u64 = 3_000_000;

/// Why a prepared trace was not armed: the run goes on without it, and says why.
#[derive(Debug, Error)]
enum ArmError {
    #[error("the run stopped before it started")]
    Stopped,
    #[error("contender {contender} did not publish its thread id within {}s", TID_TIMEOUT.as_secs())]
    NoThreadId { contender: usize },
    #[error("cannot stat the arena")]
    Stat(#[source] nix::errno::Errno),
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A session's kernel trace in progress, or why there is none.
#[derive(Debug)]
pub(super) struct Tracing {
    recorder: Option<Recorder>,
    note: Option<String>,
    tids: Vec<i32>,
    inode: u64,
    ring: bool,
}

/// Events a run is expected to record, to size the ring buffer: a lock call, an unlock, a few
/// wakeups and switches per turn; a whoop storm per turn for the take-and-look file locks.
fn expected_events(variant: Variant, mode: Mode, rounds: u64, contenders: usize) -> u64 {
    // A storm lasts until the scheduler tick preempts the holder: thousands of lock calls.
    let per_turn = if mode == Mode::Turns && variant.spec().whoops_in_storms {
        16_384
    } else {
        16
    };
    rounds
        .saturating_mul(contenders as u64)
        .saturating_mul(per_turn)
}

impl Tracing {
    /// Prepares the instance (nothing recorded yet).
    pub(super) fn prepare(variant: Variant, mode: Mode, rounds: u64, contenders: usize) -> Self {
        // Ctrl-C then stops the run through its normal exit, which removes the instance.
        crate::sys::signal::install_stop_handler();
        let kb = buffer_kb_for(expected_events(variant, mode, rounds, contenders));
        let (recorder, note) = match Recorder::prepare(kb) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(unavailable(&e))),
        };
        Tracing {
            recorder,
            note,
            tids: Vec::new(),
            inode: 0,
            ring: mode == Mode::Turns && variant.spec().whoops_in_storms,
        }
    }

    /// Starts recording once every contender published its thread (ours is `own_tid`, which
    /// it publishes itself when its side starts). Gives up, with a note, if one never does.
    pub(super) fn arm(&mut self, arena: &Arena, own: usize, own_tid: i32) {
        let Some(recorder) = self.recorder.as_mut() else {
            return;
        };
        let armed = wait_for_tids(arena, own, own_tid).and_then(|tids| {
            let inode = nix::sys::stat::fstat(arena.file())
                .map_err(ArmError::Stat)?
                .st_ino;
            recorder.arm(inode, &tids)?;
            Ok((tids, inode))
        });
        match armed {
            Ok((tids, inode)) => (self.tids, self.inode) = (tids, inode),
            Err(why) => self.fail(&why),
        }
    }

    fn fail(&mut self, why: &ArmError) {
        self.recorder = None;
        self.note = Some(format!("kernel trace abandoned: {}", error_chain(why)));
    }

    /// Stops recording and rebuilds the kernel's account of the run.
    pub(super) fn finish(mut self) -> KernelTrace {
        let Some(recorder) = self.recorder.take() else {
            return KernelTrace::Unavailable(self.note.unwrap_or_default());
        };
        match recorder.finish() {
            Ok(cap) => {
                let h = handoff::rebuild(&cap.records, &self.tids, self.inode);
                let view = View {
                    window_ns: TIMELINE_NS,
                    ring: self.ring,
                };
                let timeline =
                    timeline::build(&cap.records, &self.tids, self.inode, &h.chains, view);
                KernelTrace::Recorded(Box::new(KernelRun {
                    figures: kernel_figures(&h, cap.lost_events),
                    timeline,
                }))
            }
            Err(e) => KernelTrace::Unavailable(format!("kernel trace lost: {}", error_chain(&e))),
        }
    }
}

/// The one line a run without its trace prints.
fn unavailable(e: &TraceError) -> String {
    if e.is_unavailable() {
        format!("no kernel trace: {}", error_chain(e))
    } else {
        format!("no kernel trace, tracefs failed: {}", error_chain(e))
    }
}

/// Every contender's thread id from its arena slot, ours filled in.
fn wait_for_tids(arena: &Arena, own: usize, own_tid: i32) -> Result<Vec<i32>, ArmError> {
    let n = arena.header().contenders.load(Ordering::Acquire) as usize;
    let deadline = Instant::now() + TID_TIMEOUT;
    loop {
        let tids: Vec<i32> = (0..n)
            .map(|c| {
                if c == own {
                    own_tid
                } else {
                    arena.slot(c).tid.load(Ordering::Acquire) as i32
                }
            })
            .collect();
        if let Some(missing) = tids.iter().position(|&t| t <= 0) {
            if arena.header().stopped().is_some() {
                return Err(ArmError::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(ArmError::NoThreadId { contender: missing });
            }
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        return Ok(tids);
    }
}
