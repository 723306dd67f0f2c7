//! The generated tables of README and docs, each from a committed output: a `compare`
//! `summary.json` (its rows, or its runs' kernel counts), a `bench --json`, a
//! `bench --spin-sweep --json`, `bench/anatomy.sh`'s JSON and `bench/calibrate.py --levels`'s.

use serde_json::Value;

type Table = Result<String, String>;

fn header(columns: &[&str]) -> String {
    let mut out = format!("| {} |\n|", columns.join(" | "));
    for (i, _) in columns.iter().enumerate() {
        out.push_str(if i < 2 { " :-- |" } else { " --: |" });
    }
    out.push('\n');
    out
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// Three significant digits, as the reports print.
fn sig(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A duration in ns: `423 ns`, `1.35 µs`, `8.00 ms`.
pub fn ns(x: f64) -> String {
    if x.abs() < 1e3 {
        format!("{x:.0} ns")
    } else if x.abs() < 1e6 {
        format!("{} µs", sig(x / 1e3))
    } else if x.abs() < 1e9 {
        format!("{} ms", sig(x / 1e6))
    } else {
        format!("{} s", sig(x / 1e9))
    }
}

/// A rate: `124`, `311.9k`, `1.70M`.
fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// `median (lo–hi)`, the interval left out when its ends print alike.
fn spread(s: &Value, f: fn(f64) -> String) -> String {
    let g = |k: &str| s[k].as_f64().unwrap_or(0.0);
    let (median, lo, hi) = (f(g("median")), f(g("lo")), f(g("hi")));
    if lo == hi {
        median
    } else {
        // `1.35 µs (1.35–1.88)`: the unit once, unless the ends differ in it.
        let unit = |t: &str| t.split_once(' ').map(|(n, _)| n.to_string());
        match (unit(&lo), unit(&hi)) {
            (Some(l), Some(h)) if lo.split(' ').nth(1) == hi.split(' ').nth(1) => {
                format!("{median} ({l}–{h})")
            }
            _ => format!("{median} ({lo}–{hi})"),
        }
    }
}

fn list<'a>(options: &'a [&str], key: &str) -> Option<Vec<&'a str>> {
    options
        .iter()
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.split(',').collect())
}

/// A `compare` report's rows, filtered by `variants=` and `placements=`: its main table
/// (`turns` mode), or with `columns=contenders` the contenders table of a `free` run.
pub fn summary(json: &Value, options: &[&str]) -> Table {
    let variants = list(options, "variants");
    let placements = list(options, "placements");
    let keep = |r: &Value, k: &str, want: &Option<Vec<&str>>| {
        want.as_ref()
            .is_none_or(|w| w.contains(&r[k].as_str().unwrap_or("")))
    };
    let rows = json["summary"].as_array().ok_or("no summary")?;
    let rows = rows
        .iter()
        .filter(|r| keep(r, "variant", &variants) && keep(r, "placement", &placements));
    match list(options, "columns").as_deref() {
        None => Ok(main_table(rows)),
        Some(["contenders"]) => Ok(contenders_table(rows)),
        Some(other) => Err(format!(
            "columns={}: want columns=contenders",
            other.join(",")
        )),
    }
}

/// The main table: speed, whoops, exclusion, latency and CPU per round.
fn main_table<'a>(rows: impl Iterator<Item = &'a Value>) -> String {
    let mut out = header(&[
        "variant",
        "placement",
        "rounds/s",
        "whoops/round",
        "overlaps",
        "handoff p50",
        "round trip p50",
        "CPU/round",
        "× pipe",
    ]);
    for r in rows {
        let x_pipe = r["x_pipe"]
            .as_f64()
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_else(|| "–".into());
        out.push_str(&row(&[
            r["variant"].as_str().unwrap_or("?").into(),
            r["placement"].as_str().unwrap_or("?").into(),
            spread(&r["rounds_per_sec"], rate),
            spread(&r["whoops_per_round"], sig),
            spread(&r["overlaps"], sig),
            spread(&r["handoff_p50_ns"], ns),
            spread(&r["round_trip_p50_ns"], ns),
            spread(&r["cpu_ns_per_round"], ns),
            x_pipe,
        ]));
    }
    out
}

/// A `free` run's contenders table: speed and tail beside the measures of the lock (barging,
/// bypass) and those that also carry the scheduler (Jain, waiting).
fn contenders_table<'a>(rows: impl Iterator<Item = &'a Value>) -> String {
    let mut out = header(&[
        "variant",
        "placement",
        "rounds/s",
        "wait p99",
        "Jain",
        "waiting",
        "barging rate",
        "bypass p99",
        "bypass max",
    ]);
    let share = |x: f64| format!("{x:.3}");
    let count = |x: f64| format!("{x:.0}");
    for r in rows {
        out.push_str(&row(&[
            r["variant"].as_str().unwrap_or("?").into(),
            r["placement"].as_str().unwrap_or("?").into(),
            spread(&r["rounds_per_sec"], rate),
            spread(&r["handoff_p99_ns"], ns),
            jain(r),
            spread(&r["order"]["contending"], |x| format!("{x:.2}")),
            spread(&r["barging_rate"], share),
            spread(&r["order"]["bypass_p99"], count),
            spread(&r["order"]["bypass_max"], count),
        ]));
    }
    out
}

/// Jain's index as the report prints it: `n/a` when no repeat had a common window, `… in k/N`
/// when only k of the N repeats had one.
fn jain(r: &Value) -> String {
    let with = r["jain_repeats"].as_u64().unwrap_or(0);
    let repeats = r["repeats"].as_u64().unwrap_or(0);
    if with == 0 {
        return "n/a".into();
    }
    let value = spread(&r["jain_index"], |x| format!("{x:.3}"));
    if with < repeats {
        format!("{value} in {with}/{repeats}")
    } else {
        value
    }
}

/// `min–max` of `values`, or the one value.
fn range(values: &[f64], f: fn(f64) -> String) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        "–".into()
    } else if f(lo) == f(hi) {
        f(lo)
    } else {
        format!("{}–{}", f(lo), f(hi))
    }
}

/// The kernel's counts of a `compare --kernel-trace` report, per cell over its repeats.
pub fn kernel(json: &Value) -> Table {
    let runs = json["runs"].as_array().ok_or("no runs")?;
    let mut cells: Vec<(String, String)> = Vec::new();
    for r in runs.iter().filter(|r| r["kernel"].is_object()) {
        let cell = (
            r["variant"].as_str().unwrap_or("?").to_string(),
            r["placement"].as_str().unwrap_or("?").to_string(),
        );
        if !cells.contains(&cell) {
            cells.push(cell);
        }
    }
    let mut out = header(&[
        "variant",
        "placement",
        "rounds",
        "blocks",
        "queued wakeups",
        "barges",
        "proxy",
        "kernel rate",
        "wake→run p50",
    ]);
    for (variant, placement) in cells {
        let of: Vec<&Value> = runs
            .iter()
            .filter(|r| r["variant"] == variant.as_str() && r["placement"] == placement.as_str())
            .filter(|r| r["kernel"].is_object())
            .collect();
        let get = |f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
            of.iter().filter_map(|r| f(r)).collect()
        };
        let count = |k: &'static str| get(&move |r: &Value| r["kernel"][k].as_f64());
        let int = |x: f64| format!("{x:.0}");
        let share = |x: f64| format!("{x:.2}");
        out.push_str(&row(&[
            variant.clone(),
            placement.clone(),
            range(&get(&|r: &Value| r["metrics"]["rounds"].as_f64()), int),
            range(&count("blocks"), int),
            range(&count("wakeups_of_queued"), int),
            range(&count("barges"), int),
            range(&get(&|r: &Value| r["barging_rate"].as_f64()), share),
            range(&count("regrant_rate"), share),
            range(
                &get(&|r: &Value| r["kernel"]["wake_to_run_ns"]["p50"].as_f64()),
                ns,
            ),
        ]));
    }
    Ok(out)
}

/// `bench --json`: lockfair against the C ping-pong.
pub fn bench(json: &Value) -> Table {
    let mut out = header(&[
        "placement",
        "mechanism",
        "C ping-pong",
        "lockfair",
        "lockfair / C",
        "paired",
        "range",
        "lockfair p50",
    ]);
    for r in json["rows"].as_array().ok_or("no rows")? {
        let f = |k: &str| r[k].as_f64();
        let ratio = |x: Option<f64>| x.map(|x| format!("{x:.2}×")).unwrap_or("–".into());
        let p = &r["ratio_spread"];
        out.push_str(&row(&[
            r["placement"].as_str().unwrap_or("?").into(),
            match (r["mechanism"].as_str(), r["variant"].as_str()) {
                (Some(m), Some(v)) if m != v => format!("{m} (lockfair: {v})"),
                (m, _) => m.unwrap_or("?").to_string(),
            },
            f("c_ns").map(ns).unwrap_or("–".into()),
            f("lockfair_ns").map(ns).unwrap_or("–".into()),
            ratio(f("ratio")),
            ratio(p["median"].as_f64()),
            format!("{}–{}", ratio(p["min"].as_f64()), ratio(p["max"].as_f64())),
            r["lockfair_p50_spread_ns"]["median"]
                .as_f64()
                .map(ns)
                .unwrap_or("–".into()),
        ]));
    }
    Ok(out)
}

/// `bench --spin-sweep --json`: spin-futex's bounds against plain futex.
pub fn sweep(json: &Value) -> Table {
    let rows = json.as_array().ok_or("not a sweep: want an array")?;
    let mut out = header(&[
        "placement",
        "variant",
        "round trip",
        "× futex",
        "CPU/round",
        "CPU × futex",
    ]);
    for r in rows {
        let placement = r["placement"].as_str().unwrap_or("?");
        let futex = rows
            .iter()
            .find(|f| f["placement"] == placement && f["spin"].is_null())
            .ok_or("no plain futex row")?;
        let x = |k: &str| match (r[k].as_f64(), futex[k].as_f64()) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        let name = match r["spin"].as_u64() {
            Some(n) => format!("spin-futex --spin {n}"),
            None => "futex".into(),
        };
        out.push_str(&row(&[
            placement.into(),
            name,
            r["round_trip_ns"].as_f64().map(ns).unwrap_or("–".into()),
            x("round_trip_ns"),
            r["cpu_ns_per_round"].as_f64().map(ns).unwrap_or("–".into()),
            x("cpu_ns_per_round"),
        ]));
    }
    Ok(out)
}

/// `bench/anatomy.sh`'s JSON: the C spin ping-pong step by step.
pub fn anatomy(json: &Value) -> Table {
    let steps = json["steps"].as_array().ok_or("no steps")?;
    let base = steps
        .first()
        .and_then(|s| s["median_ns"].as_f64())
        .ok_or("no step 0")?;
    let mut out = header(&[
        "step",
        "what C does per turn, on top of spinning",
        "round trip, median (range)",
        "× step 0",
    ]);
    for s in steps {
        let g = |k: &str| s[k].as_f64().unwrap_or(0.0);
        out.push_str(&row(&[
            s["step"].to_string(),
            s["what"].as_str().unwrap_or("?").into(),
            format!(
                "{} ({}–{})",
                ns(g("median_ns")),
                g("min_ns").round(),
                g("max_ns").round()
            ),
            format!("{:.2}×", g("median_ns") / base),
        ]));
    }
    Ok(out)
}

/// `bench/calibrate.py --levels`: the interval's ranks and levels per number of repeats.
pub fn levels(json: &Value) -> Table {
    let mut out = String::from(
        "| repeats n | interval (k-th, (n+1-k)-th) | level | another run's median inside, same machine state |\n\
         | --------: | :-------------------------- | ----: | ----------------------------------------------: |\n",
    );
    for l in json["levels"].as_array().ok_or("no levels")? {
        let pct = |k: &str| format!("{:.1}%", 100.0 * l[k].as_f64().unwrap_or(0.0));
        out.push_str(&row(&[
            l["n"].to_string(),
            format!("({}, {})", l["lo"], l["hi"]),
            pct("level"),
            pct("exchangeable"),
        ]));
    }
    Ok(out)
}
