//! `compare --baseline DIR`: two small real runs, the second with a variant the first did not
//! run; the ratios and the "real" marks must follow from the two runs' own summaries.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::{TestDir, compare};

fn small_run(runtime: &Path, variants: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--variants",
        variants,
        "--placements",
        "same-cpu",
        "--rounds",
        "200",
        "--max-seconds",
        "0.2",
        "--repeats",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let result = compare(runtime, &args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    result
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// The summary row of `variant` on same-cpu.
fn row<'a>(summary: &'a Value, variant: &str) -> &'a Value {
    summary["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["variant"] == variant && r["placement"] == "same-cpu")
        .unwrap_or_else(|| panic!("{variant} in the summary"))
}

#[test]
fn a_run_against_a_baseline_gives_ratios_and_real_changes_by_the_stated_rule() {
    let runtime = TestDir::new("base-rt");
    let dir = TestDir::new("base");
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    small_run(runtime.path(), "ofd,pipe", &old, &[]);
    let out = small_run(
        runtime.path(),
        "ofd,pipe,eventfd",
        &new,
        &["--baseline", old.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Against the baseline"), "{text}");
    assert!(
        text.contains("repeat ranges (min–max) do not overlap"),
        "the rule is stated: {text}"
    );
    assert!(
        text.contains("Only in this run: eventfd same-cpu."),
        "{text}"
    );

    let (old_json, new_json) = (summary(&old), summary(&new));
    let cmp = &new_json["baseline"];
    assert_eq!(cmp["dir"], old.to_str().unwrap());
    assert_eq!(
        cmp["only_new"],
        serde_json::json!([{"variant": "eventfd", "placement": "same-cpu"}])
    );
    assert_eq!(cmp["only_old"], serde_json::json!([]));
    let cells = cmp["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "ofd and pipe in both runs");
    for cell in cells {
        let variant = cell["variant"].as_str().unwrap();
        let changes = cell["changes"].as_array().unwrap();
        let metrics: Vec<&str> = changes
            .iter()
            .map(|c| c["metric"].as_str().unwrap())
            .collect();
        assert_eq!(
            metrics,
            ["rounds_per_sec", "round_trip_p50_ns", "whoops_per_round"]
        );
        for c in changes {
            let metric = c["metric"].as_str().unwrap();
            let (o, n) = (
                &row(&old_json, variant)[metric],
                &row(&new_json, variant)[metric],
            );
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
            assert_eq!(&c["old"], o, "{variant} {metric}: the old run's own figure");
            assert_eq!(&c["new"], n, "{variant} {metric}: this run's own figure");
            if f(o, "median") == 0.0 {
                assert!(c["ratio"].is_null());
            } else {
                // JSON keeps the digits, not always the last bit (serde_json's fast parser).
                let want = f(n, "median") / f(o, "median");
                let got = c["ratio"].as_f64().unwrap();
                assert!((got - want).abs() <= want.abs() * 1e-12, "{got} vs {want}");
            }
            let apart = f(n, "min") > f(o, "max") || f(n, "max") < f(o, "min");
            assert_eq!(
                c["real"].as_bool().unwrap(),
                apart,
                "{variant} {metric}: {c}"
            );
        }
    }
    // The earlier fields are all still there.
    for field in [
        "machine", "command", "runs", "summary", "skipped", "failures",
    ] {
        assert!(!new_json[field].is_null(), "{field}");
    }
    let md = std::fs::read_to_string(new.join("summary.md")).unwrap();
    assert!(
        md.contains("## Against the baseline")
            && md.contains("Only in this run: eventfd same-cpu.")
    );
    let html = std::fs::read_to_string(new.join("report.html")).unwrap();
    assert!(
        html.contains("<section id=\"baseline\">")
            && html.contains("Only in this run: eventfd same-cpu.")
    );
    // A run without --baseline has no such field.
    assert!(old_json.get("baseline").is_none());
}

#[test]
fn a_baseline_that_is_not_a_report_folder_is_refused_at_once() {
    let runtime = TestDir::new("base-bad-rt");
    let dir = TestDir::new("base-bad");
    let out_dir = dir.path().join("out");
    for (bad, says) in [
        (dir.path().join("missing"), "not a lockfair report folder"),
        (dir.path().to_path_buf(), "not a lockfair report folder"),
    ] {
        let out = compare(
            runtime.path(),
            &[
                "--baseline",
                bad.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(says) && err.contains("--baseline"), "{err}");
    }
    // A summary.json that is not a compare summary says so.
    let fake = dir.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join("summary.json"), "{\"not\": \"a summary\"}").unwrap();
    let out = compare(
        runtime.path(),
        &[
            "--baseline",
            fake.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a compare summary"));
    assert!(!out_dir.exists(), "nothing was written or measured");
}
