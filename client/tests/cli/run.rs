//! `lockfair-client run` against a real server.

use std::time::Duration;

use crate::util::{HANG, Server, assert_side_consistent, client, run_json};

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

/// `run`'s text, as a person sees it.
fn run_text(server: &Server, args: &[&str]) -> String {
    let socket = server.socket.to_str().unwrap().to_string();
    let mut all: Vec<&str> = vec!["run", "--socket", &socket];
    all.extend_from_slice(args);
    let out = client(&all, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "lockfair-client {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// README's own example, with a short limit: on one CPU each ofd turn waits for a scheduler
/// tick, so 10,000 rounds never fit in 0.2 s. The run says so in words, with the counts, and
/// `--json` carries the limit.
#[test]
fn a_run_that_stops_at_its_deadline_says_so_in_words() {
    let server = Server::start();
    let args = [
        "--variant",
        "ofd",
        "--rounds",
        "10000",
        "--placement",
        "same-cpu",
        "--max-seconds",
        "0.2",
    ];
    let text = run_text(&server, &args);
    // The prose is wrapped for the terminal: read it as one line.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = flat
        .find("Stopped at the --max-seconds limit (0.2 s) after ")
        .unwrap_or_else(|| panic!("no stop line in:\n{text}"));
    assert!(
        flat[start..].contains(" of 10,000 rounds; the figures above are over those "),
        "{text}"
    );
    assert!(
        flat[start..].contains("(or fewer --rounds) to finish."),
        "{text}"
    );
    // The turns-mode figures that mean nothing are a dash, with the reason.
    assert!(
        flat.contains("Jain's fairness index –, barging rate –"),
        "{text}"
    );
    assert!(
        flat.contains("–: in turns mode the protocol fixes the order"),
        "{text}"
    );
    let json = run_json(&server, &args);
    assert_eq!(json["max_seconds"], 0.2);
    assert!(json["client"]["rounds"].as_u64().unwrap() < 10_000);
    assert!(json["jain_index"].is_number() && json["barging_rate"].is_number());
}

/// A run that did all its rounds prints no stop line; `--wide` adds the tail columns.
#[test]
fn a_complete_run_says_nothing_of_stopping_and_wide_shows_every_column() {
    let server = Server::start();
    let args = [
        "--variant",
        "pipe",
        "--rounds",
        "200",
        "--max-seconds",
        "60",
    ];
    let text = run_text(&server, &args);
    assert!(!text.contains("Stopped"), "{text}");
    let header = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("contender"))
            .unwrap()
            .to_string()
    };
    let narrow = header(&text);
    assert!(
        narrow.contains("handoff p50") && !narrow.contains("handoff p99"),
        "{narrow}"
    );
    assert!(
        text.contains("(with --wide: role, handoff p99, handoff max.)"),
        "{text}"
    );
    let mut wide_args = args.to_vec();
    wide_args.push("--wide");
    let wide = header(&run_text(&server, &wide_args));
    for column in ["role", "handoff p99", "handoff max"] {
        assert!(wide.contains(column), "{wide}");
    }
}
