//! The arena: a sealed memfd both sides map `MAP_SHARED`.
//!
//! The client creates it, writes the header, then seals it against shrinking, growing and further
//! sealing. Shrink-sealed means a mapping of it can never SIGBUS under us, whatever the other side
//! does; that is why the server checks the seals before it maps a single byte.
//!
//! Layout: page 0 holds the [`Header`] (only what every variant uses), page 1 one [`Slot`] per
//! contender, page 2 the `seed` variant's data, which lives in the file (offset + `write`/`pread`),
//! away from the header; pages 3 and 4 the variant region, whose words each variant declares for
//! itself ([`Arena::region`]); from page 5 on, the grant log of `--mode free` (two words per
//! acquisition, see [`GrantEntry`]).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::errno::Errno;
use thiserror::Error;

use crate::sys::fdkind::FdKind;
use crate::sys::mapping::{SharedAtomics, SharedMapping, shared_atomics};
use crate::sys::memfd::{self, CreateError, SealError, SealFlags};

/// "LOCKFAIR" in little-endian bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"LOCKFAIR");
/// Bumped whenever the layout below, or how a variant uses it, changes (2: `spin-futex` sleeps on
/// its own `parked` word; 3: each slot carries its contender's thread id; 4: the handoff locks'
/// words and the grant log; 5: a variant's own words moved out of the header and the slots into
/// the variant region, which each variant lays out itself, and the grant log two pages on):
/// sides of different versions refuse each other instead of hanging.
pub const LAYOUT_VERSION: u32 = 5;
const PAGE: usize = 4096;
/// Where the variant region starts: the words one variant keeps in the arena, laid out by that
/// variant's own structure ([`Arena::region`]).
pub const REGION_OFFSET: usize = 3 * PAGE;
/// The variant region's size: room for a cache line per contender and a few of shared words.
pub const REGION_SIZE: usize = 2 * PAGE;
/// The largest alignment a variant's region structure may ask for: a cache line.
pub const REGION_ALIGN: usize = 64;
/// Where the grant log starts: two words per acquisition, in grant order (`--mode free`).
pub const GRANT_LOG_OFFSET: usize = REGION_OFFSET + REGION_SIZE;
/// How many acquisitions the grant log holds: the order measures (bypass, LWSS, MTTR) cover the
/// first this many acquisitions of a run, whatever its length (bounded memory: 16 MiB, and
/// only the pages a run writes are ever allocated).
pub const GRANT_LOG_CAPACITY: usize = 1 << 20;
/// Total size of the memfd.
pub const ARENA_SIZE: usize = GRANT_LOG_OFFSET + GRANT_LOG_CAPACITY * 16;
/// Where the `seed` variant's data (and its shared file offset, the "turn") lives.
pub const SEED_OFFSET: u64 = 2 * PAGE as u64;
/// Room for the seed's line.
pub const SEED_LEN: u64 = PAGE as u64;
/// At most this many contenders: the occupant word is a 64-bit mask, one bit each.
pub const MAX_CONTENDERS: usize = 64;
/// The seals every arena must carry.
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// The turn word's value once the run stopped: nobody's turn.
pub const NO_TURN: u32 = u32::MAX;

/// Bytes available for the "line n" payload.
pub const LINE_CAPACITY: usize = 24;

// Only atomics in shared memory. The other process may write any byte of the arena at any time,
// so `Header` and `Slot` are made of atomic integers and arrays of them, nothing else: every bit
// pattern is then a valid value and a concurrent write is defined behaviour. `shared_atomics!`
// (in `sys::mapping`, the only place allowed `unsafe`) enforces it: it refuses to compile a field
// of any other type, and only types it declared can be mapped.
shared_atomics! {
/// Page 0: what every variant uses (a variant's own words live in the variant region). Every
/// field is atomic: the other process may write any of them at any time.
#[repr(align(64))]
#[derive(Debug)]
pub struct Header {
    // Cache line 0, written once by the creator before sealing.
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub contenders: AtomicU32,
    pub size: AtomicU64,
    _identity_pad: [AtomicU64; 5],

    // Cache line 1: what waiters poll. Alone on its line, so a spinner polling the turn does not
    // steal the line the holder is writing during its turn (that cost spin-futex a microsecond;
    // with the hot line below merged into this one, 1.4× the round trip of two lines).
    /// Whose turn it is (a contender index). Also the futex word of the `futex` variant.
    pub turn: AtomicU32,
    /// Non-zero once someone stopped the run; see [`StopReason`].
    pub stop: AtomicU32,
    _turn_pad: [AtomicU64; 7],

    // Cache line 2: what the holder writes during its turn; the next holder reads it once.
    /// Bit `c` set while contender `c` is inside the critical section: the overlap detector.
    pub occupant: AtomicU64,
    /// The last round the writer completed.
    pub round: AtomicU64,
    /// CLOCK_MONOTONIC (ns) when the turn was last released.
    pub release_ns: AtomicU64,
    pub line_len: AtomicU32,
    _hot_pad: AtomicU32,
    /// "line n": the decimal round number and a newline, packed into words.
    pub line: [AtomicU64; LINE_CAPACITY / 8],
    _hot_pad2: AtomicU64,

    // Cache line 3: the start barrier.
    /// How many contenders reached the start line.
    pub arrived: AtomicU32,
    /// Futex word: becomes 1 when the last contender arrives.
    pub started: AtomicU32,
    _barrier_pad: [AtomicU64; 7],

    // Cache line 4: free-running lock state (`--mode free`).
    /// The contender that held the lock last (+1; 0 = nobody yet).
    pub last_holder: AtomicU32,
    /// Set (to the finisher's index + 1) by the first contender to finish its acquisitions.
    pub first_finished: AtomicU32,
    /// Bit `c` set while contender `c` waits for the lock.
    pub waiting: AtomicU64,
    /// How many contenders have asked for the lock at least once (`--mode free`): fairness is
    /// only compared once everyone is in the race.
    pub begun: AtomicU32,
    _lock_pad: AtomicU32,
    /// The `waiting` mask as the last releaser saw it just before unlocking: whether its next
    /// acquisition, if it gets one right away, jumped over somebody.
    pub waiting_at_release: AtomicU64,
    _lock_pad2: [AtomicU64; 4],

    // Cache line 5: the order counters (`--mode free`), away from every lock word.
    /// Arrival sequence: fetch-added when a wait for the lock begins.
    pub arrivals: AtomicU64,
    /// Grant sequence: fetch-added by the holder inside the critical section, so it counts
    /// acquisitions in the order the lock granted them; also the grant log's next index.
    pub grants: AtomicU64,
    _order_pad: [AtomicU64; 6],
}
}

shared_atomics! {
/// Page 1: one cache line per contender (a variant's own per-contender words live in its
/// region).
#[repr(align(64))]
#[derive(Debug)]
pub struct Slot {
    /// The thread this contender runs on, written before it reaches the start line (0: not yet):
    /// `--kernel-trace` follows the contenders' threads, and the server's run on worker threads.
    pub tid: AtomicU32,
    _pad: AtomicU32,
    _pad2: [AtomicU64; 7],
}
}

const _: () = assert!(size_of::<Header>() <= PAGE);
const _: () = assert!(size_of::<Slot>() == 64);
const _: () = assert!(size_of::<Slot>() * MAX_CONTENDERS <= PAGE);
const _: () = assert!(std::mem::offset_of!(Header, turn) == 64);
const _: () = assert!(std::mem::offset_of!(Header, occupant) == 128);
const _: () = assert!(std::mem::offset_of!(Header, arrived) == 192);
const _: () = assert!(std::mem::offset_of!(Header, last_holder) == 256);
const _: () = assert!(std::mem::offset_of!(Header, arrivals) == 320);
const _: () = assert!(std::mem::offset_of!(Header, begun) == 272);
const _: () = assert!(size_of::<Header>() == 384);
const _: () = assert!(REGION_OFFSET.is_multiple_of(PAGE) && REGION_OFFSET >= 3 * PAGE);
const _: () = assert!(REGION_ALIGN <= PAGE && GRANT_LOG_OFFSET.is_multiple_of(PAGE));

/// Why a run stopped before every contender finished its rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StopReason {
    /// `--max-seconds` ran out.
    Deadline = 1,
    /// A contender gave up (its peer died, Ctrl-C, an error).
    Aborted = 2,
}

/// What is wrong with an arena a peer sent.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArenaError {
    #[error("cannot create the arena")]
    Create(#[from] CreateError),
    #[error("the arena is {0}, not a memfd")]
    NotMemfd(FdKind),
    #[error(
        "the arena lacks seals {missing:?} (it has {have:?}); seal it with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL"
    )]
    MissingSeals { have: SealFlags, missing: SealFlags },
    #[error("the arena is write-sealed; lockfair needs to write to it")]
    WriteSealed,
    #[error("the arena is {got} bytes, expected {want}")]
    WrongSize { got: u64, want: u64 },
    #[error("the arena does not start with lockfair's magic")]
    BadMagic,
    #[error(
        "the arena has layout version {got}, this build speaks {want}: run client and server from the same build"
    )]
    BadVersion { got: u32, want: u32 },
    #[error("the arena is set up for {got} contenders, the hello says {want}")]
    WrongContenders { got: u32, want: u32 },
    #[error("cannot {what} the arena: {errno}")]
    Sys { what: &'static str, errno: Errno },
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> ArenaError {
    move |errno| ArenaError::Sys { what, errno }
}

/// One side's handle on the arena: the descriptor it uses and its mapping.
#[derive(Debug)]
pub struct Arena {
    file: File,
    map: Arc<SharedMapping>,
}

/// A handle on the arena's stop word that can leave the session's thread: the watchdog holds one
/// to notice a stop that never reached a contender blocked in the kernel.
#[derive(Debug, Clone)]
pub struct StopWatch(Arc<SharedMapping>);

impl StopWatch {
    /// True once any contender stopped the run.
    pub fn stopped(&self) -> bool {
        self.0
            .get::<Header>(0)
            .is_some_and(|h| h.stopped().is_some())
    }
}

impl Arena {
    /// Creates, initialises and seals a fresh arena for `contenders` contenders (the client side).
    pub fn create(contenders: u32) -> Result<Arena, ArenaError> {
        // Sealed before it is mapped, as a received one is: the mapping can never lose its pages.
        let file = memfd::create_sealed("lockfair-arena", ARENA_SIZE as u64, REQUIRED_SEALS)?;
        let map = Arc::new(SharedMapping::map(&file, ARENA_SIZE).map_err(sys("map"))?);
        let arena_header = map.get::<Header>(0).ok_or(ArenaError::Sys {
            what: "lay out",
            errno: Errno::EINVAL,
        })?;
        arena_header
            .version
            .store(LAYOUT_VERSION, Ordering::Relaxed);
        arena_header.contenders.store(contenders, Ordering::Relaxed);
        arena_header
            .size
            .store(ARENA_SIZE as u64, Ordering::Relaxed);
        arena_header.magic.store(MAGIC, Ordering::Release);
        Ok(Arena { file, map })
    }

    /// Checks a received arena before touching its memory: a memfd, sealed, the right size. Then
    /// maps it and checks magic, version and contender count.
    ///
    /// With `own_description`, the arena is reopened through `/proc/self/fd/N` so this side locks
    /// through its own open file description, and the received descriptor is closed: otherwise
    /// it would keep the peer's description (and any lock on it) alive after the peer died.
    pub fn adopt(
        received: OwnedFd,
        contenders: u32,
        own_description: bool,
    ) -> Result<Arena, ArenaError> {
        check_sealed_memfd(&received)?;
        let file = if own_description {
            reopen(&received).map_err(sys("reopen"))?
        } else {
            File::from(received)
        };
        let map = Arc::new(SharedMapping::map(&file, ARENA_SIZE).map_err(sys("map"))?);
        let arena = Arena { file, map };
        let h = arena.header();
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(ArenaError::BadMagic);
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(ArenaError::BadVersion {
                got: version,
                want: LAYOUT_VERSION,
            });
        }
        let got = h.contenders.load(Ordering::Relaxed);
        if got != contenders {
            return Err(ArenaError::WrongContenders {
                got,
                want: contenders,
            });
        }
        Ok(arena)
    }

    /// The header on page 0.
    pub fn header(&self) -> &Header {
        self.map
            .get::<Header>(0)
            .expect("page 0 holds a Header: checked by the const asserts above")
    }

    /// The variant region, laid out as the variant's `T` says. `T`'s size and alignment are
    /// checked at compile time against [`REGION_SIZE`] and [`REGION_ALIGN`]; every bit pattern
    /// of it is valid (`T` is made of atomics), so whatever a peer wrote there is only wrong
    /// numbers, never undefined behaviour.
    pub fn region<T: SharedAtomics>(&self) -> &T {
        const {
            assert!(
                size_of::<T>() <= REGION_SIZE,
                "a variant's region outgrew REGION_SIZE"
            );
            assert!(
                align_of::<T>() <= REGION_ALIGN,
                "a variant's region asks too much alignment"
            );
        }
        self.map
            .get::<T>(REGION_OFFSET)
            .expect("the region fits the arena and is page-aligned: checked at compile time")
    }

    /// Contender `index`'s slot on page 1 (`index < MAX_CONTENDERS`).
    pub fn slot(&self, index: usize) -> &Slot {
        self.map
            .get::<Slot>(PAGE + index.min(MAX_CONTENDERS - 1) * size_of::<Slot>())
            .expect("page 1 holds MAX_CONTENDERS slots: checked by the const asserts above")
    }

    /// The grant log: words `2g` and `2g + 1` describe the acquisition with grant number `g`
    /// (see [`GrantEntry`]); 0 where nothing was written.
    pub fn grant_log(&self) -> &[AtomicU64; 2 * GRANT_LOG_CAPACITY] {
        self.map
            .get::<[AtomicU64; 2 * GRANT_LOG_CAPACITY]>(GRANT_LOG_OFFSET)
            .expect("the grant log fits the arena: ARENA_SIZE is computed from it")
    }

    /// Records an acquisition (by its holder, inside the critical section): takes the next
    /// grant number and writes the log entry, if the log has room. Returns the grant number.
    pub fn log_grant(&self, entry: GrantEntry) -> u64 {
        let g = self.header().grants.fetch_add(1, Ordering::AcqRel);
        let log = self.grant_log();
        if let Some(i) = usize::try_from(g).ok().filter(|&i| i < GRANT_LOG_CAPACITY) {
            let [tagged, before] = entry.encode();
            log[2 * i + 1].store(before, Ordering::Relaxed);
            log[2 * i].store(tagged, Ordering::Release);
        }
        g
    }

    /// Entry `g` of the grant log, if a contender wrote it.
    pub fn grant_entry(&self, g: usize, contenders: usize) -> Option<GrantEntry> {
        let log = self.grant_log();
        let tagged = log.get(2 * g)?.load(Ordering::Acquire);
        let before = log.get(2 * g + 1)?.load(Ordering::Relaxed);
        GrantEntry::decode([tagged, before], contenders)
    }

    /// The stop word, for the watchdog.
    pub fn stop_watch(&self) -> StopWatch {
        StopWatch(self.map.clone())
    }

    /// The descriptor this side uses for the arena (its own description, or the shared one).
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn reopen(fd: impl AsFd) -> Result<File, Errno> {
    File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
        .map_err(|e| crate::sys::io_errno(&e))
}

/// The checks that need no mapping: kind, seals, size.
pub fn check_sealed_memfd(fd: impl AsFd) -> Result<(), ArenaError> {
    let got = memfd::check_sealed(fd, REQUIRED_SEALS).map_err(|e| match e {
        SealError::NotMemfd(kind) => ArenaError::NotMemfd(kind),
        SealError::MissingSeals { have, missing } => ArenaError::MissingSeals { have, missing },
        SealError::WriteSealed => ArenaError::WriteSealed,
        SealError::Sys { what, errno } => ArenaError::Sys { what, errno },
    })?;
    if got != ARENA_SIZE as u64 {
        return Err(ArenaError::WrongSize {
            got,
            want: ARENA_SIZE as u64,
        });
    }
    Ok(())
}

impl Header {
    /// Marks `contender` inside the critical section. Returns true if someone else was already
    /// inside: an overlap, i.e. mutual exclusion failed.
    ///
    /// Setting a bit in a mask (rather than a compare-exchange of one owner) never misses an
    /// entry, even when three sections nest. It is a `fetch_add`: our bit is always clear here
    /// (only we set it, and we cleared it when we left), so adding is or-ing, and x86 does it in
    /// one `lock xadd`, one ownership request for the line. A `fetch_or` whose result is used
    /// compiles to a load and a `lock cmpxchg` loop: a read miss, then a second transaction to
    /// own the line, on every handoff's critical path.
    pub fn enter(&self, contender: usize) -> bool {
        let me = 1u64 << contender;
        self.occupant.fetch_add(me, Ordering::AcqRel) & !me != 0
    }

    /// Clears `contender`'s bit.
    pub fn leave(&self, contender: usize) {
        self.occupant
            .fetch_and(!(1u64 << contender), Ordering::AcqRel);
    }

    /// Publishes `line` (the line of round `n`).
    pub fn write_line(&self, n: u64, line: &Line) {
        for (slot, w) in self.line.iter().zip(line.words()) {
            slot.store(w, Ordering::Relaxed);
        }
        self.line_len.store(line.len as u32, Ordering::Relaxed);
        self.round.store(n, Ordering::Relaxed);
    }

    /// True if the published line is exactly `want`.
    pub fn line_is(&self, want: &Line) -> bool {
        self.line_len.load(Ordering::Relaxed) as usize == want.len
            && self
                .line
                .iter()
                .zip(want.words())
                .all(|(slot, w)| slot.load(Ordering::Relaxed) == w)
    }

    /// Asks every contender to stop; the first reason wins.
    pub fn request_stop(&self, reason: StopReason) {
        let _ = self
            .stop
            .compare_exchange(0, reason as u32, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The reason someone stopped the run, if anyone did.
    pub fn stopped(&self) -> Option<StopReason> {
        match self.stop.load(Ordering::Acquire) {
            0 => None,
            1 => Some(StopReason::Deadline),
            _ => Some(StopReason::Aborted),
        }
    }
}

/// One acquisition in the grant log: who got the lock, when (in arrival order) it started
/// waiting, how many acquisitions had been granted by then, and how many others were waiting
/// as it got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantEntry {
    pub contender: u8,
    /// How many other contenders were waiting when it was granted (at most 63).
    pub others_waiting: u8,
    /// Its arrival number (below 2^48).
    pub arrival: u64,
    /// The grant counter when its wait began: acquisitions granted before it started waiting.
    pub granted_before: u64,
}

impl GrantEntry {
    /// Packed as `[arrival << 16 | others_waiting << 8 | (contender + 1), granted_before]`:
    /// the first word is never 0.
    fn encode(self) -> [u64; 2] {
        let tagged = ((self.arrival & ((1 << 48) - 1)) << 16)
            | (u64::from(self.others_waiting) << 8)
            | (u64::from(self.contender) + 1);
        [tagged, self.granted_before]
    }

    /// The entry in two log words, `None` for words nobody wrote (or that no contender could
    /// have written: the other process may scribble anything here).
    pub fn decode([tagged, granted_before]: [u64; 2], contenders: usize) -> Option<GrantEntry> {
        let tag = (tagged & 0xff) as usize;
        if tag == 0 || tag > contenders {
            return None;
        }
        Some(GrantEntry {
            contender: (tag - 1) as u8,
            others_waiting: ((tagged >> 8) & 0xff) as u8,
            arrival: tagged >> 16,
            granted_before,
        })
    }
}

/// The line of the round a contender is on, advanced by [`Line::increment`] as rounds go by.
#[derive(Clone, Copy, Debug)]
pub struct LineCounter {
    round: u64,
    line: Line,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter {
            round: 0,
            line: Line::new(0),
        }
    }
}

impl LineCounter {
    /// The line of `round`: O(1) when rounds advance one at a time, as they do.
    pub fn line(&mut self, round: u64) -> &Line {
        if round == self.round.wrapping_add(1) {
            self.line.increment();
        } else if round != self.round {
            self.line = Line::new(round);
        }
        self.round = round;
        &self.line
    }
}

/// The decimal line for round `n`, newline-terminated, as the seed's protocol writes it: built on
/// the stack, because the round loop must not allocate (the measurement would measure malloc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
}

impl Line {
    /// "n\n" for `n`.
    pub fn new(mut n: u64) -> Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut bytes = [0u8; LINE_CAPACITY];
        let len = digits.len() - i;
        bytes[..len].copy_from_slice(&digits[i..]);
        bytes[len] = b'\n';
        Line {
            bytes,
            len: len + 1,
        }
    }

    /// Turns the line for `n` into the line for `n + 1`, in place: a decimal carry, no division.
    pub fn increment(&mut self) {
        let mut i = self.len - 1; // the newline
        while i > 0 {
            i -= 1;
            if self.bytes[i] == b'9' {
                self.bytes[i] = b'0';
            } else {
                self.bytes[i] += 1;
                return;
            }
        }
        // All nines: one more digit.
        self.bytes.copy_within(0..self.len, 1);
        self.bytes[0] = b'1';
        self.len += 1;
    }

    /// The line's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The line packed little-endian into the payload's words (zero-padded).
    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_arena_passes_its_own_checks() {
        let arena = Arena::create(2).unwrap();
        check_sealed_memfd(arena.file()).unwrap();
        let dup = OwnedFd::from(arena.file().try_clone().unwrap());
        let other = Arena::adopt(dup, 2, true).unwrap();
        arena.header().write_line(41, &Line::new(41));
        assert!(other.header().line_is(&Line::new(41)));
        assert!(!other.header().line_is(&Line::new(4)));
    }

    #[test]
    fn both_sides_see_the_same_variant_region() {
        let arena = Arena::create(2).unwrap();
        let dup = OwnedFd::from(arena.file().try_clone().unwrap());
        let other = Arena::adopt(dup, 2, true).unwrap();
        let words = arena.region::<[AtomicU64; REGION_SIZE / 8]>();
        assert!(words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        words[REGION_SIZE / 8 - 1].store(7, Ordering::Relaxed);
        let seen = other.region::<[AtomicU64; REGION_SIZE / 8]>();
        assert_eq!(seen[REGION_SIZE / 8 - 1].load(Ordering::Relaxed), 7);
        // Nothing of the region spills into the grant log.
        assert_eq!(other.grant_log()[0].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_wrong_contender_count_is_refused() {
        let arena = Arena::create(2).unwrap();
        let dup = OwnedFd::from(arena.file().try_clone().unwrap());
        assert_eq!(
            Arena::adopt(dup, 3, true).unwrap_err(),
            ArenaError::WrongContenders { got: 2, want: 3 }
        );
    }

    #[test]
    fn an_unsealed_memfd_is_refused_before_mapping() {
        let m = memfd::create_sealed("x", ARENA_SIZE as u64, SealFlags::empty()).unwrap();
        let err = Arena::adopt(OwnedFd::from(m), 2, true).unwrap_err();
        assert!(matches!(err, ArenaError::MissingSeals { .. }), "{err}");
    }

    #[test]
    fn a_wrong_size_is_refused() {
        let m = memfd::create_sealed("x", 4096, REQUIRED_SEALS).unwrap();
        let err = Arena::adopt(OwnedFd::from(m), 2, true).unwrap_err();
        assert_eq!(
            err,
            ArenaError::WrongSize {
                got: 4096,
                want: ARENA_SIZE as u64
            }
        );
    }

    #[test]
    fn lines_are_decimal_and_newline_terminated() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            assert_eq!(Line::new(n).as_bytes(), format!("{n}\n").as_bytes());
        }
    }

    #[test]
    fn the_counter_agrees_with_formatting_across_carries() {
        let mut c = LineCounter::default();
        for n in (0..1200).chain(99_990..100_010).chain([5, 6, 7]) {
            assert_eq!(
                c.line(n).as_bytes(),
                format!("{n}\n").as_bytes(),
                "round {n}"
            );
        }
    }

    #[test]
    fn overlaps_are_seen_by_whoever_enters_second() {
        let arena = Arena::create(2).unwrap();
        let h = arena.header();
        assert!(!h.enter(0));
        assert!(h.enter(1));
        h.leave(0);
        h.leave(1);
        assert!(!h.enter(1));
    }
}
