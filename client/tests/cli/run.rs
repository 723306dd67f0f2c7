//! `lockfair-client run` against a real server.

use crate::util::{Server, assert_side_consistent, run_json};

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
    for side in ["server", "client"] {
        let s = &report[side];
        // No mutual exclusion, but the offset protocol still alternates: it completes.
        assert_eq!(s["rounds"], 1000, "{side}");
        assert!(s["overlaps"].is_u64() && s["wrong_reads"].is_u64() && s["whoops"].is_u64());
        assert_side_consistent(s, side);
    }
    let line = server.wait_for_outcome("seed", std::time::Duration::from_secs(5));
    assert!(line.contains("1000 rounds"), "{line}");
}
