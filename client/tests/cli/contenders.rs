//! `--contenders N` and `--mode turns|free`: fair handoffs never whoop, free-mode totals add up,
//! and every helper contender is reaped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{
    HANG, Server, assert_free_run_adds_up, client, client_bin, run_json, run_within, wait_exit,
};

/// Processes whose environment carries `tag` (helper contenders inherit the client's).
fn tagged(tag: &str) -> Vec<u32> {
    let needle = format!("LOCKFAIR_TEST_TAG={tag}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// How many times process `pid` has gone to sleep (0 once it is gone).
fn voluntary_switches(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn run_tagged(server: &Server, tag: &str, args: &[&str]) -> serde_json::Value {
    let out = run_within(
        Command::new(client_bin())
            .args(["run", "--socket", server.socket.to_str().unwrap(), "--json"])
            .args(args)
            .env("LOCKFAIR_TEST_TAG", tag),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn fair_handoffs_never_whoop_for_any_number_of_contenders() {
    let server = Server::start();
    for n in [2, 3, 5, 8] {
        for variant in ["ticket", "eventfd", "lock-chain", "spin-futex"] {
            let what = format!("{variant} with {n} contenders");
            let tag = format!("fair-{variant}-{n}-{}", std::process::id());
            let n_arg = n.to_string();
            let r = run_tagged(
                &server,
                &tag,
                &[
                    "--variant",
                    variant,
                    "--contenders",
                    &n_arg,
                    "--rounds",
                    "200",
                    "--max-seconds",
                    "60",
                ],
            );
            assert_eq!(r["contender_count"], n, "{what}");
            let contenders = r["contenders"].as_array().unwrap();
            assert_eq!(contenders.len(), n, "{what}");
            for c in contenders {
                assert_eq!(c["whoops"], 0, "{what}: {c}");
                assert_eq!(c["overlaps"], 0, "{what}: {c}");
                assert_eq!(c["wrong_reads"], 0, "{what}: {c}");
                assert_eq!(c["acquisitions"], 200, "{what}: {c}");
            }
            assert_eq!(r["barging_rate"], 0.0, "{what}");
            assert_eq!(r["jain_index"], 1.0, "{what}");
            assert!(
                tagged(&tag).is_empty(),
                "{what}: every helper contender was reaped"
            );
        }
    }
}

#[test]
fn free_mode_totals_add_up_and_jain_stays_in_bounds() {
    let server = Server::start();
    for n in [2usize, 3, 4] {
        for variant in ["ofd", "futex", "ticket", "eventfd", "pipe", "spin-futex"] {
            let what = format!("{variant} free with {n} contenders");
            let tag = format!("free-{variant}-{n}-{}", std::process::id());
            let n_arg = n.to_string();
            let k = 2_000u64;
            let r = run_tagged(
                &server,
                &tag,
                &[
                    "--variant",
                    variant,
                    "--mode",
                    "free",
                    "--contenders",
                    &n_arg,
                    "--rounds",
                    &k.to_string(),
                    "--max-seconds",
                    "60",
                ],
            );
            assert_free_run_adds_up(&r, n as u64, k, &what);
            for c in r["contenders"].as_array().unwrap() {
                assert!(c["acquisitions_in_window"].as_u64().unwrap() <= k, "{what}");
            }
            if let Some(j) = r["jain_index"].as_f64() {
                assert!(
                    j >= 1.0 / n as f64 - 1e-9 && j <= 1.0 + 1e-9,
                    "{what}: Jain {j}"
                );
            }
            let barging = r["barging_rate"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&barging), "{what}: barging {barging}");
            assert!(r["max_wait_ns"].as_u64().unwrap() > 0, "{what}");
            assert!(
                tagged(&tag).is_empty(),
                "{what}: every helper contender was reaped"
            );
        }
    }
}

#[test]
fn the_ticket_lock_serves_in_order_and_never_barges() {
    let server = Server::start();
    for n in ["2", "3"] {
        let r = run_json(
            &server,
            &[
                "--variant",
                "ticket",
                "--mode",
                "free",
                "--contenders",
                n,
                "--rounds",
                "20000",
            ],
        );
        // Barging is counted against who was waiting when the lock was released; a FIFO lock
        // serves those first, so its releaser never gets straight back in past them.
        assert_eq!(r["barging_rate"], 0.0, "{r}");
        for c in r["contenders"].as_array().unwrap() {
            assert_eq!(c["barging"], 0, "{c}");
        }
    }
}

#[test]
fn a_helper_contender_killed_mid_run_ends_the_run_and_nothing_is_left() {
    let server = Server::start();
    let tag = format!("kill-{}", std::process::id());
    let mut child = Command::new(client_bin())
        .args([
            "run",
            "--socket",
            server.socket.to_str().unwrap(),
            "--variant",
            "eventfd",
        ])
        .args([
            "--contenders",
            "4",
            "--rounds",
            "1000000000",
            "--max-seconds",
            "60",
        ])
        .env("LOCKFAIR_TEST_TAG", &tag)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client_pid = child.id();
    // Wait for the helpers to be taking turns, past the start line: every eventfd turn puts a
    // contender to sleep and wakes it, where waiting at the start line is one sleep.
    let give_up = Instant::now() + HANG;
    let victim = loop {
        let helpers: Vec<u32> = tagged(&tag)
            .into_iter()
            .filter(|&p| p != client_pid)
            .collect();
        if helpers.len() == 2 && voluntary_switches(helpers[0]) > 1_000 {
            break helpers[0];
        }
        assert!(
            Instant::now() < give_up,
            "the helper contenders did not start taking turns"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    let status = wait_exit(&mut child, HANG).expect("the run ends");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!("pid {victim}")) && err.contains("exited mid-run"),
        "{err}"
    );
    let give_up = Instant::now() + HANG;
    while !tagged(&tag).is_empty() {
        assert!(
            Instant::now() < give_up,
            "helpers left behind: {:?}",
            tagged(&tag)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server's session ends too (it sees the stop flag, or the client's death), and it
    // serves the next client.
    let line = server.wait_for_outcome("eventfd", HANG);
    assert!(
        line.contains("failed") || line.contains("peer_aborted"),
        "{line}"
    );
    assert_eq!(
        run_json(&server, &["--variant", "futex", "--rounds", "50"])["client"]["rounds"],
        50
    );
}

#[test]
fn unsupported_combinations_are_refused_with_the_reason() {
    let server = Server::start();
    let socket = server.socket.to_str().unwrap();
    let out = client(
        &[
            "run",
            "--socket",
            socket,
            "--variant",
            "seed",
            "--contenders",
            "3",
        ],
        HANG,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed supports exactly 2 contenders"));
    let out = client(
        &[
            "run",
            "--socket",
            socket,
            "--variant",
            "lock-chain",
            "--mode",
            "free",
        ],
        HANG,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use --mode turns"));
}
