//! One line of tracefs's `trace` file, before lockfair knows what the event means:
//! `<comm>-<tid> [<cpu>] <flags> <secs>.<usecs>: <event>: <payload>`.
//!
//! The task name may hold spaces and dashes, and the flags column is absent when `irq-info` is
//! off, so the line is read from its fixed points: the `[cpu]` bracket, then the first word that
//! is a timestamp followed by a colon.

/// A line split into its columns; `payload` is the event's printed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'t> {
    /// The thread that was running when the event fired.
    pub tid: i32,
    pub cpu: u32,
    /// The timestamp in nanoseconds of the trace clock. The text prints microseconds, so the
    /// last three digits are always zero; the file's order is the kernel's order.
    pub ts_ns: u64,
    pub event: &'t str,
    pub payload: &'t str,
}

/// Splits one `trace` line; `None` for comments, blank lines and anything malformed.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let open = line.find(" [")?;
    let (task, rest) = line.split_at(open);
    let (_, tid) = task.trim_start().rsplit_once('-')?;
    let tid = tid.trim().parse().ok()?;
    let rest = &rest[2..];
    let close = rest.find(']')?;
    let cpu = rest[..close].trim().parse().ok()?;
    let mut rest = &rest[close + 1..];
    let ts_ns = loop {
        rest = rest.trim_start();
        let word_end = rest.find(' ')?;
        let word = &rest[..word_end];
        rest = &rest[word_end..];
        if let Some(ts) = word.strip_suffix(':').and_then(parse_timestamp) {
            break ts;
        }
    };
    let rest = rest.trim_start();
    let (event, payload) = rest
        .split_once(": ")
        .unwrap_or((rest.trim_end_matches(':'), ""));
    Some(Line {
        tid,
        cpu,
        ts_ns,
        event,
        payload,
    })
}

/// `530.969651` (seconds, six digits of microseconds) as nanoseconds.
fn parse_timestamp(word: &str) -> Option<u64> {
    let (secs, frac) = word.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let scale = 10u64.pow(9 - frac.len() as u32);
    Some(secs * 1_000_000_000 + frac.parse::<u64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_line_with_a_spaced_name_and_flags() {
        let l = parse_line(
            "      opt cgu.04-16902   [001] d..2.   531.012161: sched_switch: prev_comm=opt cgu.04 prev_pid=16902",
        )
        .unwrap();
        assert_eq!((l.tid, l.cpu), (16902, 1));
        assert_eq!(l.ts_ns, 531_012_161_000);
        assert_eq!(l.event, "sched_switch");
        assert!(l.payload.starts_with("prev_comm=opt cgu.04 "));
    }

    #[test]
    fn reads_lines_without_the_flags_column_and_dashed_names() {
        let l = parse_line(" tokio-rt-worker-16906 [000]   531.012122: sched_waking: comm=x pid=1")
            .unwrap();
        assert_eq!((l.tid, l.cpu, l.event), (16906, 0, "sched_waking"));
        assert_eq!(l.payload, "comm=x pid=1");
    }

    #[test]
    fn skips_comments_and_garbage() {
        assert_eq!(parse_line("# tracer: nop"), None);
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("no bracket here"), None);
        assert_eq!(parse_line("x-1 [zz] 1.0: e: p"), None);
        assert_eq!(parse_line("x-1 [000] d..2. notatime: e: p"), None);
    }
}
