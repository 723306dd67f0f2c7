//! A private tracing instance, `instances/lockfair-<pid>`: its own ring buffer, clock, events
//! and filters, so a run neither sees nor disturbs anyone else's tracing.
//!
//! Removing the directory disables its events and frees its buffer. [`Instance`] removes it on
//! drop; a process killed before that leaves it behind, and [`sweep_stale`] removes it at the
//! next start once its pid is gone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::TraceError;
use super::tracefs::{INSTANCE_PREFIX, instance_pid};

/// Instances this process made so far: a second one in the same process gets `-<n>`.
static MADE: AtomicU32 = AtomicU32::new(0);

/// One instance directory, removed on drop.
#[derive(Debug)]
pub struct Instance {
    dir: PathBuf,
    removed: bool,
}

/// Removes the instances of lockfair processes that no longer exist. Returns their names.
pub fn sweep_stale(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("instances")) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = instance_pid(&name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() && std::fs::remove_dir(e.path()).is_ok() {
            swept.push(name);
        }
    }
    swept
}

impl Instance {
    /// Creates `instances/lockfair-<pid>` (`-<n>` for a second one in this process).
    pub fn create(root: &Path) -> Result<Instance, TraceError> {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let mut name = format!("{INSTANCE_PREFIX}{}", std::process::id());
        if n > 0 {
            name.push_str(&format!("-{n}"));
        }
        let dir = root.join("instances").join(name);
        std::fs::create_dir(&dir).map_err(|source| TraceError::io("create", &dir, source))?;
        Ok(Instance {
            dir,
            removed: false,
        })
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `value` to the instance's file `file` (`trace_clock`, `events/sched/enable`, ...).
    pub fn write(&self, file: &str, value: &str) -> Result<(), TraceError> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|source| TraceError::io("write", &path, source))
    }

    /// Reads the instance's file `file`.
    pub fn read(&self, file: &str) -> Result<String, TraceError> {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| TraceError::io("read", &path, source))
    }

    /// Events the ring buffer lost: overwritten, dropped when full, or lost mid-commit, summed
    /// over every CPU's `stats`.
    pub fn lost_events(&self) -> Result<u64, TraceError> {
        let per_cpu = self.dir.join("per_cpu");
        let entries = std::fs::read_dir(&per_cpu)
            .map_err(|source| TraceError::io("list", &per_cpu, source))?;
        let mut lost = 0u64;
        for e in entries.flatten() {
            if let Ok(stats) = std::fs::read_to_string(e.path().join("stats")) {
                lost = lost.saturating_add(parse_lost(&stats));
            }
        }
        Ok(lost)
    }

    /// Feeds every line of `trace` to `each`, without holding the whole text.
    pub fn each_trace_line(&self, mut each: impl FnMut(&str)) -> Result<(), TraceError> {
        let path = self.dir.join("trace");
        let file =
            std::fs::File::open(&path).map_err(|source| TraceError::io("open", &path, source))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => each(&line),
                Err(source) => return Err(TraceError::io("read", &path, source)),
            }
        }
    }

    /// Stops tracing and removes the directory (which disables its events and frees its buffer).
    pub fn remove(&mut self) -> Result<(), TraceError> {
        if self.removed {
            return Ok(());
        }
        let _ = self.write("tracing_on", "0");
        std::fs::remove_dir(&self.dir)
            .map_err(|source| TraceError::io("remove", &self.dir, source))?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// `overrun`, `dropped events` and `commit overrun` of one CPU's `stats`.
fn parse_lost(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| matches!(k.trim(), "overrun" | "commit overrun" | "dropped events"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_kind_of_loss() {
        let stats = "entries: 45252\noverrun: 1292663\ncommit overrun: 1\nbytes: 0\n\
                     oldest event ts:     0.000000\ndropped events: 7\nread events: 0\n";
        assert_eq!(parse_lost(stats), 1_292_671);
        assert_eq!(parse_lost("entries: 3\n"), 0);
    }
}
