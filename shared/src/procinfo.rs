//! What the kernel itself says about locks: `/proc/locks` (and `lslocks`, when installed).

use std::os::fd::AsFd;
use std::process::Command;

use serde::Serialize;

/// One `/proc/locks` line that concerns our file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcLock {
    /// The line as the kernel printed it.
    pub line: String,
    /// `FLOCK`, `POSIX`, `OFDLCK`, ...
    pub kind: String,
    /// `READ` or `WRITE`.
    pub access: String,
    /// The owner's pid; -1 for OFD locks, which belong to no process.
    pub pid: i64,
    /// A `->` line: a request blocked behind the lock above it.
    pub blocked: bool,
}

/// The `MAJ:MIN:INODE` id `/proc/locks` uses for the file behind `fd`.
pub fn lock_file_id(fd: impl AsFd) -> Option<String> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some(format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(st.st_dev),
        rustix::fs::minor(st.st_dev),
        st.st_ino
    ))
}

/// The `/proc/locks` lines for the file behind `fd`, holders and blocked requests alike.
pub fn proc_locks_for(fd: impl AsFd) -> Vec<ProcLock> {
    let Some(id) = lock_file_id(fd) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    parse_proc_locks(&text, &id)
}

fn parse_proc_locks(text: &str, id: &str) -> Vec<ProcLock> {
    text.lines()
        .filter_map(|line| {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            let blocked = fields.get(1) == Some(&"->");
            if blocked {
                fields.remove(1);
            }
            // "N: KIND ADVISORY ACCESS PID MAJ:MIN:INODE START END"
            if fields.get(5) != Some(&id) {
                return None;
            }
            Some(ProcLock {
                line: line.trim().to_string(),
                kind: fields.get(1)?.to_string(),
                access: fields.get(3)?.to_string(),
                pid: fields.get(4)?.parse().ok()?,
                blocked,
            })
        })
        .collect()
}

/// `lslocks`' lines for the file's inode, if `lslocks` is installed (header included).
pub fn lslocks_for(fd: impl AsFd) -> Option<Vec<String>> {
    let ino = rustix::fs::fstat(fd).ok()?.st_ino.to_string();
    let out = Command::new("lslocks")
        .args([
            "--noheadings",
            "--raw",
            "--output",
            "COMMAND,PID,TYPE,MODE,M,START,END,PATH,INODE",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.split_whitespace().last() == Some(ino.as_str()))
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holders_and_blocked_requests() {
        let text = "1: OFDLCK ADVISORY  WRITE -1 00:01:2050 0 EOF\n\
                    1: -> OFDLCK ADVISORY  WRITE -1 00:01:2050 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 77 00:01:9999 0 EOF\n";
        let got = parse_proc_locks(text, "00:01:2050");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, "OFDLCK");
        assert_eq!(got[0].pid, -1);
        assert!(!got[0].blocked);
        assert!(got[1].blocked);
    }
}
