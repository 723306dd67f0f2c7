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

/// The module names README's Layout gives for `shared/`: backticked lower-case words (a trailing
/// `/` marks a folder) in its first bullet, but the library's own name.
fn readme_modules() -> BTreeSet<String> {
    let layout = README
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a Layout section");
    let bullet = layout
        .trim_start()
        .strip_prefix("- `shared/`")
        .and_then(|rest| rest.split("\n- ").next())
        .expect("the Layout opens with the shared/ bullet");
    bullet
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|word| word.trim_end_matches('/'))
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter(|&w| {
            ![
                "shared", "lockfair", "unsafe", "run", "compare", "bench", "probe",
            ]
            .contains(&w)
        })
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
