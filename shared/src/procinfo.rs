//! What the kernel itself says about locks: `/proc/locks` (and `lslocks`, when installed), and
//! the few other `/proc` facts the lock experiments report: the kernel release, a mount's
//! options, our effective capabilities. [`holder`]: who holds a lock, by each of the kernel's
//! records (`/proc/locks`, `F_GETLK`, fdinfo, a lock word's owner TID).

pub mod holder;

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

use nix::sys::stat::{fstat, major, minor};
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
    let st = fstat(fd).ok()?;
    Some(format!(
        "{:02x}:{:02x}:{}",
        major(st.st_dev),
        minor(st.st_dev),
        st.st_ino
    ))
}

/// The `/proc/locks` lines for the file behind `fd`, holders and blocked requests alike.
pub fn proc_locks_for(fd: impl AsFd) -> Vec<ProcLock> {
    match lock_file_id(fd) {
        Some(id) => proc_locks_for_id(&id),
        None => Vec::new(),
    }
}

/// The `/proc/locks` lines for the file with this [`lock_file_id`]. Experiments on POSIX locks
/// take the id once and use this: opening and closing a descriptor just to ask would drop the
/// process's own POSIX locks on the file.
///
/// The kernel walks its lock list afresh for each read(2) of `/proc/locks`, at most a page each,
/// resuming by position: while other processes take and drop locks (on any file), lines at the
/// seams between walks can be skipped or repeated. A file read in one walk is a true snapshot and
/// is taken at once; a longer one is taken when `AGREEING_READS` reads in a row agree on this
/// file's lines, line numbers aside.
pub fn proc_locks_for_id(id: &str) -> Vec<ProcLock> {
    let read = || {
        let (text, walks) = read_proc_locks();
        (parse_proc_locks(&text, id), walks)
    };
    let (mut answer, walks) = read();
    if walks <= 1 {
        return answer;
    }
    let mut agreeing = 1;
    for _ in 1..MOST_READS {
        let (next, walks) = read();
        if walks <= 1 {
            return next;
        }
        agreeing = if same_locks(&answer, &next) {
            agreeing + 1
        } else {
            1
        };
        answer = next;
        if agreeing == AGREEING_READS {
            break;
        }
    }
    answer
}

/// `/proc/locks`, and how many walks of the kernel's list it took: one per read(2) that returned
/// something. Each read asks for far more than a page (`read_to_string` starts with small reads:
/// many walks, many seams).
fn read_proc_locks() -> (String, usize) {
    let Ok(mut file) = std::fs::File::open("/proc/locks") else {
        return (String::new(), 0);
    };
    let mut text = Vec::new();
    let mut walks = 0;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match std::io::Read::read(&mut file, &mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                walks += 1;
                text.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), walks)
}

/// Reads of `/proc/locks` that must agree before their answer is taken.
const AGREEING_READS: usize = 5;
/// Reads after which the last answer is taken, agreed or not (only constant churn gets here).
const MOST_READS: usize = 100;

/// The same locks, in the same order, whatever line numbers the two reads gave them.
fn same_locks(a: &[ProcLock], b: &[ProcLock]) -> bool {
    let unnumbered = |l: &ProcLock| l.line.split_once(": ").map(|(_, rest)| rest.to_string());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| unnumbered(x) == unnumbered(y))
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

/// `lslocks`' lines (no header) for the file's inode, if `lslocks` is installed and answers
/// within five seconds. Matched by inode number alone: `lslocks` prints no device.
pub fn lslocks_for(fd: impl AsFd) -> Option<Vec<String>> {
    let ino = fstat(fd).ok()?.st_ino.to_string();
    let out = crate::command::output_within(
        Command::new("lslocks").args([
            "--noheadings",
            "--raw",
            "--output",
            "COMMAND,PID,TYPE,MODE,M,START,END,PATH,INODE",
        ]),
        std::time::Duration::from_secs(5),
    )
    .ok()??;
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

/// The running kernel's release, as `uname -r` prints it (`/proc/sys/kernel/osrelease`).
pub fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// `CAP_SYS_ADMIN`'s bit number, for [`has_effective_capability`].
pub const CAP_SYS_ADMIN: u32 = 21;

/// Whether capability number `cap` is in our effective set (`CapEff` in `/proc/self/status`).
pub fn has_effective_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    parse_cap_eff(&status).is_some_and(|mask| cap < 64 && mask & (1 << cap) != 0)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// What one process costs the machine, as `/proc/PID` says: resident memory now and at its
/// peak (`VmRSS`, `VmHWM` of `status`, in KiB) and its open descriptors (entries of `fd/`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProcessCost {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub fds: u64,
}

impl ProcessCost {
    /// Of process `pid`, if it is there to ask (and ours to read).
    pub fn of(pid: i32) -> Option<ProcessCost> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(ProcessCost {
            rss_kib: status_kib(&status, "VmRSS:")?,
            hwm_kib: status_kib(&status, "VmHWM:")?,
            fds,
        })
    }

    /// Two processes' costs added (a group of helpers counts as one).
    pub fn plus(self, o: ProcessCost) -> ProcessCost {
        ProcessCost {
            rss_kib: self.rss_kib.saturating_add(o.rss_kib),
            hwm_kib: self.hwm_kib.saturating_add(o.hwm_kib),
            fds: self.fds.saturating_add(o.fds),
        }
    }

    /// The larger of each figure: two looks at one process.
    pub fn peak(self, o: ProcessCost) -> ProcessCost {
        ProcessCost {
            rss_kib: self.rss_kib.max(o.rss_kib),
            hwm_kib: self.hwm_kib.max(o.hwm_kib),
            fds: self.fds.max(o.fds),
        }
    }
}

/// A `Name:   1234 kB` line of `/proc/PID/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix(name))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A mount as `/proc/self/mountinfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MountInfo {
    pub fs_type: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub mount_options: String,
    /// The filesystem's own (superblock) options, where `mand` would show.
    pub super_options: String,
}

/// The mount whose mount point is exactly `mount_point`, if any (the last one, if stacked).
pub fn mount_info(mount_point: &Path) -> Option<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    parse_mountinfo(&text, &mount_point.to_string_lossy())
}

fn parse_mountinfo(text: &str, mount_point: &str) -> Option<MountInfo> {
    // "ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
    text.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if unescape_octal(left.get(4)?) != mount_point {
            return None;
        }
        Some(MountInfo {
            fs_type: right.first()?.to_string(),
            mount_options: left.get(5)?.to_string(),
            super_options: right.get(2)?.to_string(),
        })
    })
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_cost_has_memory_and_descriptors() {
        let me = ProcessCost::of(std::process::id() as i32).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib, "{me:?}");
        assert!(me.fds >= 3, "{me:?}");
        assert_eq!(me.plus(me).fds, 2 * me.fds);
        assert_eq!(ProcessCost::of(-1), None);
        assert_eq!(status_kib("VmHWM:\t  2048 kB\n", "VmHWM:"), Some(2048));
    }

    #[test]
    fn reads_the_effective_capabilities() {
        let status = "Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let mask = parse_cap_eff(status).unwrap();
        assert_ne!(mask & (1 << CAP_SYS_ADMIN), 0);
        assert_eq!(parse_cap_eff("CapEff:\t0000000000000000\n"), Some(0));
    }

    #[test]
    fn finds_a_mount_and_its_superblock_options() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    42 27 0:39 / /tmp/a\\040b rw,nosuid,nodev,noexec,relatime - tmpfs lockfair rw,mand,size=1024k,mode=700\n";
        let m = parse_mountinfo(text, "/tmp/a b").unwrap();
        assert_eq!(m.fs_type, "tmpfs");
        assert_eq!(m.mount_options, "rw,nosuid,nodev,noexec,relatime");
        assert!(m.super_options.split(',').any(|o| o == "mand"));
        assert_eq!(parse_mountinfo(text, "/").unwrap().fs_type, "ext4");
        assert_eq!(parse_mountinfo(text, "/tmp"), None);
    }

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
