//! The handoff locks (`pi-futex`, `robust-mutex`, `fair-futex`, `starvation-futex`): they
//! exclude for any number of contenders, their acquisitions add up, and in `--mode turns` every
//! contender gets every turn.

use crate::util::{Server, run_json};

const HANDOFF_LOCKS: [&str; 4] = ["pi-futex", "robust-mutex", "fair-futex", "starvation-futex"];

#[test]
fn handoff_locks_exclude_in_free_mode_and_acquisitions_add_up() {
    let server = Server::start();
    for n in [2usize, 3, 5, 8] {
        for variant in HANDOFF_LOCKS {
            let what = format!("{variant} free with {n} contenders");
            let k = 10_000u64;
            let r = run_json(
                &server,
                &[
                    "--variant",
                    variant,
                    "--mode",
                    "free",
                    "--contenders",
                    &n.to_string(),
                    "--rounds",
                    &k.to_string(),
                ],
            );
            let contenders = r["contenders"].as_array().unwrap();
            assert_eq!(contenders.len(), n, "{what}");
            let total: u64 = contenders
                .iter()
                .map(|c| c["acquisitions"].as_u64().unwrap())
                .sum();
            assert_eq!(total, n as u64 * k, "{what}: N × K acquisitions");
            for c in contenders {
                assert_eq!(c["overlaps"], 0, "{what}: the lock excludes: {c}");
                assert_eq!(c["wait_ns"]["count"], k, "{what}: one wait per acquisition");
            }
        }
    }
}

#[test]
fn handoff_locks_give_every_contender_every_turn() {
    let server = Server::start();
    for variant in HANDOFF_LOCKS {
        let what = format!("{variant} turns with 3 contenders");
        let r = run_json(
            &server,
            &["--variant", variant, "--contenders", "3", "--rounds", "40"],
        );
        for c in r["contenders"].as_array().unwrap() {
            assert_eq!(c["acquisitions"], 40, "{what}: every turn taken: {c}");
            assert_eq!(c["overlaps"], 0, "{what}: {c}");
            assert_eq!(c["wrong_reads"], 0, "{what}: {c}");
        }
        for side in ["server", "client"] {
            assert_eq!(r[side]["end"], "completed", "{what}: {side}");
        }
    }
}
