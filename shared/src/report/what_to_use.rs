//! "What to use", rendered: the recommendation per need with its evidence, then the table of
//! mechanisms by the properties that decide a choice. `compare` ends with it, `summary.md` and
//! `report.html` open with it.

use crate::outcome::{Recommendation, UseRow, WhatToUse};
use crate::text::{Table, fmt_ns, wrap};

/// The heading every form uses.
pub const HEADING: &str = "What to use";

/// One line per need: the pick, why, and where the evidence is.
pub fn recommendations(w: &WhatToUse) -> Vec<String> {
    w.needs.iter().map(recommendation).collect()
}

fn recommendation(r: &Recommendation) -> String {
    format!(
        "{}: {} ({}; evidence: {})",
        r.need,
        pick(r),
        r.why,
        r.evidence
    )
}

/// The mechanism recommended for the need, by name.
pub fn pick(r: &Recommendation) -> &'static str {
    r.pick.first().map_or("nothing in this run", |v| v.name())
}

/// Where the figures come from, in one sentence.
pub fn basis(w: &WhatToUse) -> String {
    let wait = match w.mode {
        crate::variant::Mode::Turns => "round trip p50",
        crate::variant::Mode::Free => "wait p50",
    };
    format!(
        "Figures of this run on {} ({} mode; {wait}); overtaking, holder death, needs and async \
         use are what each mechanism is (docs/crash.md measures the deaths).",
        w.placement, w.mode
    )
}

/// The table: the columns that decide a choice (`wide` adds what it needs and how async code
/// waits on it, which do not fit a terminal).
pub fn table(w: &WhatToUse, wide: bool) -> Table {
    let turns = w.mode == crate::variant::Mode::Turns;
    let mut headers = vec!["variant", "excludes"];
    if turns {
        headers.push("whoops/round");
    }
    headers.extend(["wait", "CPU/round", "overtaking", "holder dies"]);
    if wide {
        headers.extend(["needs", "from async code"]);
    }
    let mut t = Table::new(&headers, headers.len());
    for r in &w.rows {
        t.push(cells(r, turns, wide));
    }
    t
}

fn cells(r: &UseRow, turns: bool, wide: bool) -> Vec<String> {
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "–".into());
    let mut row = vec![
        r.variant.name().to_string(),
        if r.excludes { "yes" } else { "no" }.to_string(),
    ];
    if turns {
        row.push(opt(r.whoops_per_round, |w| format!("{w:.1}")));
    }
    row.extend([
        opt(r.latency_ns, fmt_ns),
        opt(r.cpu_ns_per_round, fmt_ns),
        r.overtaking.clone(),
        r.death.describe().to_string(),
    ]);
    if wide {
        row.extend([r.needs.to_string(), r.from_async.to_string()]);
    }
    row
}

/// The whole answer as terminal text.
pub fn to_text(w: &WhatToUse, wide: bool) -> String {
    let mut out = format!("\n{HEADING}\n");
    for line in recommendations(w) {
        // Prose for a terminal: 100 columns, continued under the dash.
        let wrapped = wrap(&line, 98).replace('\n', "\n  ");
        out.push_str(&format!("- {wrapped}\n"));
    }
    out.push_str(&format!("{}\n", wrap(&basis(w), 100)));
    out.push_str(&table(w, wide).to_text());
    out
}

/// The whole answer as a Markdown section.
pub fn to_markdown(w: &WhatToUse) -> String {
    let mut out = format!("## {HEADING}\n\n");
    for line in recommendations(w) {
        out.push_str(&format!("- {line}\n"));
    }
    out.push_str(&format!("\n{}\n\n", basis(w)));
    out.push_str(&table(w, true).to_markdown());
    out.push('\n');
    out
}
