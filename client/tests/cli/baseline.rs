//! `compare --baseline DIR`: two small real runs, the second with a variant the first did not
//! run; the ratios and the verdicts must follow from the two runs' own summaries, and every
//! figure of `summary.json` carries its interval.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::{TestDir, compare};

fn small_run(runtime: &Path, variants: &str, repeats: &str, out: &Path, extra: &[&str]) -> Output {
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
        repeats,
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
    small_run(runtime.path(), "ofd,pipe", "2", &old, &[]);
    let out = small_run(
        runtime.path(),
        "ofd,pipe,eventfd",
        "2",
        &new,
        &["--baseline", old.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Against the baseline"), "{text}");
    assert!(
        text.contains("Mann-Whitney U test on the two runs' repeats") && text.contains("p < 0.01"),
        "the rule is stated: {text}"
    );
    assert!(
        text.contains("too few repeats"),
        "2 against 2 repeats cannot reach the level: {text}"
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
            // 2 repeats against 2: the exact test can do no better than p = 2/6.
            assert_eq!(c["verdict"], "too_few_repeats", "{variant} {metric}: {c}");
            assert_eq!(c["real"], false, "{c}");
            assert!(f(c, "p") >= 1.0 / 3.0 - 1e-12, "{c}");
        }
    }
    assert_eq!(cmp["alpha"], 0.01);
    // Every figure of the summary carries its interval: 2 repeats give (min, max) at 50%.
    for r in new_json["summary"].as_array().unwrap() {
        assert_eq!(r["repeats"], 2);
        for k in [
            "rounds_per_sec",
            "round_trip_p50_ns",
            "whoops_per_round",
            "cpu_ns_per_round",
        ] {
            let s = &r[k];
            let f = |field: &str| s[field].as_f64().unwrap();
            assert_eq!(
                (f("lo"), f("hi"), f("level")),
                (f("min"), f("max"), 0.5),
                "{k}: {s}"
            );
            assert!(f("lo") <= f("median") && f("median") <= f("hi"), "{k}: {s}");
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
            && md.contains("a 50.0% interval for it, the lowest and highest of 2 repeats"),
        "{md}"
    );
    let html = std::fs::read_to_string(new.join("report.html")).unwrap();
    assert!(
        html.contains("<section id=\"baseline\">")
            && html.contains("Only in this run: eventfd same-cpu.")
    );
    // A run without --baseline has no such field.
    assert!(old_json.get("baseline").is_none());
}

/// The earlier run's `summary.json` with every repeat's rounds/s a thousand times higher (no
/// noise of a loaded machine comes near), and without the interval fields, as a report from
/// before they existed has it.
fn faster_and_old_style(from: &Path, to: &Path) {
    let mut json = summary(from);
    for r in json["runs"].as_array_mut().unwrap() {
        let rate = &mut r["metrics"]["rounds_per_sec"];
        *rate = Value::from(rate.as_f64().unwrap() * 1000.0);
    }
    for row in json["summary"].as_array_mut().unwrap() {
        for (_, figure) in row.as_object_mut().unwrap() {
            if let Some(spread) = figure.as_object_mut().filter(|o| o.contains_key("median")) {
                for k in ["lo", "hi", "level"] {
                    spread.remove(k);
                }
            }
        }
        let rate = &mut row["rounds_per_sec"]["median"];
        *rate = Value::from(rate.as_f64().unwrap() * 1000.0);
    }
    std::fs::create_dir(to).unwrap();
    std::fs::write(to.join("summary.json"), json.to_string()).unwrap();
}

#[test]
fn a_clear_shift_is_a_real_change_with_its_p_and_no_shift_is_within_noise() {
    let runtime = TestDir::new("base-shift-rt");
    let dir = TestDir::new("base-shift");
    let (first, faster, new) = (
        dir.path().join("first"),
        dir.path().join("faster"),
        dir.path().join("new"),
    );
    small_run(runtime.path(), "pipe", "5", &first, &[]);
    faster_and_old_style(&first, &faster);
    let out = small_run(
        runtime.path(),
        "pipe",
        "5",
        &new,
        &["--baseline", faster.to_str().unwrap()],
    );
    let changes = summary(&new)["baseline"]["cells"][0]["changes"].clone();
    let (rate, whoops) = (&changes[0], &changes[2]);
    // Every new repeat is slower than every earlier one: 2 of the C(10, 5) = 252 splits are
    // as extreme.
    assert_eq!(rate["metric"], "rounds_per_sec");
    assert_eq!(
        (&rate["verdict"], &rate["real"]),
        (&Value::from("real"), &Value::from(true))
    );
    assert!(
        (rate["p"].as_f64().unwrap() - 2.0 / 252.0).abs() < 1e-12,
        "{rate}"
    );
    // Zero whoops in both runs: nothing to tell apart.
    assert_eq!(whoops["metric"], "whoops_per_round");
    assert_eq!(
        (&whoops["verdict"], &whoops["p"]),
        (&Value::from("within_noise"), &Value::from(1.0))
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("real, p=0.0079"), "{text}");
    assert!(text.contains("same (0 → 0)"), "{text}");
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
