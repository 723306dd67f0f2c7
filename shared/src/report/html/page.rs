//! The page's frame and the pieces every section builds from: escaping, tables, figures.

use crate::text::Table;

/// Escapes `s` for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative link to a file beside the page: each path byte outside a safe set is
/// percent-encoded, then the whole is escaped for the attribute.
pub fn file_href(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("./{}", esc(&out))
}

/// `t` as an HTML table in a horizontally scrolling box: numbers right-aligned, the first
/// column kept in view, and a cell's interval "(lo–hi)" set smaller after its median.
pub fn table_html(t: &Table) -> String {
    let class = |i: usize| {
        if t.left.contains(&i) {
            ""
        } else {
            " class=\"num\""
        }
    };
    let mut out = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for (i, h) in t.headers.iter().enumerate() {
        out.push_str(&format!("<th scope=\"col\"{}>{}</th>", class(i), esc(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", class(i), cell_html(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// "3.41 µs (3.30–3.52)": the median, then its interval in a quieter span; "real" in a baseline
/// cell ("1.50× real, p=0.0079 (…)") stands out.
fn cell_html(cell: &str) -> String {
    let (head, tail) = match cell.find(" (") {
        Some(i) if cell.ends_with(')') => cell.split_at(i),
        _ => (cell, ""),
    };
    let head = match head.split_once(" real") {
        Some((ratio, p)) => format!(
            "{} <strong class=\"real\">real</strong>{}",
            esc(ratio),
            esc(p)
        ),
        None => esc(head),
    };
    if tail.is_empty() {
        head
    } else {
        format!("{head}<span class=\"spread\">{}</span>", esc(tail))
    }
}

/// An inline SVG plot with its caption. The SVG comes from plotters, which escapes its text. On a
/// narrow screen the plot keeps a readable width and scrolls sideways.
pub fn figure(svg: &str, caption: &str) -> String {
    let svg = svg.trim_start_matches(|c: char| c != '<');
    format!(
        "<figure>\n<div class=\"scroll\">\n{}\n</div>\n<figcaption>{}</figcaption>\n</figure>\n",
        svg.trim_end(),
        esc(caption)
    )
}

/// Paragraphs of plain text.
pub fn paragraphs<S: AsRef<str>>(lines: &[S]) -> String {
    lines
        .iter()
        .map(|l| format!("<p>{}</p>\n", esc(l.as_ref())))
        .collect()
}

/// No network, ever: the browser refuses any load the page might still name.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS: &str = "\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;background:#fff}
main{max-width:1080px;margin:0 auto;padding:0 1rem 3rem}
h1{font-size:1.6rem;margin:1.2rem 0 .4rem}h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:1px solid #ddd}
nav{font-size:.9rem;margin-bottom:1rem}nav a{margin-right:.9rem;white-space:nowrap}
.verdict{font-size:1.08rem;background:#f4f7fb;border-left:4px solid #0072b2;padding:.6rem 1rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;font-size:.88rem;margin:.4rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e2e2e2;white-space:nowrap;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600}
th:first-child,td:first-child{position:sticky;left:0;background:#fff}th:first-child{background:#f6f6f6}
.num{text-align:right;font-variant-numeric:tabular-nums}
.spread{color:#666;font-size:.85em;margin-left:.25em}
.real{color:#b00020}
figure{margin:1rem 0}figure svg{display:block;width:100%;height:auto;max-width:960px;min-width:600px}
figcaption{font-size:.85rem;color:#555}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f5f5;padding:.6rem;font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
ul.files{columns:16rem;padding-left:1.2rem}
@media (max-width:600px){body{font-size:15px}th,td{padding:.25rem .4rem}dl{grid-template-columns:1fr}}
";

/// The whole page around `body`.
pub fn page(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n<nav>{nav}</nav>\n{body}</main>\n</body>\n</html>\n",
        title = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(file_href("a b&<c>.json"), "./a%20b%26%3Cc%3E.json");
        let mut t = Table::new(&["variant", "x"], 1);
        t.push(vec!["<script>".into(), "3.41 µs (3.30–3.52)".into()]);
        let html = table_html(&t);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains(
                "<td class=\"num\">3.41 µs<span class=\"spread\"> (3.30–3.52)</span></td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_real_change_stands_out() {
        assert_eq!(
            cell_html("1.50× real, p=0.0079 (1.00k → 1.50k)"),
            "1.50× <strong class=\"real\">real</strong>, p=0.0079<span class=\"spread\"> (1.00k → 1.50k)</span>"
        );
        assert_eq!(
            cell_html("0.98× within noise (1.00k → 0.98k)"),
            "0.98× within noise<span class=\"spread\"> (1.00k → 0.98k)</span>"
        );
    }
}
