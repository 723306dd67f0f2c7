//! `lockfair-client crash`: what every mechanism does when the holder dies, by experiment.
//!
//! For each cell ([`cells`](mod@cells)) the driver starts a holder (a child process, contender 0) that
//! takes the lock or holds the turn and says it is inside its critical section, then a survivor
//! (contender 1) that waits for the lock or the turn. Once the survivor sleeps, the holder gets
//! SIGKILL. The survivor uses the mechanism alone: no watchdog, no pidfd, no session logic; the
//! driver gives it `limit` after the kill, then kills it too.
//!
//! The kernel decides every plain cell (fs/locks.c): POSIX and `lockf` locks belong to the
//! process and are dropped when it exits (`locks_remove_posix`, as its files close); OFD and
//! `flock` locks belong to the open file description and are dropped only when its last
//! reference closes (`locks_remove_file`), so a description that a live process also holds keeps
//! a dead process's lock. A futex word, an eventfd or a ticket counter has no owner the kernel
//! knows of. A pipe's reader sees EOF once every write end is closed. Two words do name their
//! owner's TID: a PI futex (at exit, `exit_pi_state_list` hands it to the top waiter, and the
//! fix-up writes FUTEX_OWNER_DIED into it) and glibc's robust mutex (the kernel walks the dead
//! thread's robust list, marks the word FUTEX_OWNER_DIED and wakes a waiter: `EOWNERDEAD`).
//! Beside each cell, `/proc/locks` says who the kernel thinks holds the arena.
//!
//! `crash --survivable` runs the fast handoffs with a protection on ([`survivable`]), and
//! [`overhead`] measures what that protection costs when nobody dies. `crash --stop` ([`stop`])
//! stops the holder instead of killing it, and asks the kernel to name it.
//!
//! Files: [`cells`](mod@cells) (the cells each variant declares, what each child does, `how`), `child` (the child processes),
//! `robust` (the robust mutex's cells, through `sys::robust_mutex`), [`survivable`] (the
//! protections), [`output`] (table, JSON, Markdown), [`overhead`].

pub mod cells;
mod child;
pub mod output;
pub mod overhead;
mod robust;
pub mod stop;
pub mod survivable;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use thiserror::Error;

pub use cells::{Cell, Description, cells};
pub use child::{SUBCOMMAND as CHILD_SUBCOMMAND, serve as serve_child};

use crate::arena::{Arena, ArenaError};
use crate::sys::clock::monotonic_ns;
use crate::sys::pidfd;
use crate::variant::{HandoffFds, Mode, SetupError, Variant};
use cells::Outcome;
use child::{ANSWER_TIMEOUT, ExperimentChild, Job, Report, Role};

/// The default time a survivor gets after the holder's death.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Clone, Debug)]
pub struct CrashOptions {
    /// This program, to start the children (`crash-child`).
    pub helper: PathBuf,
    /// How long a survivor gets after the holder's death.
    pub limit: Duration,
    /// Protected survivors (`--survivable`).
    pub survivable: bool,
    /// Only these variants (all if empty).
    pub variants: Vec<Variant>,
    /// Only these description cases (both if empty).
    pub descriptions: Vec<Description>,
}

pub use crate::outcome::holder_death::{CellResult, CrashReport, Skipped};

/// Why the experiment could not run.
#[derive(Debug, Error)]
pub enum CrashError {
    #[error(transparent)]
    Spawn(#[from] crate::child::ChildStartError),
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("cannot set up the variant: {0}")]
    Setup(#[from] SetupError),
    #[error("cannot set up the arena: {0}")]
    Arena(#[from] ArenaError),
    #[error("a child process failed: {0}")]
    ChildFailed(String),
    #[error("child process {0} exited without a word")]
    ChildGone(i32),
    #[error("a child process did not answer within {0:?}")]
    Timeout(Duration),
    #[error("a child process sent something unreadable")]
    Garbled,
    #[error(
        "no cell of the experiment matches these variants and descriptions (see `lockfair-client crash --help`)"
    )]
    NoCells,
    #[error("{variant} ({description}): {source}")]
    Cell {
        variant: Variant,
        description: &'static str,
        source: Box<CrashError>,
    },
}

/// Runs every cell; `progress` sees each result as it comes.
pub fn crash(
    opts: &CrashOptions,
    mut progress: impl FnMut(&CellResult),
) -> Result<CrashReport, CrashError> {
    let chosen = cells(opts.survivable, &opts.variants, &opts.descriptions);
    let (cells, skipped) = run_each(chosen, |cell| run_cell(opts, cell), &mut progress)?;
    Ok(CrashReport { cells, skipped })
}

/// Runs `run` on every cell of `chosen`, in order; `progress` sees each result as it comes.
/// A cell whose child could not set the variant up here is skipped, with the child's reason.
fn run_each<T>(
    chosen: Vec<Cell>,
    mut run: impl FnMut(&Cell) -> Result<T, CrashError>,
    progress: &mut impl FnMut(&T),
) -> Result<(Vec<T>, Vec<Skipped>), CrashError> {
    if chosen.is_empty() {
        return Err(CrashError::NoCells);
    }
    let (mut results, mut skipped) = (Vec::new(), Vec::new());
    for cell in chosen {
        match run(&cell) {
            Ok(result) => {
                progress(&result);
                results.push(result);
            }
            // The variant itself could not be set up here (its child said why): say so, go on.
            Err(CrashError::ChildFailed(why)) => skipped.push(Skipped {
                variant: cell.variant,
                holder_description: cell.description,
                why,
            }),
            Err(e) => {
                return Err(CrashError::Cell {
                    variant: cell.variant,
                    description: cell.description.name(),
                    source: Box::new(e),
                });
            }
        }
    }
    Ok((results, skipped))
}

/// `compare --crash`: the plain cells of `opts`'s variants, then the protected ones where the
/// experiment has them, in one report. Variants the experiment has no cell for are left out;
/// none at all gives an empty report, not an error.
pub fn plain_and_survivable(opts: &CrashOptions) -> Result<CrashReport, CrashError> {
    let mut out = CrashReport::default();
    for survivable in [false, true] {
        if cells(survivable, &opts.variants, &opts.descriptions).is_empty() {
            continue;
        }
        let part = CrashOptions {
            survivable,
            ..opts.clone()
        };
        out.extend(crash(&part, |_| {})?);
    }
    Ok(out)
}

/// The whole "When the holder dies" section: the plain experiment, the survivable one and the
/// protection's cost, for the variants `opts` selects (`opts.survivable` is ignored).
pub fn markdown(
    opts: &CrashOptions,
    cost: &overhead::OverheadOptions,
    command: &str,
) -> Result<String, CrashError> {
    let plain = crash(
        &CrashOptions {
            survivable: false,
            ..opts.clone()
        },
        |_| {},
    )?;
    let protected = CrashOptions {
        survivable: true,
        ..opts.clone()
    };
    let survivable = if cells(true, &opts.variants, &opts.descriptions).is_empty() {
        None
    } else {
        Some(crash(&protected, |_| {})?)
    };
    let cost = overhead::overhead(cost, |_| {})?;
    let cost = (!cost.overhead.is_empty()).then_some(&cost);
    Ok(output::markdown_section(
        &plain,
        survivable.as_ref(),
        cost,
        command,
    ))
}

/// A cell's two children: the holder inside its critical section, the survivor asleep in its
/// wait (or `early`, its answer if it never had to wait).
struct Pair {
    arena: Arena,
    holder: ExperimentChild,
    survivor: ExperimentChild,
    /// `shared`: the driver's copies of the variant's descriptors, kept open.
    kept: Option<HandoffFds>,
    early: Option<Report>,
}

/// Starts the holder, waits until it is inside, then starts the survivor and waits until it
/// sleeps in its wait.
fn start_pair(opts: &CrashOptions, cell: &Cell) -> Result<Pair, CrashError> {
    let variant = cell.variant;
    let arena = Arena::create(2)?;
    variant.prepare(&arena, Mode::Turns, 2)?;
    let channels = variant.create_handoff_fds(2, Mode::Turns)?;
    let holder_fds = channels.fds_for(variant, Mode::Turns, 0, 2)?;
    let survivor_fds = channels.fds_for(variant, Mode::Turns, 1, 2)?;
    let mut holder = start(opts, cell, Role::Holder, &arena, holder_fds, None)?;
    holder.expect(&Report::Inside)?;
    // The holder is our unreaped child: its pid cannot be reused before we wait for it.
    let holder_pidfd = pidfd::open(holder.pid()).map_err(|errno| CrashError::Sys {
        what: "open the holder's pidfd",
        errno,
    })?;
    let watch = cell.survivable.then_some(holder_pidfd.as_fd());
    let mut survivor = start(opts, cell, Role::Survivor, &arena, survivor_fds, watch)?;
    // `own`: from here on the holder's descriptors are its own; `shared`: we keep ours open.
    let kept = (cell.description == Description::Shared).then_some(channels);
    survivor.expect(&Report::Waiting)?;
    let early = await_sleep(&mut survivor)?;
    Ok(Pair {
        arena,
        holder,
        survivor,
        kept,
        early,
    })
}

/// One cell: holder in, survivor waiting, holder killed, and what the survivor got.
fn run_cell(opts: &CrashOptions, cell: &Cell) -> Result<CellResult, CrashError> {
    let Pair {
        arena,
        holder,
        mut survivor,
        kept,
        early,
    } = start_pair(opts, cell)?;
    let holder_pid = holder.pid();
    let kill_ns = monotonic_ns();
    holder.kill();
    let was_early = early.is_some();
    let report = match early {
        Some(r) => Some(r),
        None => survivor.next(opts.limit)?,
    };
    let view = kernel_view(&arena, holder_pid, survivor.pid());
    drop(survivor);
    drop(kept);
    if let Some(Report::Failed(why)) = report {
        return Err(CrashError::ChildFailed(why));
    }
    let mut result = result(cell, report, was_early, kill_ns);
    result.kernel_view = view;
    Ok(result)
}

/// The kernel's own account of the arena's locks (`/proc/locks`), with pids named: `None` if
/// it lists none.
fn kernel_view(arena: &Arena, holder: i32, survivor: i32) -> Option<String> {
    let locks = crate::procinfo::proc_locks_for(arena.file());
    let waiting = locks.iter().filter(|l| l.blocked).count();
    let mut held: Vec<(String, usize)> = Vec::new();
    for l in locks.iter().filter(|l| !l.blocked) {
        let who = match l.pid {
            -1 => "a description (pid -1)".to_string(),
            p if p == i64::from(holder) => format!("the dead holder (pid {p})"),
            p if p == i64::from(survivor) => "the survivor".to_string(),
            p => format!("pid {p}"),
        };
        let line = format!("{} {} held by {who}", l.kind, l.access);
        match held.iter_mut().find(|(h, _)| *h == line) {
            Some((_, n)) => *n += 1,
            None => held.push((line, 1)),
        }
    }
    if held.is_empty() && waiting == 0 {
        return None;
    }
    let held = if held.is_empty() {
        "nothing held".to_string()
    } else {
        let counted = |(line, n): &(String, usize)| match n {
            1 => line.clone(),
            n => format!("{n}× {line}"),
        };
        held.iter().map(counted).collect::<Vec<_>>().join("; ")
    };
    Some(format!("{held}, {waiting} waiting"))
}

/// Starts a child for `role` in `cell`, sending it the arena, its descriptors and the pidfd
/// it may watch.
fn start(
    opts: &CrashOptions,
    cell: &Cell,
    role: Role,
    arena: &Arena,
    fds: Vec<OwnedFd>,
    watch: Option<BorrowedFd<'_>>,
) -> Result<ExperimentChild, CrashError> {
    let job = Job {
        variant: cell.variant,
        role,
        description: cell.description,
        survivable: cell.survivable,
        pidfds: u32::from(watch.is_some()),
        driver: std::process::id() as i32,
    };
    let mut attached: Vec<BorrowedFd<'_>> = vec![arena.file().as_fd()];
    attached.extend(fds.iter().map(|f| f.as_fd()));
    attached.extend(watch);
    ExperimentChild::start(&opts.helper, &job, &attached)
}

/// Waits (bounded) until the survivor sleeps in its wait, so the holder dies under a real
/// waiter. Returns its report instead if it sends one first (the seed never waits).
fn await_sleep(survivor: &mut ExperimentChild) -> Result<Option<Report>, CrashError> {
    let give_up = monotonic_ns() + ANSWER_TIMEOUT.as_nanos() as u64;
    while monotonic_ns() < give_up {
        if let Some(r) = survivor.next(Duration::from_millis(1))? {
            return Ok(Some(r));
        }
        if sleeping(survivor.pid()) {
            return Ok(None);
        }
    }
    Ok(None)
}

/// True if process `pid`'s main thread is asleep (state `S` in `/proc/PID/stat`).
fn sleeping(pid: i32) -> bool {
    crate::procinfo::holder::process_state(pid) == Some('S')
}

fn result(cell: &Cell, report: Option<Report>, early: bool, kill_ns: u64) -> CellResult {
    let (outcome, at_ns) = match report {
        Some(Report::Got {
            at_ns,
            owner_died,
            relock,
        }) => {
            let relock = relock.map(|e| match e {
                0 => Ok(()),
                e => Err(Errno::from_raw(e)),
            });
            (
                Outcome::Got {
                    owner_died,
                    early,
                    relock,
                },
                at_ns,
            )
        }
        Some(Report::Eof { at_ns }) => (Outcome::Eof, at_ns),
        Some(Report::Refused { at_ns, errno }) => (Outcome::Refused(Errno::from_raw(errno)), at_ns),
        _ => (Outcome::Nothing, 0),
    };
    let recovered = matches!(outcome, Outcome::Got { .. });
    CellResult {
        variant: cell.variant,
        holder_description: cell.description,
        recovered,
        recovered_ns: recovered.then(|| at_ns.saturating_sub(kill_ns)),
        owner_died_seen: matches!(
            outcome,
            Outcome::Eof
                | Outcome::Refused(Errno::EOWNERDEAD | Errno::ENOTRECOVERABLE | Errno::ESRCH)
                | Outcome::Got {
                    owner_died: true,
                    ..
                }
        ),
        how: cells::how(cell, outcome),
        survivable: cell.survivable,
        kernel_view: None,
    }
}
