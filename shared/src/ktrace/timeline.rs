//! A few milliseconds of a run as one lane per contender, for `timeline.svg`: what the lock
//! did to each contender (waiting in the kernel's queue, holding it for its turn, holding it for
//! nothing: a whoop) and what the scheduler did (running, runnable, sleeping), with the barge
//! chains found by [`super::handoff`].
//!
//! The window starts just before the first barge; without one, when every contender has made
//! its first lock call (or woke up), so that the start-up is not what people see.

use super::event::{DEFERRED, Event, LockCall, LockType, Record};
use crate::outcome::kernel::{BargeChain, CpuState, Lane, LockState, Span, Timeline};

/// How to draw: the longest window (a barge is zoomed on), and whether contenders take turns in ring order (then a
/// grant to anyone but the contender whose turn is next is a whoop).
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub window_ns: u64,
    pub ring: bool,
}

/// A lane's current states, and since when.
#[derive(Clone, Copy, Debug, Default)]
struct Now {
    lock: Option<(LockState, u64)>,
    cpu: Option<(CpuState, u64)>,
}

/// Builds the timeline of the contenders on `tids` from the whole trace.
pub fn build(
    records: &[Record],
    tids: &[i32],
    inode: u64,
    chains: &[BargeChain],
    view: View,
) -> Timeline {
    let (start_ns, window_ns) = window(records, tids, chains, view.window_ns);
    let end_ns = start_ns.saturating_add(window_ns);
    let mut lanes = empty_lanes(tids);
    let mut now = vec![Now::default(); tids.len()];
    let mut next_turn = 0usize;
    let index = |tid: i32| tids.iter().position(|&t| t == tid);
    for rec in records.iter().take_while(|r| r.ts_ns <= end_ns) {
        let clip = (start_ns, end_ns);
        match rec.event {
            Event::Lock(call) if call.inode == inode => {
                let Some(c) = index(rec.tid) else { continue };
                let turn = view.ring.then_some((&mut next_turn, tids.len()));
                let Some(state) = lock_state(call, c, turn) else {
                    continue;
                };
                set(&mut now[c].lock, state, rec.ts_ns, &mut lanes[c].lock, clip);
            }
            Event::Switch {
                prev,
                prev_runnable,
                next,
            } => {
                if let Some(p) = index(prev) {
                    let s = if prev_runnable {
                        CpuState::Runnable
                    } else {
                        CpuState::Sleeping
                    };
                    set(&mut now[p].cpu, Some(s), rec.ts_ns, &mut lanes[p].cpu, clip);
                }
                if let Some(n) = index(next) {
                    let s = Some(CpuState::Running);
                    set(&mut now[n].cpu, s, rec.ts_ns, &mut lanes[n].cpu, clip);
                }
            }
            _ => {}
        }
    }
    for (lane, n) in lanes.iter_mut().zip(&now) {
        push(&mut lane.lock, n.lock, end_ns, (start_ns, end_ns));
        push(&mut lane.cpu, n.cpu, end_ns, (start_ns, end_ns));
    }
    Timeline {
        start_ns,
        end_ns,
        lanes,
        chains: chains_within(chains, start_ns, end_ns),
    }
}

/// One empty lane per contender.
fn empty_lanes(tids: &[i32]) -> Vec<Lane> {
    tids.iter()
        .enumerate()
        .map(|(contender, &tid)| Lane {
            contender,
            tid,
            lock: Vec::new(),
            cpu: Vec::new(),
        })
        .collect()
}

/// What a lock call by contender `c` makes of its lock lane: `Some(None)` it let go, `None` the
/// call changes nothing (refused). With `turn` (the next turn's contender, of how many) the
/// contenders take turns in ring order: a grant out of turn is a whoop.
fn lock_state(
    call: LockCall,
    c: usize,
    turn: Option<(&mut usize, usize)>,
) -> Option<Option<LockState>> {
    Some(match (call.kind, call.ret, turn) {
        (LockType::Unlock, _, _) => None,
        (_, DEFERRED, _) => Some(LockState::Waiting),
        (_, 0, None) => Some(LockState::Holding),
        (_, 0, Some((next, contenders))) if c == *next => {
            *next = (*next + 1) % contenders;
            Some(LockState::Holding)
        }
        (_, 0, Some(_)) => Some(LockState::Whooping),
        _ => return None,
    })
}

/// The barge chains that fall inside the window.
fn chains_within(chains: &[BargeChain], start_ns: u64, end_ns: u64) -> Vec<BargeChain> {
    chains
        .iter()
        .filter(|c| c.unlock_ns.min(c.wake_ns.unwrap_or(u64::MAX)) >= start_ns)
        .filter(|c| c.requeued_ns <= end_ns)
        .copied()
        .collect()
}

/// Ends the current state at `ts` (keeping what falls in the window) and starts `state`.
fn set<S: Copy + PartialEq>(
    now: &mut Option<(S, u64)>,
    state: Option<S>,
    ts: u64,
    spans: &mut Vec<Span<S>>,
    clip: (u64, u64),
) {
    if now.map(|(s, _)| s) == state && state.is_some() {
        return;
    }
    push(spans, *now, ts, clip);
    *now = state.map(|s| (s, ts));
}

fn push<S: Copy>(spans: &mut Vec<Span<S>>, now: Option<(S, u64)>, ts: u64, clip: (u64, u64)) {
    let Some((state, since)) = now else { return };
    let (start_ns, end_ns) = (since.max(clip.0), ts.min(clip.1));
    if start_ns < end_ns {
        spans.push(Span {
            start_ns,
            end_ns,
            state,
        });
    }
}

/// The window's start and length: just before the first barge that fits in the longest window
/// (else the first), zoomed on it; or from when every contender has shown up if there is none.
fn window(records: &[Record], tids: &[i32], chains: &[BargeChain], window_ns: u64) -> (u64, u64) {
    let mut seen = vec![false; tids.len()];
    let mut start = records.first().map_or(0, |r| r.ts_ns);
    for r in records {
        if matches!(r.event, Event::Lock(_) | Event::Waking { .. })
            && let Some(c) = tids.iter().position(|&t| t == r.tid)
        {
            seen[c] = true;
            if seen.iter().all(|&s| s) {
                start = r.ts_ns;
                break;
            }
        }
    }
    let begin = |c: &BargeChain| c.unlock_ns.min(c.wake_ns.unwrap_or(u64::MAX));
    // The first barge that fits in the window whole, else the first.
    let fits = |c: &&BargeChain| c.requeued_ns.saturating_sub(begin(c)) <= window_ns * 4 / 5;
    let after = chains.iter().filter(|c| begin(c) >= start);
    match after.clone().find(fits).or(after.clone().next()) {
        Some(c) => {
            // Zoom so the chain takes a sixth of the picture: its steps stay apart.
            let span = c.requeued_ns.saturating_sub(begin(c)).max(1_000);
            let zoomed = (span * 6).clamp(window_ns / 20, window_ns);
            (begin(c).saturating_sub(zoomed / 10), zoomed)
        }
        None => (start, window_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::tests::decoder;
    use super::super::handoff::rebuild;
    use super::super::text::parse_line;
    use super::*;

    #[test]
    fn the_captured_barges_are_in_the_picture() {
        let text = include_str!("testdata/ofd_split.trace");
        let d = decoder();
        let recs: Vec<Record> = text
            .lines()
            .filter_map(parse_line)
            .filter_map(|l| d.decode(&l))
            .collect();
        let tids = [16906, 16903];
        let h = rebuild(&recs, &tids, 0x9e3);
        let view = View {
            window_ns: 2_000_000,
            ring: false,
        };
        let t = build(&recs, &tids, 0x9e3, &h.chains, view);
        assert!(t.end_ns - t.start_ns <= view.window_ns);
        assert!(!t.chains.is_empty());
        for lane in &t.lanes {
            for s in lane
                .lock
                .iter()
                .map(|s| (s.start_ns, s.end_ns))
                .chain(lane.cpu.iter().map(|s| (s.start_ns, s.end_ns)))
            {
                assert!(t.start_ns <= s.0 && s.0 < s.1 && s.1 <= t.end_ns);
            }
            // spans of one kind never overlap
            for w in lane.lock.windows(2) {
                assert!(w[0].end_ns <= w[1].start_ns);
            }
        }
        let client = &t.lanes[1];
        assert!(client.lock.iter().any(|s| s.state == LockState::Waiting));
        assert!(client.cpu.iter().any(|s| s.state == CpuState::Sleeping));
        assert!(
            t.lanes[0]
                .lock
                .iter()
                .any(|s| s.state == LockState::Holding)
        );
        // The holder never holds while the client holds.
        for a in &t.lanes[0].lock {
            for b in &client.lock {
                let both_hold = a.state != LockState::Waiting && b.state != LockState::Waiting;
                assert!(!both_hold || a.end_ns <= b.start_ns || b.end_ns <= a.start_ns);
            }
        }
    }
}
