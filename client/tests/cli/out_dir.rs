//! Output folders (issue 26): a symlink planted in a report folder is replaced, never written
//! through, and a folder that is not the caller's own is refused before anything is measured.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use crate::util::{TestDir, client, compare};

const VICTIM: &[u8] = b"bytes that must survive the run\n";

/// The names in `dir` ending in `.tmp`, sorted.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// A folder of ours that other users may write in (mode 0777, no sticky bit).
fn open_folder(parent: &TestDir) -> std::path::PathBuf {
    let dir = parent.path().join("open");
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn links_planted_in_the_report_folder_are_replaced_not_followed() {
    let runtime = TestDir::new("outdir-rt");
    let root = TestDir::new("outdir-links");
    let victim = root.path().join("victim");
    std::fs::write(&victim, VICTIM).unwrap();
    let report = root.path().join("report");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&report)
        .unwrap();
    // What another user did to the folder a root run was told to write in: the report's own
    // names, and the temporary name the atomic write used to take, all pointing at the victim.
    let planted = [
        "summary.md",
        "summary.json",
        "report.html",
        "pipe-same-cpu-client-handoff.hgrm",
    ];
    for name in planted.iter().chain(&["summary.md.tmp"]) {
        symlink(&victim, report.join(name)).unwrap();
    }
    let out = compare(
        runtime.path(),
        &[
            "--variants",
            "pipe",
            "--placements",
            "same-cpu",
            "--rounds",
            "20",
            "--max-seconds",
            "60",
            "--repeats",
            "1",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        VICTIM,
        "the victim is untouched"
    );
    for name in planted {
        let meta = std::fs::symlink_metadata(report.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is a regular file now");
        assert!(meta.len() > 0, "{name} holds the report");
    }
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("lockfair-client compare"), "{md}");
    // The planted temporary name was left as it was (a link, never opened); nothing of ours.
    assert_eq!(temporaries(&report), ["summary.md.tmp"]);
    assert!(
        std::fs::symlink_metadata(report.join("summary.md.tmp"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_report_folder_of_another_uid_is_refused_with_exit_code_2() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: only root can give a folder to another uid");
        return;
    }
    let runtime = TestDir::new("outdir-foreign-rt");
    let root = TestDir::new("outdir-foreign");
    let theirs = root.path().join("theirs");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&theirs)
        .unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let out = compare(
        runtime.path(),
        &["--variants", "pipe", "--out", theirs.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage error, as a bad --out is"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "lockfair-client: cannot write the report to {}: it belongs to uid 65534, not to you (uid 0); pass an --out DIR you own",
            theirs.display()
        )
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(
        std::fs::read_dir(runtime.path()).unwrap().count(),
        0,
        "no server was started"
    );
}

#[test]
fn every_writer_refuses_a_folder_others_can_write_in() {
    let root = TestDir::new("outdir-open");
    let dir = open_folder(&root);
    let dir_arg = dir.to_str().unwrap();
    let runtime = TestDir::new("outdir-open-rt");
    let runs = [
        (
            "compare",
            compare(runtime.path(), &["--out", dir_arg]),
            Some(2),
        ),
        (
            "run",
            client(
                &[
                    "run",
                    "--variant",
                    "pipe",
                    "--socket",
                    root.path().join("no-server.sock").to_str().unwrap(),
                    "--kernel-trace",
                    "--out",
                    dir_arg,
                ],
                Duration::from_secs(30),
            ),
            Some(2),
        ),
        (
            "man",
            client(&["man", "--out", dir_arg], Duration::from_secs(30)),
            Some(1),
        ),
    ];
    for (what, out, code) in runs {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), code, "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        assert!(
            err.contains("it is mode 777: other users can replace files in it")
                && err.contains("--out DIR"),
            "{what}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
}
