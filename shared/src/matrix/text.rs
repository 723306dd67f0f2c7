//! The terminal report: the table, then each extra experiment as a short paragraph with the
//! kernel's own evidence.

use std::fmt::Write;

use super::{Access, Cell, Concurrency, MatrixReport, UpgradeRun};
use crate::locking::LockFamily;
use crate::procinfo::ProcLock;
use crate::sys::locks::LockMode;

pub(super) fn render(r: &MatrixReport) -> String {
    let mut out = String::new();
    table(&mut out, r);
    upgrade(&mut out, r);
    close(&mut out, r);
    shared_mode(&mut out, r);
    kernel_view(&mut out, r);
    mandatory(&mut out, r);
    out
}

fn mark(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell {
            serialized: true,
            errno,
            ..
        }) => format!("✓ {}", errno.as_deref().unwrap_or("")),
        Some(_) => "✗".to_string(),
        None => "?".to_string(),
    }
}

fn table(out: &mut String, r: &MatrixReport) {
    let _ = writeln!(
        out,
        "Lock semantics matrix (kernel {}, pid {})\n\
         A holds an exclusive lock, B asks for one without waiting; the kernel's answer decides.\n\
         ✓ serialized: B was refused (errno shown)   ✗ not serialized: B was granted as well\n",
        r.kernel, r.pid
    );
    out.push_str("lock   access     threads    processes\n");
    for lock in LockFamily::ALL {
        for access in Access::ALL {
            let _ = writeln!(
                out,
                "{:<6} {:<10} {:<10} {}",
                lock.name(),
                access.name(),
                mark(r.cell(lock, access, Concurrency::Threads)),
                mark(r.cell(lock, access, Concurrency::Processes)),
            );
        }
    }
    out.push_str(
        "\nthreads:   B is a second thread of this process\n\
         processes: B is a helper process (lockfair-client peer)\n\
         same_fd:   A's very descriptor (threads: the same fd number; processes: inherited across fork/exec)\n\
         dup_fd:    a dup(2) of it\n\
         two_fds:   an independent open(2) of the same path\n\
         passed_fd: received over SCM_RIGHTS, the seed's case\n\n",
    );
}

fn proc_lines(out: &mut String, indent: &str, lines: &[ProcLock]) {
    if lines.is_empty() {
        let _ = writeln!(out, "{indent}(no lock on the file)");
    }
    for l in lines {
        let _ = writeln!(out, "{indent}{}", l.line);
    }
}

fn upgrade(out: &mut String, r: &MatrixReport) {
    out.push_str(
        "Atomic mode switch: holder H has a shared lock, waiter W sleeps in an exclusive request\n\
         (listed as blocked, \"->\", in /proc/locks), then H asks for exclusive without waiting.\n",
    );
    let run = |run: &UpgradeRun| {
        let upgrade = match &run.upgrade_errno {
            None => "granted".to_string(),
            Some(e) => format!("refused ({e})"),
        };
        let kept = if run.holder_kept_lock {
            "H kept its lock"
        } else {
            "H was left with NO lock"
        };
        let waiter = match (run.reader_pid.is_some(), run.waiter_got_in) {
            (false, false) => "W kept waiting",
            (false, true) => "W got in",
            (true, false) => "once the reader left, W still waited behind H",
            (true, true) => "once the reader left, W got in",
        };
        format!("upgrade {upgrade}, {kept}; {waiter}")
    };
    for u in &r.upgrade {
        let _ = writeln!(
            out,
            "  {:<6} {}\n         alone:         {}\n         beside reader: {}\n         /proc/locks after the upgrade beside the reader (H {}, R {}, W {}):",
            u.lock.name(),
            if u.atomic {
                "atomic: the waiter never got in before H let go"
            } else {
                "NOT atomic: the shared lock is dropped before the exclusive one is taken"
            },
            run(&u.alone),
            run(&u.beside_reader),
            u.beside_reader.holder_pid,
            u.beside_reader.reader_pid.unwrap_or(-1),
            r.pid,
        );
        proc_lines(
            out,
            "           ",
            &u.beside_reader.proc_locks_after_upgrade,
        );
    }
    out.push_str("  lockf  no shared mode: nothing to upgrade\n\n");
}

fn close(out: &mut String, r: &MatrixReport) {
    out.push_str(
        "The close pitfall: we lock through one descriptor, open the file again and close that\n\
         unrelated descriptor; then another process asks for the lock without waiting.\n",
    );
    for c in &r.close_pitfall {
        let _ = writeln!(
            out,
            "  {:<6} {:<14} (other process {}; /proc/locks after the close: {})",
            c.lock.name(),
            if c.released_by_unrelated_close {
                "lock RELEASED"
            } else {
                "lock kept"
            },
            match &c.other_process_errno {
                None => "granted".to_string(),
                Some(e) => format!("refused: {e}"),
            },
            if c.proc_locks_after_close.is_empty() {
                "nothing listed"
            } else {
                "still listed"
            },
        );
    }
    out.push('\n');
}

fn shared_mode(out: &mut String, r: &MatrixReport) {
    out.push_str("Shared mode: two processes each ask for the kind's most shared lock.\n");
    for s in &r.shared_mode {
        let accesses: Vec<&str> = s.proc_locks.iter().map(|l| l.access.as_str()).collect();
        let _ = writeln!(
            out,
            "  {:<6} {:<9} {:<49} /proc/locks: {}",
            s.lock.name(),
            match s.mode {
                LockMode::Shared => "shared",
                LockMode::Exclusive => "exclusive",
            },
            match (&s.second_errno, s.lock) {
                (None, _) => "both hold it".to_string(),
                (Some(e), LockFamily::Lockf) => {
                    format!("second refused ({e}): lockf has no shared mode")
                }
                (Some(e), _) => format!("second refused ({e})"),
            },
            accesses.join(", "),
        );
    }
    out.push('\n');
}

fn kernel_view(out: &mut String, r: &MatrixReport) {
    let _ = writeln!(
        out,
        "What the kernel shows for a live exclusive lock held by this process (pid {}):",
        r.pid
    );
    for v in &r.kernel_view {
        let _ = writeln!(out, "  {:<6} /proc/locks:", v.lock.name());
        proc_lines(out, "           ", &v.proc_locks);
        match &v.lslocks {
            None => out.push_str("         lslocks: not installed (or it failed)\n"),
            Some(lines) if lines.is_empty() => {
                out.push_str("         lslocks: no line for this file\n");
            }
            Some(lines) => {
                out.push_str("         lslocks:\n");
                for l in lines {
                    let _ = writeln!(out, "           {l}");
                }
            }
        }
    }
    out.push('\n');
}

fn mandatory(out: &mut String, r: &MatrixReport) {
    let m = &r.mandatory;
    let _ = writeln!(out, "Mandatory locking (kernel {}):", m.kernel);
    let _ = write!(
        out,
        "  mount(2) of a tmpfs with MS_MANDLOCK (-o mand): {}",
        m.mount
    );
    match &m.mount_info {
        Some(i) => {
            let _ = writeln!(
                out,
                " (mountinfo: mount options {}, superblock options {})",
                i.mount_options, i.super_options
            );
        }
        None => out.push('\n'),
    }
    for a in &m.attempts {
        let verdict = |e: &Option<String>| match e {
            None => "allowed".to_string(),
            Some(e) => format!("refused ({e})"),
        };
        let _ = writeln!(
            out,
            "  {} ({}): file mode {}{}, pid {} holds an exclusive POSIX lock;\n    our O_NONBLOCK write: {}, read: {}",
            a.filesystem,
            a.fs_type,
            a.file_mode,
            if a.setgid_without_group_exec {
                " (setgid, no group execute)"
            } else {
                " (the setgid bit did not stick)"
            },
            a.holder_pid,
            verdict(&a.write_errno),
            verdict(&a.read_errno),
        );
    }
    out.push_str(if m.enforced {
        "  => enforced: the kernel refused a conflicting read or write.\n"
    } else {
        "  => not enforced: the lock stayed advisory, whatever the mount and the mode asked for\n     (Linux removed mandatory locking in 5.15).\n"
    });
}
