//! `lockfair-client probe`: the kernel's own answers, no timing involved.

use crate::util::{HANG, client};

#[test]
fn the_passed_descriptor_shares_one_lock_owner_and_a_reopened_one_does_not() {
    let out = client(&["probe", "--json"], HANG);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let passed = &r["passed_fd"];
    assert_eq!(
        passed["getlk_conflict"],
        serde_json::Value::Null,
        "no conflict on the shared description"
    );
    assert_eq!(
        passed["trylock_errno"],
        serde_json::Value::Null,
        "B's F_OFD_SETLK is granted"
    );
    assert_eq!(passed["excluded"], false);
    let locks = passed["proc_locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "one OFDLCK entry: {locks:?}");
    assert_eq!(locks[0]["kind"], "OFDLCK");
    assert_eq!(locks[0]["pid"], -1);

    let own = &r["reopened"];
    assert_eq!(own["trylock_errno"], "EAGAIN", "B is refused");
    assert_eq!(
        own["getlk_conflict"]["pid"], -1,
        "the holder is an OFD lock"
    );
    assert_eq!(own["getlk_conflict"]["mode"], "exclusive");
    assert_eq!(own["excluded"], true);
    let held = own["proc_locks"].as_array().unwrap();
    assert_eq!(held.len(), 1, "one holder: {held:?}");
    let waiting = own["proc_locks_while_waiting"].as_array().unwrap();
    assert!(
        waiting
            .iter()
            .any(|l| l["blocked"] == true && l["kind"] == "OFDLCK"),
        "the kernel lists B's blocked F_OFD_SETLKW: {waiting:?}"
    );
    assert_eq!(own["waiter_granted_after_unlock"], true);
}

#[test]
fn the_text_report_prints_the_proc_locks_lines() {
    let out = client(&["probe"], HANG);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("OFDLCK ADVISORY"), "{text}");
    assert!(text.contains("-> OFDLCK"), "{text}");
    assert!(text.contains("refused with EAGAIN"), "{text}");
}
