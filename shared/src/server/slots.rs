//! Session slots: `--max-sessions` in all, and a quota per uid, so that one uid let in with
//! `--allow-uid` cannot take every slot.
//!
//! A session holds its [`Slot`] from admission until it ends; the slot gives back both counts when
//! dropped, on whatever path the session takes (refused after the check, failed at adopt, its
//! client gone, the server shutting down).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admission::Refusal;

/// The sessions a uid other than the server's own may run by default: a quarter of all, at
/// least one.
pub fn default_quota(max_sessions: usize) -> usize {
    max_sessions.div_ceil(4).max(1)
}

/// The server's slots, in all and per uid.
#[derive(Debug)]
pub(super) struct Slots {
    total: Arc<Semaphore>,
    max_sessions: usize,
    own_uid: u32,
    /// `--max-sessions-per-uid`: the same quota for every uid, ours included.
    per_uid: Option<usize>,
    /// Sessions running per uid; a uid with none has no entry.
    held: Arc<Mutex<HashMap<u32, usize>>>,
}

/// One running session's place: released when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    _uid: UidCount,
}

/// One session counted against its uid.
#[derive(Debug)]
struct UidCount {
    uid: u32,
    held: Arc<Mutex<HashMap<u32, usize>>>,
}

impl Slots {
    pub(super) fn new(max_sessions: usize, per_uid: Option<usize>, own_uid: u32) -> Slots {
        Slots {
            total: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
            own_uid,
            per_uid,
            held: Arc::default(),
        }
    }

    /// How many sessions `uid` may run at once: without `--max-sessions-per-uid`, our own uid
    /// is bounded only by `--max-sessions`.
    pub(super) fn quota_of(&self, uid: u32) -> usize {
        match self.per_uid {
            Some(quota) => quota,
            None if uid == self.own_uid => self.max_sessions,
            None => default_quota(self.max_sessions),
        }
    }

    /// A slot for a session of `uid`, unless the server is full or the uid is at its quota. A
    /// full server is named first: it is what our own uid meets, its quota being all slots.
    pub(super) fn take(&self, uid: u32) -> Result<Slot, Refusal> {
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy(self.max_sessions))?;
        Ok(Slot {
            _permit: permit,
            _uid: self.count(uid)?,
        })
    }

    fn count(&self, uid: u32) -> Result<UidCount, Refusal> {
        let quota = self.quota_of(uid);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let running = held.entry(uid).or_insert(0);
        if *running >= quota {
            return Err(Refusal::Quota { uid, quota });
        }
        *running += 1;
        Ok(UidCount {
            uid,
            held: self.held.clone(),
        })
    }

    /// Sessions `uid` runs now.
    #[cfg(test)]
    fn running(&self, uid: u32) -> usize {
        let held = self.held.lock().unwrap();
        held.get(&uid).copied().unwrap_or(0)
    }
}

impl Drop for UidCount {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = held.get_mut(&self.uid) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: u32 = 0;
    const OTHER: u32 = 1000;

    #[test]
    fn another_uid_takes_up_to_its_quota_then_is_refused_until_one_ends() {
        let slots = Slots::new(8, None, OURS);
        assert_eq!(slots.quota_of(OTHER), 2);
        let first = slots.take(OTHER).unwrap();
        let _second = slots.take(OTHER).unwrap();
        let refused = slots.take(OTHER).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "uid 1000 already runs 2 sessions (its quota; --max-sessions-per-uid); try again later"
        );
        // Others are counted apart.
        let _third = slots.take(OTHER + 1).unwrap();
        drop(first);
        assert_eq!(slots.running(OTHER), 1);
        let _again = slots.take(OTHER).unwrap();
        assert_eq!(slots.running(OTHER), 2);
    }

    #[test]
    fn our_own_uid_is_bounded_only_by_max_sessions() {
        let slots = Slots::new(8, None, OURS);
        let held: Vec<Slot> = (0..8).map(|_| slots.take(OURS).unwrap()).collect();
        assert!(matches!(slots.take(OURS), Err(Refusal::Busy(8))));
        assert!(matches!(slots.take(OTHER), Err(Refusal::Busy(8))));
        drop(held);
        assert_eq!(slots.running(OURS), 0);
        assert!(slots.held.lock().unwrap().is_empty(), "no entry is left");
    }

    #[test]
    fn refusals_keep_neither_count() {
        let slots = Slots::new(2, None, OURS);
        assert_eq!(slots.quota_of(OTHER), 1);
        let full: Vec<Slot> = (0..2).map(|_| slots.take(OURS).unwrap()).collect();
        assert!(matches!(slots.take(OTHER), Err(Refusal::Busy(2))));
        assert_eq!(slots.running(OTHER), 0);
        drop(full);
        // Refused for its quota, a uid gives back the slot it took on the way.
        let _one = slots.take(OTHER).unwrap();
        for _ in 0..3 {
            assert!(matches!(slots.take(OTHER), Err(Refusal::Quota { .. })));
        }
        let _ours = slots.take(OURS).unwrap();
        assert_eq!(slots.running(OTHER), 1);
    }

    #[test]
    fn an_explicit_quota_applies_to_every_uid_and_the_text_counts_right() {
        let slots = Slots::new(8, Some(1), OURS);
        let _ours = slots.take(OURS).unwrap();
        assert_eq!(
            slots.take(OURS).unwrap_err().to_string(),
            "uid 0 already runs 1 session (its quota; --max-sessions-per-uid); try again later"
        );
        let _other = slots.take(OTHER).unwrap();
        assert!(matches!(
            slots.take(OTHER),
            Err(Refusal::Quota {
                uid: OTHER,
                quota: 1
            })
        ));
    }

    #[test]
    fn the_default_quota_is_a_quarter_rounded_up_and_at_least_one() {
        for (max, quota) in [(1, 1), (2, 1), (4, 1), (5, 2), (64, 16), (1024, 256)] {
            assert_eq!(default_quota(max), quota, "--max-sessions {max}");
        }
    }
}
