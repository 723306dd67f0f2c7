//! Figures in README and docs come from committed outputs, and stay equal to them.
//!
//! A figure is marked where it stands, invisibly in the rendered page:
//! `<!-- fig FILE PATH DIGITS -->0.59<!-- /fig -->` says that the number between the markers is
//! the value at PATH in the JSON file FILE (relative to the repository), with DIGITS decimals.
//! PATH is dot-separated keys, and `key[field=value]` picks the element of the array `key` whose
//! `field` is `value` (`key[a=x,b=y]`: both; `[a=x]` alone: the top-level array). An optional
//! fourth word scales the value (`/1000`: ns as µs; `*100`: a share as a percentage). DIGITS
//! `idle` prints the idle setup of a report's `machine.idle` ("CPUs left to idle, cpuidle
//! haltpoll"), which every two-CPU figure depends on. A generated block
//! `<!-- figures demo-table FILE -->…<!-- /figures -->` holds the table of a committed
//! `demo --json`; `summary-table`, `kernel-table`, `bench-table`, `sweep-table`,
//! `anatomy-table` and `levels-table` the tables of the other committed outputs (see `tables`;
//! `summary-table FILE columns=contenders` is a `--mode free` run's contenders table);
//! `file` a committed Markdown file verbatim (`crash --stop --out`'s `stop.md`). This test
//! recomputes every marked figure and
//! block and fails when one differs; `LOCKFAIR_BLESS=1` (never in CI) rewrites them instead.

use std::path::{Path, PathBuf};

use lockfair::report::demo::num;
use serde_json::Value;

mod tables;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The value at `path` in `json` (see the module's doc).
fn at<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(json, |v, key| match key.split_once('[') {
            Some((array, filter)) => {
                let items = if array.is_empty() { v } else { v.get(array)? };
                items
                    .as_array()?
                    .iter()
                    .find(|e| matches(e, filter.trim_end_matches(']')))
            }
            None => v.get(key),
        })
}

/// Whether `e` has every `field=value` of `filter` (comma-separated; a value may be a string,
/// a number or `null`).
fn matches(e: &Value, filter: &str) -> bool {
    filter.split(',').all(|cond| {
        let Some((field, want)) = cond.split_once('=') else {
            return false;
        };
        match e.get(field) {
            Some(Value::String(s)) => s == want,
            Some(Value::Null) | None => want == "null",
            Some(Value::Number(n)) => want.parse::<f64>().ok() == n.as_f64(),
            Some(Value::Bool(b)) => want.parse::<bool>().ok() == Some(*b),
            Some(_) => false,
        }
    })
}

/// What an inline marker's number must be.
fn inline_figure(spec: &str) -> Result<String, String> {
    let mut words = spec.split_whitespace();
    let (Some(file), Some(path), Some(digits)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("`{spec}`: want FILE PATH DIGITS [/N or *N]"));
    };
    let json: Value = read_json(file)?;
    if digits == "idle" {
        return idle_setup(&json, path)
            .ok_or_else(|| format!("{file} has no idle setup at {path}"));
    }
    let value = at(&json, path)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{file} has no number at {path}"))?;
    let value = scaled(value, words.next())?;
    let digits: usize = digits
        .parse()
        .map_err(|_| format!("`{digits}` is no digit count"))?;
    Ok(format!("{value:.digits$}"))
}

/// How a run's CPUs idled, from a report's `machine.idle` (the `idle` format): every two-CPU
/// figure depends on it.
fn idle_setup(json: &Value, path: &str) -> Option<String> {
    let idle = at(json, path)?;
    let held = idle.get("held_off")?.as_bool()?;
    let driver = idle.get("driver").and_then(Value::as_str).unwrap_or("none");
    let how = if held {
        "CPUs held out of idle"
    } else {
        "CPUs left to idle"
    };
    Some(format!("{how}, cpuidle {driver}"))
}

/// `value` divided (`/1000`) or multiplied (`*100`) as the marker's optional fourth word says:
/// ns as µs, a share as a percentage.
fn scaled(value: f64, scale: Option<&str>) -> Result<f64, String> {
    let Some(scale) = scale else {
        return Ok(value);
    };
    let factor = |t: &str| {
        t.parse::<f64>()
            .map_err(|_| format!("`{scale}`: want /N or *N"))
    };
    match scale.split_at(1) {
        ("/", n) => Ok(value / factor(n)?),
        ("*", n) => Ok(value * factor(n)?),
        _ => Err(format!("`{scale}`: want /N or *N")),
    }
}

fn read_json(file: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(repo().join(file)).map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
}

/// The table of a committed `demo --json`: claim, median, interval, condition, verdict.
fn demo_table(file: &str) -> Result<String, String> {
    let json = read_json(file)?;
    let mut out = String::from(
        "| claim | here (median) | interval | holds when | verdict |\n\
         | :---- | :------------ | :------- | :--------- | :------ |\n",
    );
    for s in json["steps"].as_array().ok_or("no steps")? {
        let f = |k: &str| s[k].as_f64();
        let median = f("median").map(num).unwrap_or_else(|| "–".into());
        let interval = match (f("lo"), f("hi")) {
            (Some(lo), Some(hi)) if lo < hi => format!("{}–{}", num(lo), num(hi)),
            _ => "–".into(),
        };
        let verdict = match s["holds"].as_bool() {
            Some(true) => "holds",
            Some(false) => "differs",
            None => "not run",
        };
        out.push_str(&format!(
            "| `{}` | {median} {} | {interval} | {} | {verdict} |\n",
            s["id"].as_str().unwrap_or("?"),
            s["unit"].as_str().unwrap_or(""),
            s["expected"].as_str().unwrap_or("")
        ));
    }
    Ok(out)
}

/// `text` with every marked figure and block recomputed, and the problems found.
fn recompute(text: &str) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let text = replace_marked(text, "<!-- fig ", "<!-- /fig -->", &mut problems, |spec| {
        inline_figure(spec)
    });
    let text = replace_marked(
        &text,
        "<!-- figures ",
        "<!-- /figures -->",
        &mut problems,
        |spec| {
            let mut words = spec.split_whitespace();
            let (kind, file) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let options: Vec<&str> = words.collect();
            match kind {
                "demo-table" => demo_table(file),
                "summary-table" => tables::summary(&read_json(file)?, &options),
                "kernel-table" => tables::kernel(&read_json(file)?),
                "bench-table" => tables::bench(&read_json(file)?),
                "sweep-table" => tables::sweep(&read_json(file)?),
                "anatomy-table" => tables::anatomy(&read_json(file)?),
                "levels-table" => tables::levels(&read_json(file)?),
                "file" => {
                    std::fs::read_to_string(repo().join(file)).map_err(|e| format!("{file}: {e}"))
                }
                _ => Err(format!("`{spec}`: unknown generated block")),
            }
            .map(|t| format!("\n{t}"))
        },
    );
    (text, problems)
}

/// Replaces what stands between each `open SPEC -->` and `close` by `make(SPEC)`.
fn replace_marked(
    text: &str,
    open: &str,
    close: &str,
    problems: &mut Vec<String>,
    make: impl Fn(&str) -> Result<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        let Some(spec_end) = rest[at..].find("-->").map(|e| at + e) else {
            problems.push(format!("an unclosed `{open}`"));
            break;
        };
        let Some(end) = rest[spec_end..].find(close).map(|e| spec_end + e) else {
            problems.push(format!("`{open}` without `{close}`"));
            break;
        };
        out.push_str(&rest[..spec_end + 3]);
        let spec = rest[at + open.len()..spec_end].trim();
        let current = &rest[spec_end + 3..end];
        match make(spec) {
            Ok(value) => {
                if value != current {
                    problems.push(format!(
                        "`{spec}`: the page says `{current}`, the file `{value}`"
                    ));
                }
                out.push_str(&value);
            }
            Err(e) => {
                problems.push(e);
                out.push_str(current);
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_marked_figure_equals_the_committed_output_it_cites() {
    let bless = std::env::var_os("LOCKFAIR_BLESS").is_some() && std::env::var_os("CI").is_none();
    let mut all = Vec::new();
    let mut marked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        marked += text.matches("<!-- fig ").count() + text.matches("<!-- figures ").count();
        let (fresh, mut problems) = recompute(&text);
        if bless && fresh != text {
            std::fs::write(&page, &fresh).unwrap();
            // What blessing cannot fix (a missing file, a path that is not there) still fails.
            problems = recompute(&fresh).1;
        }
        all.extend(
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", page.display())),
        );
    }
    assert!(
        marked > 0,
        "no figure is marked: the test would check nothing"
    );
    assert!(
        all.is_empty(),
        "figures differ from their sources (LOCKFAIR_BLESS=1 cargo test -p lockfair-client --test cli figures rewrites them):\n{}",
        all.join("\n")
    );
}

#[test]
fn a_figure_that_differs_from_its_source_is_caught() {
    let page = "did <!-- fig results/demo/demo.json steps[id=fair-lock-price].median 2 -->9.99<!-- /fig -->× it";
    let (fixed, problems) = recompute(page);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(!fixed.contains("9.99"), "{fixed}");
    let (_, none) = recompute(&fixed);
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn a_marker_picks_an_element_by_several_fields_and_scales_it() {
    let json: Value = serde_json::from_str(
        r#"{"rows": [{"p": "split", "m": "pipe", "v": 1500},
                     {"p": "same-cpu", "m": "pipe", "v": 2500, "n": null},
                     {"p": "same-cpu", "m": "spin", "spin": 64, "v": 7}]}"#,
    )
    .unwrap();
    assert_eq!(
        at(&json, "rows[p=same-cpu,m=pipe].v"),
        Some(&Value::from(2500))
    );
    assert_eq!(at(&json, "rows[spin=64].v"), Some(&Value::from(7)));
    assert_eq!(
        at(&json, "rows[p=split,n=null].v"),
        Some(&Value::from(1500))
    );
    assert_eq!(at(&json, "rows[p=free].v"), None);
    assert_eq!(scaled(2500.0, Some("/1000")), Ok(2.5));
    assert_eq!(scaled(0.25, Some("*100")), Ok(25.0));
    assert!(scaled(1.0, Some("1000")).is_err());
    let top: Value = serde_json::from_str(r#"[{"spin": null, "v": 3}]"#).unwrap();
    assert_eq!(at(&top, "[spin=null].v"), Some(&Value::from(3)));
}

#[test]
fn the_idle_setup_is_printed_as_a_phrase() {
    let held: Value =
        serde_json::from_str(r#"{"machine": {"idle": {"driver": "haltpoll", "held_off": true}}}"#)
            .unwrap();
    assert_eq!(
        idle_setup(&held, "machine.idle").as_deref(),
        Some("CPUs held out of idle, cpuidle haltpoll")
    );
    let none: Value =
        serde_json::from_str(r#"{"machine": {"idle": {"held_off": false}}}"#).unwrap();
    assert_eq!(
        idle_setup(&none, "machine.idle").as_deref(),
        Some("CPUs left to idle, cpuidle none")
    );
    // A report from before the idle section has nothing to say: the figure is an error.
    assert_eq!(
        idle_setup(&serde_json::json!({"machine": {}}), "machine.idle"),
        None
    );
}

#[test]
fn a_summary_table_keeps_the_rows_asked_for_with_their_intervals() {
    let s = |m: f64, lo: f64, hi: f64| serde_json::json!({"median": m, "lo": lo, "hi": hi});
    let row = |v: &str, p: &str| {
        serde_json::json!({
            "variant": v, "placement": p, "rounds_per_sec": s(311_900.0, 257_500.0, 343_200.0),
            "whoops_per_round": s(0.0, 0.0, 0.0), "overlaps": s(0.0, 0.0, 0.0),
            "handoff_p50_ns": s(1350.0, 1350.0, 1880.0), "round_trip_p50_ns": s(4.0e6, 4.0e6, 4.0e6),
            "cpu_ns_per_round": s(423.0, 409.0, 469.0), "x_pipe": 0.96
        })
    };
    let json = serde_json::json!({"summary": [row("eventfd", "split"), row("ofd", "same-cpu")]});
    let table = tables::summary(&json, &["placements=split"]).unwrap();
    assert!(table.contains("| eventfd | split | 311.9k (257.5k–343.2k) | 0 | 0 | 1.35 µs (1.35–1.88) | 4.00 ms | 423 ns (409–469) | 0.96× |"), "{table}");
    assert!(!table.contains("ofd"), "{table}");
}

#[test]
fn a_contenders_table_says_when_jain_had_no_window() {
    let s = |m: f64, lo: f64, hi: f64| serde_json::json!({"median": m, "lo": lo, "hi": hi});
    let row = |v: &str, jain_repeats: u64| {
        serde_json::json!({
            "variant": v, "placement": "free", "repeats": 8, "jain_repeats": jain_repeats,
            "rounds_per_sec": s(1_164_000.0, 974_900.0, 1_580_000.0),
            "handoff_p99_ns": s(541.0, 471.0, 991.0), "jain_index": s(0.446, 0.270, 0.870),
            "barging_rate": s(0.789, 0.753, 0.913),
            "order": {"contending": s(3.65, 2.88, 3.93), "bypass_p99": s(406.0, 182.0, 5090.0),
                      "bypass_max": s(0.0, 0.0, 0.0)}
        })
    };
    let json = serde_json::json!({"summary": [row("futex", 8), row("ticket", 0), row("flock", 6)]});
    let table = tables::summary(&json, &["columns=contenders"]).unwrap();
    assert!(table.contains("| futex | free | 1.16M (974.9k–1.58M) | 541 ns (471–991) | 0.446 (0.270–0.870) | 3.65 (2.88–3.93) | 0.789 (0.753–0.913) | 406 (182–5090) | 0 |"), "{table}");
    assert!(
        table.contains("| ticket | free | 1.16M (974.9k–1.58M) | 541 ns (471–991) | n/a |"),
        "{table}"
    );
    assert!(table.contains("| 0.446 (0.270–0.870) in 6/8 |"), "{table}");
    assert!(tables::summary(&json, &["columns=wide"]).is_err());
}
