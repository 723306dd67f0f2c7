//! Figures in README and docs come from committed outputs, and stay equal to them.
//!
//! A figure is marked where it stands, invisibly in the rendered page:
//! `<!-- fig FILE PATH DIGITS -->0.59<!-- /fig -->` says that the number between the markers is
//! the value at PATH in the JSON file FILE (relative to the repository), with DIGITS decimals.
//! PATH is dot-separated keys, and `key[field=value]` picks the element of the array `key` whose
//! `field` is `value`. A generated block `<!-- figures demo-table FILE -->…<!-- /figures -->`
//! holds the table of a committed `demo --json`; `<!-- figures file FILE -->…<!-- /figures -->`
//! holds a committed Markdown file verbatim (`crash --stop --out`'s `stop.md`). This test recomputes every marked figure and
//! block and fails when one differs; `LOCKFAIR_BLESS=1` (never in CI) rewrites them instead.

use std::path::{Path, PathBuf};

use serde_json::Value;

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
                let (field, want) = filter.trim_end_matches(']').split_once('=')?;
                v.get(array)?
                    .as_array()?
                    .iter()
                    .find(|e| e.get(field).and_then(Value::as_str) == Some(want))
            }
            None => v.get(key),
        })
}

/// What an inline marker's number must be.
fn inline_figure(spec: &str) -> Result<String, String> {
    let mut words = spec.split_whitespace();
    let (Some(file), Some(path), Some(digits)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("`{spec}`: want FILE PATH DIGITS"));
    };
    let json: Value = read_json(file)?;
    let value = at(&json, path)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{file} has no number at {path}"))?;
    let digits: usize = digits
        .parse()
        .map_err(|_| format!("`{digits}` is no digit count"))?;
    Ok(format!("{value:.digits$}"))
}

fn read_json(file: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(repo().join(file)).map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
}

/// A number as the demo's table shows it.
fn num(x: f64) -> String {
    if (x == x.trunc() && x.abs() < 1e9) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
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
        |spec| match spec.split_once(' ') {
            Some(("demo-table", file)) => demo_table(file.trim()).map(|t| format!("\n{t}")),
            Some(("file", file)) => std::fs::read_to_string(repo().join(file.trim()))
                .map(|t| format!("\n{t}"))
                .map_err(|e| format!("{file}: {e}")),
            _ => Err(format!("`{spec}`: unknown generated block")),
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
        let (fresh, problems) = recompute(&text);
        if bless && fresh != text {
            std::fs::write(&page, fresh).unwrap();
        } else {
            all.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", page.display())),
            );
        }
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
