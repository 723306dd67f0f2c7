//! The list of variants, written once: the [`Variant`] enum, [`Variant::ALL`] and the dispatch
//! to each variant's [`Spec`] come from one invocation of `registry!` below.
//!
//! The order is the wire format (postcard encodes a variant by its index) and the report order:
//! a new variant goes at the end. Each line names the enum variant and its module, whose
//! `SPEC` says everything else; the doc comment is the command line's help text.

use serde::{Deserialize, Serialize};

use super::Spec;
use super::{
    async_lock, eventfd, fair_futex, flock, fs4, futex, lock_chain, lockf, ofd, pi_futex, pipe,
    poll_lock, posix, robust_mutex, seed, spin_futex, starvation_futex, std_lock, ticket,
    tokio_eventfd, uring_futex,
};

macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)*) => {
        /// The handoff mechanisms lockfair compares. Names are the command-line interface.
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Serialize,
            Deserialize,
            clap::ValueEnum,
        )]
        #[serde(rename_all = "kebab-case")]
        pub enum Variant {
            $($(#[$doc])* $variant,)*
        }

        impl Variant {
            /// Every variant, in report order.
            pub const ALL: [Variant; [$(stringify!($variant)),*].len()] = [$(Variant::$variant),*];

            /// All this variant is.
            pub fn spec(self) -> &'static Spec {
                match self {
                    $(Variant::$variant => &$module::SPEC,)*
                }
            }
        }

        /// Each variant's module, in [`Variant::ALL`]'s order (for the registry's own checks).
        #[cfg(test)]
        const MODULES: [&str; Variant::ALL.len()] = [$(stringify!($module)),*];
    };
}

registry! {
    /// F_OFD_SETLKW on the descriptor received over SCM_RIGHTS, turn in the shared file offset:
    /// the seed experiment as it was written. Both sides share one open file description.
    Seed => seed,
    /// F_OFD_SETLKW, each side through its own open file description; turn in the arena.
    Ofd => ofd,
    /// F_SETLKW process-associated record lock.
    Posix => posix,
    /// lockf(F_LOCK).
    Lockf => lockf,
    /// flock(LOCK_EX) on each side's own open file description.
    Flock => flock,
    /// One eventfd per contender: the turn is handed over explicitly.
    Eventfd => eventfd,
    /// FUTEX_WAIT / FUTEX_WAKE on the arena's turn word.
    Futex => futex,
    /// A pipe per contender, one byte per handoff: the classic IPC baseline.
    Pipe => pipe,
    /// A FIFO ticket lock on futexes in the arena, waking only the next ticket's holder.
    Ticket => ticket,
    /// Spin on the turn word while its holder runs on another CPU, then FUTEX_WAIT.
    SpinFutex => spin_futex,
    /// The eventfd handoff driven by a tokio runtime (AsyncFd).
    TokioEventfd => tokio_eventfd,
    /// Hand-over-hand OFD byte-range locks: file locks only, strictly alternating.
    LockChain => lock_chain,
    /// A priority-inheritance futex (FUTEX_LOCK_PI): the kernel hands the lock to its top waiter.
    PiFutex => pi_futex,
    /// glibc's process-shared robust pthread mutex, placed in the arena.
    RobustMutex => robust_mutex,
    /// Eventual fairness (parking_lot): barging, but a handoff once a random 0-1 ms deadline passed.
    FairFutex => fair_futex,
    /// Go's sync.Mutex: a waiter starved over 1 ms switches the lock to FIFO handoff.
    StarvationFutex => starvation_futex,
    /// FUTEX_WAIT / FUTEX_WAKE on the turn word submitted through io_uring (Linux ≥ 6.7).
    UringFutex => uring_futex,
    /// std::fs::File::lock (flock LOCK_EX on Linux), each side on its own open file description.
    StdLock => std_lock,
    /// File::try_lock (flock LOCK_NB) in a loop, sleeping 0.5-1.5 ms after each refusal.
    PollLock => poll_lock,
    /// The fs4 crate's FileExt::lock (flock through rustix), the ecosystem's most used lock crate.
    Fs4 => fs4,
    /// std's File::lock (flock) in tokio's spawn_blocking, awaited on a current-thread runtime.
    AsyncLock => async_lock,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::experiment::compare::{CompareOptions, plan};
    use crate::experiment::{Shape, bench};
    use crate::placement::Placement;
    use crate::report::family::Family;
    use crate::variant::{Description, Yardstick};

    #[test]
    fn a_variants_name_is_its_serde_and_command_line_name() {
        for v in Variant::ALL {
            let name = v.spec().name;
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
            let value = clap::ValueEnum::to_possible_value(&v).unwrap();
            assert_eq!(value.get_name(), name);
            assert!(value.get_help().is_some(), "{name} has no help text");
            assert_eq!(v.to_string(), name);
        }
        let unique: BTreeSet<_> = Variant::ALL.iter().map(|v| v.spec().name).collect();
        assert_eq!(unique.len(), Variant::ALL.len());
    }

    /// `compare` (whose default is every variant), `bench`, `crash` and the reports: no variant
    /// drops out of any of them unseen.
    #[test]
    fn every_variant_reaches_compare_bench_crash_and_the_reports() {
        let opts = CompareOptions {
            variants: Variant::ALL.to_vec(),
            placements: vec![Placement::Free],
            shape: Shape::new(10, 1.0),
            sweep: Vec::new(),
            repeats: 1,
            server_bin: None,
            command: "test".into(),
            kernel_trace: false,
            hold_idle: false,
        };
        let planned = plan(&opts).report;
        let mechanisms = bench::mechanisms();
        for v in Variant::ALL {
            let spec = v.spec();
            // compare: run, or listed as skipped only because this machine cannot run it.
            assert!(planned.variants.contains(&v));
            if let Some(s) = planned.skipped.iter().find(|s| s.variant == v) {
                assert!(
                    spec.supports.available.is_some(),
                    "{v} skipped: {}",
                    s.reason
                );
            }
            // bench: a counterpart in the C yardstick, or the reason it has none.
            match spec.yardstick {
                Yardstick::Counterpart { mode, .. } => {
                    assert!(["eventfd", "futex", "pipe", "spin"].contains(&mode), "{v}");
                    assert!(mechanisms.iter().any(|&(m, w, _)| m == mode && w == v));
                }
                Yardstick::NoCounterpart(why) => assert!(!why.is_empty(), "{v}"),
            }
            // crash: at least one plain cell.
            assert!(!crate::crash::cells(false, &[v], &[]).is_empty(), "{v}");
            // The reports: a family with a panel and a title.
            assert!(Family::ALL.contains(&Family::of(v)), "{v}");
            assert!(!Family::of(v).title().is_empty());
        }
        // The sweep and `--anatomy` set spin-futex against the C spin, and futex against its
        // futex wait.
        for mode in ["spin", "futex"] {
            assert_eq!(mechanisms.iter().filter(|&&(m, ..)| m == mode).count(), 1);
        }
    }

    #[test]
    fn every_variant_has_exactly_one_family() {
        let total: usize = Family::ALL
            .iter()
            .map(|f| f.members(&Variant::ALL).len())
            .sum();
        assert_eq!(total, Variant::ALL.len());
        assert_eq!(Family::of(Variant::Ofd), Family::FileLocks);
        assert_eq!(Family::of(Variant::Eventfd), Family::ExplicitHandoffs);
        assert_eq!(Family::of(Variant::Ticket), Family::FifoLocks);
        for v in [
            Variant::Futex,
            Variant::PiFutex,
            Variant::RobustMutex,
            Variant::FairFutex,
            Variant::StarvationFutex,
            Variant::SpinFutex,
            Variant::UringFutex,
        ] {
            assert_eq!(Family::of(v), Family::Mutexes, "{v}");
        }
        for v in [Variant::Eventfd, Variant::Pipe, Variant::TokioEventfd] {
            assert_eq!(Family::of(v), Family::ExplicitHandoffs, "{v}");
        }
    }

    /// A file lock's death depends on who else holds the description: each has both cells,
    /// but the seed, whose description is always shared.
    #[test]
    fn every_file_lock_dies_in_both_description_cases() {
        let cells = crate::crash::cells(false, &[], &[]);
        for v in Family::FileLocks.members(&Variant::ALL) {
            let cases: Vec<Description> = cells
                .iter()
                .filter(|c| c.variant == v)
                .map(|c| c.description)
                .collect();
            if v.shares_description() {
                assert_eq!(cases, [Description::Shared], "{v}");
            } else {
                assert_eq!(cases, [Description::Own, Description::Shared], "{v}");
            }
        }
    }

    #[test]
    fn a_variant_that_offers_a_way_out_says_how() {
        for v in Variant::ALL {
            let death = &v.spec().death;
            if death.survivable.is_empty() {
                assert!(death.protection.is_none(), "{v}: a protection nobody runs");
            } else {
                assert!(
                    death.protection.is_some() || death.robust_mutex.is_some(),
                    "{v}: survivable cells with no way out"
                );
            }
        }
    }

    /// Outside tests, `Variant::X` is written only in X's own file (and the registry): the rest
    /// of the code asks the spec.
    #[test]
    fn a_variant_is_named_only_in_its_own_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["src", "../client/src", "../server/src"] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} files", files.len());
        let tests_only = test_only_modules(&files);
        files.retain(|f| {
            !tests_only
                .iter()
                .any(|t| f.starts_with(t) || f == &t.with_extension("rs"))
        });
        for (v, module) in Variant::ALL.into_iter().zip(MODULES) {
            let word = format!("Variant::{v:?}");
            let allowed = [
                root.join("src/variant/registry.rs"),
                root.join(format!("src/variant/{module}.rs")),
            ];
            let naming: Vec<&PathBuf> = files
                .iter()
                .filter(|f| names(&library_code(f), &word))
                .filter(|f| !allowed.contains(f))
                .collect();
            assert!(naming.is_empty(), "{word} outside its file: {naming:?}");
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Where the modules declared `#[cfg(test)] mod name;` live (`dir/name`, as a path without
    /// `.rs`): files of tests only, like the session loops' fakes and the golden bytes.
    fn test_only_modules(files: &[PathBuf]) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            let dir = match file.file_name().and_then(|n| n.to_str()) {
                Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().unwrap().to_path_buf(),
                _ => file.with_extension(""),
            };
            let mut lines = text.lines().map(str::trim);
            while let Some(line) = lines.next() {
                if line != "#[cfg(test)]" {
                    continue;
                }
                let next = lines.next().unwrap_or_default();
                let name = next
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ")
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'));
                if let Some(name) = name {
                    found.push(dir.join(name));
                }
            }
        }
        found
    }

    /// The file's code without its comments and its unit-test module (by this crate's
    /// convention, and `house.py`'s, the test module comes last).
    fn library_code(file: &Path) -> String {
        let text = std::fs::read_to_string(file).unwrap();
        let mut code = String::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let is_test_mod = |l: &str| {
                let l = l.trim_start();
                l.starts_with("mod ")
                    || l.starts_with("pub mod ")
                    || l.starts_with("pub(crate) mod ")
            };
            if line.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|l| is_test_mod(l)) {
                break;
            }
            code.push_str(line.split("//").next().unwrap_or(""));
            code.push('\n');
        }
        code
    }

    /// True if `code` has `word` not followed by more of an identifier.
    fn names(code: &str, word: &str) -> bool {
        code.match_indices(word).any(|(at, _)| {
            code[at + word.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    }
}
