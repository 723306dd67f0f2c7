//! The kernel's account of every handoff, rebuilt from the traced events in their order.
//!
//! Per contender: lock requests, grants (`ret=0`), blocks (`ret=1`, `FILE_LOCK_DEFERRED`),
//! refusals, unlocks, and the wakeups it received from another contender. Across contenders:
//! - a **barge**, confirmed by the kernel: a queued waiter is released by another contender's
//!   unlock, a third party's (often the releaser's own) request on an overlapping range is granted
//!   before the waiter retries, and the waiter's retry is queued again;
//! - a **regrant over a waiter**: a grant to the contender that released last while another
//!   contender was still queued, the kernel's version of lockfair's waiting-bit proxy;
//! - the **wake-to-run latency**: from another contender's `sched_waking` of a contender to the
//!   `sched_switch` that puts it back on a CPU (a wakeup it absorbed while still running is none).

use super::event::{DEFERRED, Event, LockCall, LockType, Record};
use crate::measure::new_histogram;
use crate::outcome::kernel::{BargeChain, ContenderCounts, LockCounts};
use hdrhistogram::Histogram;

/// Everything rebuilt from one trace.
#[derive(Clone, Debug)]
pub struct Handoffs {
    pub contenders: Vec<ContenderCounts>,
    pub wake_to_run: Histogram<u64>,
    pub chains: Vec<BargeChain>,
    /// Lock events on the arena seen at all (0 for the explicit handoffs).
    pub lock_events: u64,
}

/// A queued request and what happened to it since.
#[derive(Clone, Copy, Debug)]
struct Queued {
    call: LockCall,
    released: Option<(usize, u64)>,
    woken_ns: Option<u64>,
    beaten: Option<(usize, u64)>,
}

#[derive(Clone, Debug, Default)]
struct ThreadState {
    queued: Option<Queued>,
    woken_at: Option<u64>,
}

/// Rebuilds the handoffs of the contenders running on `tids` (in contender order) from
/// `records` in the kernel's order. Lock events on other inodes than `inode` are ignored.
pub fn rebuild(records: &[Record], tids: &[i32], inode: u64) -> Handoffs {
    let mut r = Rebuild {
        tids,
        inode,
        state: vec![ThreadState::default(); tids.len()],
        out: Handoffs {
            contenders: tids
                .iter()
                .enumerate()
                .map(|(c, &tid)| ContenderCounts {
                    contender: c as u16,
                    tid,
                    ..Default::default()
                })
                .collect(),
            wake_to_run: new_histogram(),
            chains: Vec::new(),
            lock_events: 0,
        },
        last_unlocker: None,
    };
    for rec in records {
        r.apply(rec);
    }
    r.out
}

struct Rebuild<'a> {
    tids: &'a [i32],
    inode: u64,
    state: Vec<ThreadState>,
    out: Handoffs,
    last_unlocker: Option<usize>,
}

impl Rebuild<'_> {
    fn index(&self, tid: i32) -> Option<usize> {
        self.tids.iter().position(|&t| t == tid)
    }

    fn apply(&mut self, rec: &Record) {
        if let (Some(c), false) = (
            self.index(rec.tid),
            matches!(rec.event, Event::Switch { .. }),
        ) {
            // Still running after a wakeup: it never slept, so that wakeup put nothing on a CPU.
            self.state[c].woken_at = None;
        }
        match rec.event {
            Event::Lock(call) if call.inode == self.inode => {
                if let Some(c) = self.index(rec.tid) {
                    self.out.lock_events += 1;
                    self.lock(c, call, rec.ts_ns);
                }
            }
            Event::Lock(_) => {}
            Event::Waking { woken } => self.waking(rec.tid, woken, rec.ts_ns),
            Event::Switch {
                prev,
                prev_runnable,
                next,
            } => self.switch(prev, prev_runnable, next, rec.ts_ns),
        }
    }

    fn lock(&mut self, c: usize, call: LockCall, ts: u64) {
        if call.kind == LockType::Unlock {
            self.out.contenders[c].counts.unlocks += 1;
            self.last_unlocker = Some(c);
            for (w, s) in self.state.iter_mut().enumerate() {
                if let Some(q) = s
                    .queued
                    .as_mut()
                    .filter(|q| w != c && q.call.overlaps(&call))
                {
                    q.released.get_or_insert((c, ts));
                }
            }
            return;
        }
        self.out.contenders[c].counts.lock_requests += 1;
        match call.ret {
            0 => self.granted(c, call, ts),
            DEFERRED => self.queued(c, call, ts),
            _ => {
                self.out.contenders[c].counts.refused += 1;
                self.state[c].queued = None;
            }
        }
    }

    fn granted(&mut self, c: usize, call: LockCall, ts: u64) {
        self.out.contenders[c].counts.grants += 1;
        let mut over_waiter = false;
        for (w, s) in self.state.iter_mut().enumerate() {
            let Some(q) = s
                .queued
                .as_mut()
                .filter(|q| w != c && q.call.overlaps(&call))
            else {
                continue;
            };
            over_waiter = true;
            if q.released.is_some() {
                q.beaten.get_or_insert((c, ts));
            }
        }
        if over_waiter && self.last_unlocker == Some(c) {
            self.out.contenders[c].counts.regrants_over_waiter += 1;
        }
        self.state[c].queued = None;
    }

    fn queued(&mut self, c: usize, call: LockCall, ts: u64) {
        self.out.contenders[c].counts.blocks += 1;
        let before = self.state[c].queued.take();
        if let Some(Queued {
            released: Some((unlocker, unlock_ns)),
            beaten: Some((granted_to, grant_ns)),
            woken_ns,
            ..
        }) = before
        {
            self.out.contenders[c].counts.barges += 1;
            self.out.chains.push(BargeChain {
                waiter: c,
                unlocker,
                unlock_ns,
                wake_ns: woken_ns,
                granted_to,
                grant_ns,
                requeued_ns: ts,
            });
        }
        self.state[c].queued = Some(Queued {
            call,
            released: None,
            woken_ns: None,
            beaten: None,
        });
    }

    fn waking(&mut self, waker: i32, woken: i32, ts: u64) {
        let (Some(_), Some(w)) = (self.index(waker), self.index(woken)) else {
            return;
        };
        if waker == woken {
            return;
        }
        self.out.contenders[w].counts.wakeups += 1;
        let s = &mut self.state[w];
        if let Some(q) = s.queued.as_mut() {
            self.out.contenders[w].counts.wakeups_of_queued += 1;
            q.woken_ns.get_or_insert(ts);
        }
        // Woken on its way to sleep (still on its CPU) counts too: it runs again only when
        // switched back in.
        s.woken_at.get_or_insert(ts);
    }

    fn switch(&mut self, prev: i32, prev_runnable: bool, next: i32, ts: u64) {
        if let Some(p) = self.index(prev)
            && prev_runnable
        {
            // Preempted: any wakeup before this was absorbed while it ran.
            self.state[p].woken_at = None;
        }
        if let Some(n) = self.index(next)
            && let Some(t0) = self.state[n].woken_at.take()
        {
            let _ = self.out.wake_to_run.record(ts.saturating_sub(t0));
        }
    }
}

impl Handoffs {
    /// Every contender's counts added up.
    pub fn totals(&self) -> LockCounts {
        self.contenders
            .iter()
            .fold(LockCounts::default(), |mut sum, c| {
                sum.add(&c.counts);
                sum
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::tests::decoder;
    use super::super::event::{LockApi, Record};
    use super::super::text::parse_line;
    use super::*;

    const CLIENT: i32 = 16903;
    const SERVER: i32 = 16906;
    const INODE: u64 = 0x9e3;

    fn records(text: &str) -> Vec<Record> {
        let d = decoder();
        text.lines()
            .filter_map(parse_line)
            .filter_map(|l| d.decode(&l))
            .collect()
    }

    /// The captured excerpt of a 20-round `ofd` split run: the server (contender 0) and the
    /// client (contender 1), where the server's unlocks release the queued client six times in a
    /// row and its own next request wins each time.
    fn captured() -> Handoffs {
        let recs = records(include_str!("testdata/ofd_split.trace"));
        rebuild(&recs, &[SERVER, CLIENT], INODE)
    }

    #[test]
    fn counts_match_the_raw_lines_of_the_capture() {
        let text = include_str!("testdata/ofd_split.trace");
        let h = captured();
        let lines = |tid: i32, needle: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("-{tid} ")) && l.contains("posix_lock_inode"))
                .filter(|l| l.contains(needle))
                .count() as u64
        };
        for (c, tid) in [(0, SERVER), (1, CLIENT)] {
            let k = &h.contenders[c];
            assert_eq!(k.counts.unlocks, lines(tid, "F_UNLCK"), "contender {c}");
            assert_eq!(
                k.counts.lock_requests,
                lines(tid, "F_WRLCK"),
                "contender {c}"
            );
            assert_eq!(
                k.counts.blocks,
                lines(tid, "F_WRLCK fl_start=0 fl_end=9223372036854775807 ret=1")
            );
            assert_eq!(k.counts.grants + k.counts.blocks, k.counts.lock_requests);
            assert_eq!(k.counts.refused, 0);
        }
        assert!(h.lock_events > 0);
    }

    #[test]
    fn the_capture_shows_the_releaser_barging_back_in() {
        let h = captured();
        let client = &h.contenders[1];
        // Every re-queue of the client after the first block was a kernel-confirmed barge.
        assert!(client.counts.barges >= 5, "{client:?}");
        assert_eq!(client.counts.barges, client.counts.blocks - 1);
        assert_eq!(h.chains.len() as u64, h.totals().barges);
        for ch in &h.chains {
            assert_eq!((ch.waiter, ch.unlocker, ch.granted_to), (1, 0, 0));
            assert!(ch.unlock_ns <= ch.grant_ns && ch.grant_ns <= ch.requeued_ns);
            let wake = ch.wake_ns.expect("the queued client had gone to sleep");
            // The unlock wakes the waiter from inside the call, before its own event fires.
            assert!(wake <= ch.unlock_ns && wake <= ch.grant_ns, "{ch:?}");
        }
        assert!(client.counts.wakeups >= client.counts.wakeups_of_queued);
        assert!(client.counts.wakeups_of_queued >= client.counts.barges);
        assert!(h.contenders[0].counts.regrants_over_waiter >= client.counts.barges);
        assert!(
            h.wake_to_run.len() >= client.counts.barges,
            "wake-to-run sampled per wakeup"
        );
    }

    fn call(kind: LockType, ret: i32, start: i64, end: i64) -> Event {
        Event::Lock(LockCall {
            api: LockApi::Posix,
            inode: 7,
            kind,
            blocked_by: ret == DEFERRED,
            start,
            end,
            ret,
        })
    }

    fn rec(ts_ns: u64, tid: i32, event: Event) -> Record {
        Record {
            ts_ns,
            cpu: 0,
            tid,
            event,
        }
    }

    #[test]
    fn a_released_waiter_that_wins_its_retry_is_no_barge() {
        use LockType::*;
        let recs = [
            rec(1, 1, call(Write, 0, 0, 9)),
            rec(2, 2, call(Write, DEFERRED, 0, 9)),
            rec(
                3,
                2,
                Event::Switch {
                    prev: 2,
                    prev_runnable: false,
                    next: 0,
                },
            ),
            rec(4, 1, call(Unlock, 0, 0, 9)),
            rec(5, 1, Event::Waking { woken: 2 }),
            // the releaser asks for another range: no conflict with the waiter's
            rec(6, 1, call(Write, 0, 20, 29)),
            rec(
                9,
                0,
                Event::Switch {
                    prev: 0,
                    prev_runnable: true,
                    next: 2,
                },
            ),
            rec(10, 2, call(Write, 0, 0, 9)),
        ];
        let h = rebuild(&recs, &[1, 2], 7);
        assert_eq!(h.totals().barges, 0);
        assert_eq!(h.contenders[1].counts.grants, 1);
        assert_eq!(h.contenders[1].counts.wakeups, 1);
        assert_eq!(h.contenders[1].counts.wakeups_of_queued, 1);
        assert_eq!(h.wake_to_run.len(), 1);
        assert_eq!(h.wake_to_run.max(), h.wake_to_run.highest_equivalent(4));
    }

    #[test]
    fn other_inodes_and_threads_are_ignored() {
        let mut other = call(LockType::Write, 0, 0, 9);
        if let Event::Lock(c) = &mut other {
            c.inode = 8;
        }
        let recs = [rec(1, 1, other), rec(2, 3, call(LockType::Write, 0, 0, 9))];
        let h = rebuild(&recs, &[1, 2], 7);
        assert_eq!(h.lock_events, 0);
        assert_eq!(h.totals().lock_requests, 0);
    }
}
