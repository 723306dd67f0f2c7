//! `demo`'s story, rendered: for each claim the figure measured here first, then the claim, the
//! verdict (holds here / differs here) and why; then "What to use". As terminal text, as JSON
//! for scripts, and as a report folder (`demo.json`, `demo.md`, `report.html`).

use serde::Serialize;

use super::html::{esc, page, paragraphs, table_html};
use super::what_to_use as w2u;
use crate::experiment::demo::{DemoReport, Step};
use crate::outcome::what_to_use;
use crate::text::Table;

/// The verdict in words.
pub fn verdict(step: &Step) -> &'static str {
    match step.holds {
        Some(true) => "holds here",
        Some(false) => "DIFFERS HERE",
        None => "not run here",
    }
}

/// The figure with its interval, e.g. `27.4 (21.0–33.1, 94% interval over 5 runs)`.
pub fn figure(step: &Step) -> String {
    let Some(median) = step.median else {
        return format!("– ({})", step.skipped.as_deref().unwrap_or("not run"));
    };
    let interval = match (step.lo, step.hi, step.level) {
        (Some(lo), Some(hi), Some(level)) if lo < hi => format!(
            " ({}–{}, {:.0}% interval over {} runs)",
            num(lo),
            num(hi),
            level * 100.0,
            step.repeats
        ),
        _ => format!(
            " ({} run{})",
            step.repeats,
            if step.repeats == 1 { "" } else { "s" }
        ),
    };
    format!("{} {}{interval}", num(median), step.unit)
}

/// A figure as the demo prints it: whole numbers and anything from 100 up without decimals,
/// two decimals from 1, three below (the README's demo table uses it too).
pub fn num(x: f64) -> String {
    if (x == x.trunc() && x.abs() < 1e9) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// One step for the terminal, as it finishes.
pub fn step_text(n: usize, step: &Step) -> String {
    format!(
        "{n:>2}. {}\n    here: {}; holds when {}: {}\n    why: {}\n",
        step.says,
        figure(step),
        step.expected,
        verdict(step),
        step.why
    )
}

/// The closing lines: how many claims held, and "What to use".
pub fn ending_text(report: &DemoReport) -> String {
    let mut out = format!("\n{}\n", tally(report));
    if let Some(w) = what_to_use(&report.compare) {
        out.push_str(&w2u::to_text(&w, false));
    }
    out
}

fn tally(report: &DemoReport) -> String {
    let count = |v: Option<bool>| report.steps.iter().filter(|s| s.holds == v).count();
    format!(
        "{} claims hold here, {} differ here, {} could not run here.",
        count(Some(true)),
        count(Some(false)),
        count(None)
    )
}

#[derive(Serialize)]
struct DemoJson<'a> {
    steps: &'a [Step],
    machine: &'a crate::outcome::Machine,
    command: &'a str,
}

/// `demo --json`: every step with its figure and interval, and the machine.
pub fn to_json(report: &DemoReport) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&DemoJson {
        steps: &report.steps,
        machine: &report.compare.machine,
        command: &report.compare.command,
    })
}

/// The figures first: one row per claim.
fn figures_table(report: &DemoReport) -> Table {
    let mut t = Table::new(&["claim", "here", "holds when", "verdict"], 4);
    for s in &report.steps {
        t.push(vec![
            s.id.to_string(),
            figure(s),
            s.expected.clone(),
            verdict(s).to_string(),
        ]);
    }
    t
}

/// `demo.md`.
pub fn to_markdown(report: &DemoReport) -> String {
    let mut out = format!(
        "# lockfair demo\n\nCommand: `{}`\n\n{}\n\n",
        report.compare.command,
        tally(report)
    );
    out.push_str(&figures_table(report).to_markdown());
    out.push_str("\n## The claims\n\n");
    for (i, s) in report.steps.iter().enumerate() {
        out.push_str(&format!(
            "{}. **{}** Here: {}; {}. Why: {}\n",
            i + 1,
            s.says,
            figure(s),
            verdict(s),
            s.why
        ));
    }
    if let Some(w) = what_to_use(&report.compare) {
        out.push('\n');
        out.push_str(&w2u::to_markdown(&w));
    }
    out
}

/// `report.html`: the figures, the claims, what to use, the machine.
pub fn to_html(report: &DemoReport) -> String {
    let mut body = paragraphs(&[tally(report)]);
    body.push_str("<section id=\"figures\">\n<h2>Measured here</h2>\n");
    body.push_str(&table_html(&figures_table(report)));
    body.push_str("</section>\n<section id=\"claims\">\n<h2>The claims</h2>\n<ol>\n");
    for s in &report.steps {
        body.push_str(&format!(
            "<li id=\"{}\"><p><strong>{}</strong></p><p>Here: {} — <em>{}</em> (holds when {}).</p><p>Why: {}</p></li>\n",
            esc(s.id),
            esc(s.says),
            esc(&figure(s)),
            esc(verdict(s)),
            esc(&s.expected),
            esc(s.why)
        ));
    }
    body.push_str("</ol>\n</section>\n");
    if let Some(w) = what_to_use(&report.compare) {
        body.push_str(&format!(
            "<section id=\"what-to-use\">\n<h2>{}</h2>\n<ul>\n",
            w2u::HEADING
        ));
        for line in w2u::recommendations(&w) {
            body.push_str(&format!("<li>{}</li>\n", esc(&line)));
        }
        body.push_str("</ul>\n");
        body.push_str(&table_html(&w2u::table(&w, true)));
        body.push_str("</section>\n");
    }
    let m = &report.compare.machine;
    body.push_str(&format!(
        "<section id=\"machine\">\n<h2>Machine</h2>\n{}</section>\n",
        paragraphs(&[
            format!(
                "{}, {} ({} CPUs online, allowed {})",
                m.kernel, m.cpu_model, m.online_cpus, m.allowed_cpus
            ),
            format!(
                "cpuidle: {}; cross-CPU wakeup: {}",
                m.idle.describe(),
                m.idle.wakeup()
            ),
            format!("command: {}", report.compare.command),
        ])
    ));
    let nav = "<a href=\"#figures\">Measured here</a> · <a href=\"#claims\">The claims</a> · \
               <a href=\"#what-to-use\">What to use</a> · <a href=\"#machine\">Machine</a>";
    page("lockfair demo", nav, &body)
}
