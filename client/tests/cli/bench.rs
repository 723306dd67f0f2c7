//! `bench --json`: the comparison with the C yardstick as data that reads back into the same
//! schema, every cell with its medians, ranges and ratio.

use std::process::Command;
use std::time::Duration;

use lockfair::experiment::bench::BenchReport;

use crate::util::{TestDir, client, run_within, server_bin};

/// Compiles `bench/<name>.c` into `dir` with the C compiler Rust links with.
fn build_c(dir: &TestDir, name: &str) -> String {
    let source = format!("{}/../bench/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let out_path = dir.path().join(name);
    let out = run_within(
        Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&out_path)
            .arg(source),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_path.to_str().unwrap().to_string()
}

#[test]
fn bench_json_round_trips_its_schema_with_every_cell() {
    let dir = TestDir::new("bench");
    let pingpong = build_c(&dir, "pingpong");
    let anatomy = build_c(&dir, "spin_anatomy");
    let server = server_bin();
    let split = lockfair::placement::allowed_cpus().len() >= 2;
    let placements = if split { "same-cpu,split" } else { "same-cpu" };
    let out = client(
        &[
            "bench",
            "--anatomy",
            &anatomy,
            "--pingpong",
            &pingpong,
            "--server-bin",
            server.to_str().unwrap(),
            "--rounds",
            "200",
            "--repeats",
            "2",
            "--placements",
            placements,
            "--json",
        ],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: BenchReport = serde_json::from_slice(&out.stdout).expect("bench --json schema");
    assert_eq!((report.rounds, report.repeats), (200, 2));
    let mut want = vec!["same-cpu eventfd", "same-cpu futex", "same-cpu pipe"];
    if split {
        want.extend(["split eventfd", "split futex", "split pipe", "split spin"]);
        want.push("split measured-spin");
    }
    let got: Vec<String> = report
        .rows
        .iter()
        .map(|r| format!("{} {}", r.placement, r.mechanism))
        .collect();
    assert_eq!(got, want);
    for r in &report.rows {
        let what = format!("{} {}", r.placement, r.mechanism);
        assert!(r.c_ns > 0.0, "{what}");
        assert_eq!(r.lockfair_ns, Some(r.lockfair_spread_ns.median), "{what}");
        let ratio = r.ratio.unwrap_or(f64::NAN);
        let want = r.lockfair_spread_ns.median / r.c_ns;
        assert!(
            (ratio - want).abs() <= 1e-9 * want,
            "{what}: {ratio} vs {want}"
        );
        for s in [
            r.c_spread_ns,
            r.lockfair_spread_ns,
            r.lockfair_p50_spread_ns,
            r.ratio_spread,
        ] {
            assert!(
                s.min > 0.0 && s.min <= s.median && s.median <= s.max,
                "{what}: {s:?}"
            );
        }
    }
    // Printed again, it is the same text: no field lost or renamed on the way back.
    let again = serde_json::to_value(&report).unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again, printed);
}
