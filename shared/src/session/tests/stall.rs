//! A watchdog timeout names the lock's holder only where it is one of this side's peers.

use super::plan;
use crate::arena::Arena;
use crate::session::{ContenderSpec, held_by};
use crate::sys::robust_mutex::RobustMutex;
use crate::variant::{Mode, Variant};

fn spec(peer_pids: Vec<i32>) -> ContenderSpec {
    ContenderSpec {
        variant: Variant::RobustMutex,
        mode: Mode::Turns,
        plan: plan(1, 2, 1),
        spin: 0,
        peer_pids,
        grace_ns: 0,
        nice: None,
    }
}

#[test]
fn a_lock_word_names_its_owner_only_if_the_owner_is_a_peer() {
    let arena = Arena::create(2).unwrap();
    Variant::RobustMutex
        .prepare(&arena, Mode::Turns, 2)
        .unwrap();
    let room = (Variant::RobustMutex.spec().death.robust_mutex.unwrap())(&arena);
    let mutex = RobustMutex::attach(room).unwrap();
    mutex.lock().unwrap();
    let me = std::process::id() as i32;
    // The word holds this thread's TID, which is no peer here: a TID written into the shared
    // arena must not make a side describe some other process.
    assert_eq!(held_by(&spec(vec![]), &arena), None);
    assert_eq!(held_by(&spec(vec![me + 1]), &arena), None);
    let named = held_by(&spec(vec![me]), &arena).expect("a peer is named");
    assert!(
        named.starts_with(&format!("the robust-mutex lock word is held by pid {me} (")),
        "{named}"
    );
    mutex.unlock().unwrap();
    assert_eq!(held_by(&spec(vec![me]), &arena), None, "free: nobody");
}
