//! The four events lockfair traces, typed: a file-lock call (`posix_lock_inode`,
//! `flock_lock_inode`), a wakeup (`sched_waking`) and a context switch (`sched_switch`).
//!
//! A [`Decoder`] is built from the events' `format` files, so it finds each value by the field
//! this kernel prints it from, whatever that field is called here.

use super::format::{EventFormat, FormatError};
use super::text::Line;

/// The events lockfair enables, as `system/name`.
pub const EVENTS: [&str; 4] = [
    "filelock/posix_lock_inode",
    "filelock/flock_lock_inode",
    "sched/sched_waking",
    "sched/sched_switch",
];

/// Which lock call fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockApi {
    /// POSIX and OFD record locks (`fcntl`, `lockf`).
    Posix,
    /// `flock`.
    Flock,
}

/// What a lock call asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
    Unlock,
}

/// `FILE_LOCK_DEFERRED`: the request was queued behind a conflicting lock.
pub const DEFERRED: i32 = 1;

/// One attempt to lock or unlock, as the kernel saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockCall {
    pub api: LockApi,
    pub inode: u64,
    pub kind: LockType,
    /// The conflicting lock's address was not null: the request is queued behind it.
    pub blocked_by: bool,
    pub start: i64,
    pub end: i64,
    /// 0 granted (or unlocked), [`DEFERRED`] queued, negative refused.
    pub ret: i32,
}

impl LockCall {
    /// True if the two calls' byte ranges share a byte.
    pub fn overlaps(&self, other: &LockCall) -> bool {
        self.inode == other.inode && self.start <= other.end && other.start <= self.end
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Lock(LockCall),
    /// The running thread woke thread `woken`.
    Waking {
        woken: i32,
    },
    /// `prev` left the CPU (still runnable if preempted), `next` got it.
    Switch {
        prev: i32,
        prev_runnable: bool,
        next: i32,
    },
}

/// An event, when and where it happened, and the thread that was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts_ns: u64,
    pub cpu: u32,
    pub tid: i32,
    pub event: Event,
}

/// Where each value sits among a lock event's printed conversions.
#[derive(Clone, Debug)]
struct LockLayout {
    format: EventFormat,
    inode: usize,
    blocker: usize,
    kind: usize,
    start: usize,
    end: usize,
    ret: usize,
}

impl LockLayout {
    fn new(format: EventFormat) -> Result<Self, FormatError> {
        Ok(LockLayout {
            inode: format.printed(&["i_ino", "ino"])?,
            blocker: format.printed(&["blocker", "fl_blocker"])?,
            kind: format.printed(&["type", "fl_type"])?,
            start: format.printed(&["fl_start", "start"])?,
            end: format.printed(&["fl_end", "end"])?,
            ret: format.printed(&["ret"])?,
            format,
        })
    }

    fn decode(&self, api: LockApi, payload: &str) -> Option<LockCall> {
        let v = self.format.split(payload)?;
        Some(LockCall {
            api,
            inode: parse_uint(v[self.inode], self.format.conversions[self.inode].letter)?,
            kind: parse_lock_type(v[self.kind])?,
            blocked_by: !is_null(v[self.blocker]),
            start: v[self.start].trim().parse().ok()?,
            end: v[self.end].trim().parse().ok()?,
            ret: v[self.ret].trim().parse().ok()?,
        })
    }
}

/// Turns `trace` lines into [`Record`]s.
#[derive(Clone, Debug)]
pub struct Decoder {
    posix: LockLayout,
    flock: LockLayout,
    waking: (EventFormat, usize),
    switch: (EventFormat, [usize; 3]),
}

impl Decoder {
    /// From the four events' `format` texts, in the order of [`EVENTS`].
    pub fn new(formats: [&str; 4]) -> Result<Decoder, FormatError> {
        let [posix, flock, waking, switch] = formats.map(EventFormat::parse);
        let waking = waking?;
        let switch = switch?;
        Ok(Decoder {
            posix: LockLayout::new(posix?)?,
            flock: LockLayout::new(flock?)?,
            waking: (waking.clone(), waking.printed(&["pid"])?),
            switch: (
                switch.clone(),
                [
                    switch.printed(&["prev_pid"])?,
                    switch.printed(&["prev_state"])?,
                    switch.printed(&["next_pid"])?,
                ],
            ),
        })
    }

    /// The typed record of one split line; `None` for other events or text that does not match
    /// its format.
    pub fn decode(&self, line: &Line<'_>) -> Option<Record> {
        let event = match line.event {
            e if e == self.posix.format.name => {
                Event::Lock(self.posix.decode(LockApi::Posix, line.payload)?)
            }
            e if e == self.flock.format.name => {
                Event::Lock(self.flock.decode(LockApi::Flock, line.payload)?)
            }
            e if e == self.waking.0.name => {
                let v = self.waking.0.split(line.payload)?;
                Event::Waking {
                    woken: v[self.waking.1].trim().parse().ok()?,
                }
            }
            e if e == self.switch.0.name => {
                let v = self.switch.0.split(line.payload)?;
                let [prev, state, next] = self.switch.1;
                Event::Switch {
                    prev: v[prev].trim().parse().ok()?,
                    prev_runnable: v[state].trim().starts_with('R'),
                    next: v[next].trim().parse().ok()?,
                }
            }
            _ => return None,
        };
        Some(Record {
            ts_ns: line.ts_ns,
            cpu: line.cpu,
            tid: line.tid,
            event,
        })
    }

    /// The field names a filter on the lock events' inode uses (`i_ino` here).
    pub fn inode_field(&self) -> [&str; 2] {
        [self.posix.inode_field(), self.flock.inode_field()]
    }

    /// Each of [`EVENTS`]' filter, in tracefs's filter syntax: the lock events on `inode`,
    /// the scheduler events of the threads `tids`.
    pub fn filters(&self, inode: u64, tids: &[i32]) -> [String; 4] {
        let any = |fields: &[&str]| {
            let terms: Vec<String> = tids
                .iter()
                .flat_map(|t| fields.iter().map(move |f| format!("{f} == {t}")))
                .collect();
            if terms.is_empty() {
                // Nobody to follow: a filter nothing matches.
                format!("{} == -1", fields[0])
            } else {
                terms.join(" || ")
            }
        };
        let [posix_ino, flock_ino] = self.inode_field();
        let field = |f: &EventFormat, i: usize| f.conversions[i].field.clone().unwrap_or_default();
        let waking = field(&self.waking.0, self.waking.1);
        let [prev, _, next] = self.switch.1.map(|i| field(&self.switch.0, i));
        [
            format!("{posix_ino} == {inode}"),
            format!("{flock_ino} == {inode}"),
            any(&[&waking]),
            any(&[&prev, &next]),
        ]
    }
}

impl LockLayout {
    fn inode_field(&self) -> &str {
        self.format.conversions[self.inode]
            .field
            .as_deref()
            .unwrap_or("i_ino")
    }
}

/// A number printed by conversion `letter`: `98` after a literal `0x` for `%lx`, `152` for `%lu`.
fn parse_uint(s: &str, letter: char) -> Option<u64> {
    let s = s.trim();
    match (s.strip_prefix("0x"), letter) {
        (Some(hex), _) => u64::from_str_radix(hex, 16).ok(),
        (None, 'x' | 'X') => u64::from_str_radix(s, 16).ok(),
        (None, _) => s.parse().ok(),
    }
}

/// A printed pointer: null as zeros or `(null)`; `%p` prints others hashed, but never as zero.
fn is_null(s: &str) -> bool {
    let s = s.trim().trim_start_matches("0x");
    s == "(null)" || s.bytes().all(|b| b == b'0')
}

/// `F_WRLCK` or the raw number an older print format shows.
fn parse_lock_type(s: &str) -> Option<LockType> {
    match s.trim() {
        "F_RDLCK" | "0" => Some(LockType::Read),
        "F_WRLCK" | "1" => Some(LockType::Write),
        "F_UNLCK" | "2" => Some(LockType::Unlock),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::text::parse_line;
    use super::*;

    /// The decoder for the formats captured on a 6.18 kernel.
    pub(crate) fn decoder() -> Decoder {
        Decoder::new([
            include_str!("testdata/posix_lock_inode.format"),
            include_str!("testdata/flock_lock_inode.format"),
            include_str!("testdata/sched_waking.format"),
            include_str!("testdata/sched_switch.format"),
        ])
        .unwrap()
    }

    fn one(line: &str) -> Record {
        decoder().decode(&parse_line(line).unwrap()).unwrap()
    }

    #[test]
    fn decodes_a_blocked_ofd_request() {
        let r = one(
            " lockfair-client-16903   [001] ...1.   531.012105: posix_lock_inode: fl=000000003052417c dev=0x0:0x1 ino=0x9e3 fl_blocker=00000000494f4360 fl_owner=0000000072c40b60 fl_pid=16903 fl_flags=FL_POSIX|FL_SLEEP|FL_OFDLCK fl_type=F_WRLCK fl_start=0 fl_end=9223372036854775807 ret=1",
        );
        assert_eq!(r.tid, 16903);
        let Event::Lock(c) = r.event else {
            panic!("{r:?}")
        };
        assert_eq!(
            (c.api, c.inode, c.kind, c.ret),
            (LockApi::Posix, 0x9e3, LockType::Write, DEFERRED)
        );
        assert!(c.blocked_by);
        assert_eq!((c.start, c.end), (0, i64::MAX));
    }

    #[test]
    fn decodes_flock_unlocks_wakeups_and_switches() {
        let r = one(
            " lockfair-client-17424   [001] .....   548.341926: flock_lock_inode: fl=00000000aa dev=0x0:0x1 ino=0x9e fl_blocker=0000000000000000 fl_owner=0000000028b1ff7f fl_pid=17424 fl_flags=FL_FLOCK|FL_SLEEP fl_type=F_UNLCK fl_start=0 fl_end=9223372036854775807 ret=0",
        );
        assert!(matches!(
            r.event,
            Event::Lock(LockCall {
                api: LockApi::Flock,
                kind: LockType::Unlock,
                blocked_by: false,
                ..
            })
        ));
        let w = one(
            " tokio-rt-worker-16906   [000] d..5.   531.012122: sched_waking: comm=lockfair-client pid=16903 prio=120 target_cpu=001",
        );
        assert_eq!(w.event, Event::Waking { woken: 16903 });
        let s = one(
            " lockfair-client-16903   [001] d..2.   531.012108: sched_switch: prev_comm=lockfair-client prev_pid=16903 prev_prio=120 prev_state=S ==> next_comm=opt cgu.04 next_pid=16902 next_prio=120",
        );
        assert_eq!(
            s.event,
            Event::Switch {
                prev: 16903,
                prev_runnable: false,
                next: 16902
            }
        );
    }

    #[test]
    fn text_that_does_not_fit_the_format_is_skipped() {
        let d = decoder();
        let l = parse_line(" x-1 [000] ....  1.000001: posix_lock_inode: fl=0 ino=zz ret=oops")
            .unwrap();
        assert_eq!(d.decode(&l), None);
        let l = parse_line(" x-1 [000] ....  1.000001: sched_wakeup: comm=x pid=3").unwrap();
        assert_eq!(d.decode(&l), None);
        assert_eq!(d.inode_field(), ["i_ino", "i_ino"]);
        let f = d.filters(2531, &[5, 6]);
        assert_eq!(f[0], "i_ino == 2531");
        assert_eq!(f[2], "pid == 5 || pid == 6");
        assert_eq!(
            f[3],
            "prev_pid == 5 || next_pid == 5 || prev_pid == 6 || next_pid == 6"
        );
    }
}
