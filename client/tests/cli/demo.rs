//! `lockfair-client demo`: every claim of the registry measured here, each with its figure and
//! interval or the one-line reason it could not run, and the report folder telling the same.

use std::process::Command;
use std::time::Duration;

use lockfair::outcome::claims::CLAIMS;
use serde_json::Value;

use crate::util::{TestDir, client_bin, run_within};

/// Claims no machine with two CPUs can contradict: exclusion, handoffs, holder deaths.
const HOLD_EVERYWHERE: &[&str] = &[
    "own-descriptions-exclude",
    "eventfd-hands-over",
    "futex-hands-over",
    "pipe-hands-over",
    "ticket-hands-over",
    "posix-released-at-death",
    "futex-held-at-death",
    "robust-mutex-tells",
    "pipe-end-of-file",
];

#[test]
fn the_demo_measures_every_claim_and_writes_its_report() {
    let dir = TestDir::new("demo");
    let out = dir.path().join("demo");
    let done = run_within(
        Command::new(client_bin())
            .args(["demo", "--json", "--repeats", "3", "--out"])
            .arg(&out),
        Duration::from_secs(300),
    );
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    let json: Value = serde_json::from_slice(&done.stdout).expect("demo --json prints JSON");
    let steps = json["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let registry: Vec<&str> = CLAIMS.iter().map(|c| c.id).collect();
    assert_eq!(ids, registry, "every claim, in the registry's order");
    for s in steps {
        match s["holds"].as_bool() {
            Some(_) => {
                let (lo, median, hi) = (s["lo"].as_f64(), s["median"].as_f64(), s["hi"].as_f64());
                let (lo, median, hi) = (lo.unwrap(), median.unwrap(), hi.unwrap());
                assert!(lo <= median && median <= hi, "{s}");
                assert!(s["repeats"].as_u64().unwrap() >= 1, "{s}");
            }
            None => {
                let why = s["skipped"].as_str().unwrap_or_default();
                assert!(!why.is_empty() && !why.contains('\n'), "one line why: {s}");
            }
        }
    }
    let two_cpus = lockfair::placement::allowed_cpus().len() >= 2;
    for id in HOLD_EVERYWHERE {
        let s = steps.iter().find(|s| s["id"] == *id).unwrap();
        if two_cpus || s["skipped"].is_null() {
            assert_eq!(s["holds"], true, "{id} must hold on any Linux: {s}");
        }
    }
    for file in ["demo.json", "demo.md", "report.html"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let figures = html.find("id=\"figures\"").expect("the figures come first");
    assert!(figures < html.find("id=\"claims\"").unwrap());
    for id in registry {
        assert!(html.contains(&format!("<li id=\"{id}\">")), "{id}");
    }
    assert!(html.contains("id=\"what-to-use\""));
}
