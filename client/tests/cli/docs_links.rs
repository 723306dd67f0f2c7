//! README, docs/ and results/README.md: every relative link and image resolves to a file that
//! exists, so the front page and the docs map never point at a page that moved.

use std::path::{Path, PathBuf};

/// The repository's root: the client package sits one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the client package has a parent folder")
        .to_path_buf()
}

/// The Markdown files a reader opens from the front page.
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("results/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The targets of `[text](target)` and `![alt](target)` outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Code spans hold command lines, not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// A target that names a file of this repository (not a web address, not an anchor alone).
fn local_file(target: &str) -> Option<&str> {
    let external = ["http://", "https://", "mailto:"];
    if target.is_empty()
        || target.starts_with('#')
        || external.iter().any(|e| target.starts_with(e))
    {
        return None;
    }
    Some(target.split('#').next().unwrap_or(target))
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves_to_a_file() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = page.parent().unwrap();
        for target in link_targets(&text) {
            let Some(file) = local_file(&target) else {
                continue;
            };
            checked += 1;
            if !dir.join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files that do not exist:\n{}",
        broken.join("\n")
    );
    assert!(
        checked > 20,
        "only {checked} relative links found: is the parser reading the pages?"
    );
}

#[test]
fn the_link_reader_finds_links_and_skips_code() {
    let md = "see [a](docs/a.md#x) and ![p](b.svg)\n`[not](c.md)`\n```\n[no](d.md)\n```\n[web](https://e)";
    let found = link_targets(md);
    assert_eq!(found, vec!["docs/a.md#x", "b.svg", "https://e"]);
    let local: Vec<_> = found.iter().filter_map(|t| local_file(t)).collect();
    assert_eq!(local, vec!["docs/a.md", "b.svg"]);
}
