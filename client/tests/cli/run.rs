//! `lockfair-client run` against a real server.

use crate::util::{HANG, Server, assert_side_consistent, run_json};

#[test]
fn ofd_takes_every_turn_with_mutual_exclusion() {
    let server = Server::start();
    let report = run_json(&server, &["--variant", "ofd", "--rounds", "1000"]);
    assert_eq!(report["variant"], "ofd");
    assert_eq!(report["rounds"], 1000);
    for side in ["server", "client"] {
        let s = &report[side];
        assert_eq!(s["rounds"], 1000, "{side} took every turn");
        assert_eq!(
            s["overlaps"], 0,
            "{side}: OFD locks on own descriptions exclude"
        );
        assert_eq!(s["wrong_reads"], 0, "{side}");
        assert_eq!(s["end"], "completed");
        assert_side_consistent(s, side);
    }
    assert_eq!(report["server"]["role"], "writer");
    assert_eq!(report["client"]["role"], "reader");
}

#[test]
fn seed_runs_to_the_end_and_reports_what_it_saw() {
    let server = Server::start();
    let report = run_json(&server, &["--variant", "seed", "--rounds", "1000"]);
    assert_eq!(report["rounds"], 1000);
    for side in ["server", "client"] {
        let s = &report[side];
        // The turn lives in the shared file offset, which alternates the sides by itself: every
        // turn is taken, and every line the reader checks is the one the writer wrote.
        assert_eq!(s["rounds"], 1000, "{side} took every turn");
        assert_eq!(s["end"], "completed", "{side}");
        assert_eq!(
            s["wrong_reads"], 0,
            "{side}: the offset keeps the turns in order"
        );
        assert_side_consistent(s, side);
    }
    // But the lock excludes nothing: both sides lock through one open file description, so
    // they are one lock owner, and over 1000 turns (each side retrying the lock while the other
    // holds it) they are seen inside together. The kernel's side of this: `probe.rs`.
    let overlaps = |side: &str| report[side]["overlaps"].as_u64().unwrap();
    assert!(
        overlaps("server") + overlaps("client") > 0,
        "the seed's passed descriptor gave mutual exclusion: {report}"
    );
    // The server's own line says the same as the JSON.
    let line = server.wait_for_outcome("seed", HANG);
    let s = &report["server"];
    for said in [
        "1000 rounds".to_string(),
        format!("{} whoops", s["whoops"]),
        format!("{} overlaps", s["overlaps"]),
        "0 wrong reads".to_string(),
        "(completed)".to_string(),
    ] {
        assert!(line.contains(&said), "{said:?} missing from {line:?}");
    }
}
