//! README's Layout names exactly the library's modules, so a reader's map of the code is never
//! out of date.

use std::collections::BTreeSet;

const README: &str = include_str!("../../../README.md");
const LIB: &str = include_str!("../../../shared/src/lib.rs");

/// The modules `lib.rs` declares (`pub mod name;`).
fn library_modules() -> BTreeSet<String> {
    LIB.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

/// The module names README's Layout gives, layer by layer: backticked lower-case words (a
/// trailing `/` marks a folder) between "Layer by layer" and "A test checks this list".
fn readme_modules() -> BTreeSet<String> {
    let layout = README
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a Layout section");
    let layers = layout
        .split_once("Layer by layer")
        .and_then(|(_, rest)| rest.split_once("A test checks this list"))
        .map(|(layers, _)| layers)
        .expect("the Layout lists the layers, then says a test checks them");
    layers
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|word| word.trim_end_matches('/'))
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter(|&w| !["unsafe", "run", "compare", "bench", "probe"].contains(&w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_layout_names_every_library_module_and_no_other() {
    let lib = library_modules();
    let readme = readme_modules();
    let missing: Vec<_> = lib.difference(&readme).collect();
    let stale: Vec<_> = readme.difference(&lib).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README's Layout is out of date: add {missing:?}, remove {stale:?}"
    );
}
