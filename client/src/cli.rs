//! `lockfair-client`'s command line: every subcommand and flag, as clap parses them. `main.rs`
//! only dispatches; `lockfair-client man` and `completions` read the same definitions.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};
use lockfair::compat::{DEFAULT_TURNS, MAX_TURNS};
use lockfair::placement::Placement;
use lockfair::variant::{Mode, Variant};

/// Measure how (un)fairly Linux hands a file lock between processes, and what to use instead.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run one session against a running lockfair-server
    Run(RunArgs),
    /// Start a private server and run the variants side by side
    Compare(CompareArgs),
    /// Show, by experiment, why the seed's passed descriptor gives no mutual exclusion
    Probe {
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// The lock-semantics matrix: which lock kinds exclude across which kinds of access, by experiment
    Matrix {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Compare lockfair's eventfd/futex/pipe round trips with a minimal C ping-pong, same run
    Bench(BenchArgs),
    /// What every mechanism does when the holder dies inside its critical section, by experiment
    Crash(CrashArgs),
    /// The story, run live on this machine in about two minutes (no server to start): each
    /// claim lockfair makes, the figure measured now, and whether it holds here; then what to use
    Demo(DemoArgs),
    /// Print a shell completion script to stdout, e.g. `lockfair-client completions bash >
    /// ~/.local/share/bash-completion/completions/lockfair-client`
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages of lockfair-client (one per subcommand) and lockfair-server into DIR
    Man {
        /// The folder to write the `.1` files into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// (internal) the helper process the experiments drive over stdin
    #[command(hide = true)]
    Peer,
    /// (internal) an extra contender of `run --contenders N`, fed over stdin
    #[command(hide = true)]
    Contender,
    /// (internal) a holder, survivor or echo of `crash`, fed over stdin
    #[command(hide = true, name = lockfair::crash::CHILD_SUBCOMMAND)]
    CrashChild,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct RunArgs {
    /// Handoff mechanism
    #[arg(long, value_enum)]
    pub(crate) variant: Variant,
    /// Turns each side takes
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rounds: u64,
    /// Stop after this many seconds even if rounds remain
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub(crate) max_seconds: f64,
    /// Where the processes run
    #[arg(long, value_enum, default_value_t = Placement::Free)]
    pub(crate) placement: Placement,
    /// Contenders in all: the server, the client, and child processes of the client for the rest
    #[arg(long, default_value_t = 2, value_parser = contenders_parser())]
    pub(crate) contenders: u16,
    #[command(flatten)]
    pub(crate) shape: Shape,
    /// The server's socket [default: the server's default; /tmp/test_socket with --seed-compat]
    #[arg(long)]
    pub(crate) socket: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub(crate) json: bool,
    /// Show every column of the table (by default the handoff's tail and the roles are left
    /// out, so the table fits a terminal; --json has everything)
    #[arg(long)]
    pub(crate) wide: bool,
    /// Speak the seed blog's client protocol byte for byte (with --variant seed), to drive the blog's own server
    #[arg(long, conflicts_with_all = ["rounds", "placement", "json", "contenders", "mode", "spin", "poll_sleep", "hold", "think", "nice"])]
    pub(crate) seed_compat: bool,
    /// Record the kernel's own account of the run (tracefs: file-lock and scheduler events of
    /// the contenders' threads; needs root, or CAP_SYS_ADMIN): requests, grants, blocks, unlocks,
    /// wakeups, kernel-confirmed barges and wake-to-run latency, beside lockfair's own figures.
    /// Without the right the run goes on without it and says why
    #[arg(long, conflicts_with = "seed_compat")]
    pub(crate) kernel_trace: bool,
    /// With --kernel-trace: write DIR/timeline.svg, the first barge (or first milliseconds) as
    /// one lane per contender
    #[arg(long, value_name = "DIR", requires = "kernel_trace")]
    pub(crate) out: Option<PathBuf>,
    /// Hold every CPU out of idle for the run (/dev/cpu_dma_latency at 0, as cyclictest does;
    /// needs root). A cross-CPU wakeup then costs a few µs instead of tens on a VM idled by
    /// haltpoll; idle CPUs spin meanwhile. Not the default: programs run with their CPUs
    /// idling, and a root-only default would measure another machine for root than for anyone
    /// else (docs/measures.md: what holding idle buys and costs)
    #[arg(long, conflicts_with = "seed_compat")]
    pub(crate) hold_idle: bool,
    /// Let the CPUs idle as they would (the default); the opposite of --hold-idle
    #[arg(long, conflicts_with_all = ["hold_idle", "seed_compat"])]
    pub(crate) no_hold_idle: bool,
    /// Turns of a --seed-compat run (the blog's 100); whoops do not count
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TURNS, requires = "seed_compat",
          value_parser = clap::value_parser!(u64).range(1..=MAX_TURNS))]
    pub(crate) seed_iterations: u64,
}

/// In which order, what each contender does inside and outside the lock, and spin-futex's
/// bound: the same for `run` and each cell of `compare` (each has its own `--contenders`:
/// `compare` takes a list).
#[derive(Debug, ClapArgs)]
pub(crate) struct Shape {
    /// `turns`: a fixed round-robin order; `free`: every contender takes the lock --rounds
    /// times, as fast as it can [default: turns; free for a compare sweep, --contenders with
    /// several counts]
    #[arg(long, value_enum)]
    pub(crate) mode: Option<Mode>,
    /// spin-futex: how many times to look at the turn word before sleeping
    #[arg(long, default_value_t = lockfair::variant::DEFAULT_SPIN, value_parser = clap::value_parser!(u32).range(1..=i64::from(lockfair::variant::MAX_SPIN)))]
    pub(crate) spin: u32,
    /// poll-lock: the mean sleep after a refused try_lock (each sleep is drawn from 0.5-1.5x
    /// it), e.g. 1ms, 200us, 10ms; between 50us and 1s
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = parse_poll_sleep)]
    pub(crate) poll_sleep: std::time::Duration,
    /// Busy work inside each critical section (in turns mode, inside each turn, which forces
    /// alternation): one duration for every contender, or a comma-separated list with one per
    /// contender, the server first, e.g. `--hold 1us,100us`; at most 1s. Work on the CPU (a spin
    /// on the clock), not a sleep
    #[arg(long, value_name = "DURATION[,...]", value_delimiter = ',', value_parser = parse_busy)]
    pub(crate) hold: Vec<std::time::Duration>,
    /// Busy work between a release and the next request, as --hold takes it (one value or one
    /// per contender)
    #[arg(long, value_name = "DURATION[,...]", value_delimiter = ',', value_parser = parse_busy)]
    pub(crate) think: Vec<std::time::Duration>,
    /// The nice value of each contender's session thread, -20 to 19 (one value, or one per
    /// contender, the server first, e.g. `--nice 0,10`); a negative value needs root
    #[arg(long, value_name = "NICE[,...]", value_delimiter = ',', allow_hyphen_values = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub(crate) nice: Vec<i32>,
}

/// A `--hold` or `--think` value: `0` or a duration (humantime's `1us`, `100us`, `2ms`).
fn parse_busy(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as 1us, 100us or 2ms"))
}

/// A `--poll-sleep` value: a duration (humantime's `1ms`, `200us`) within the accepted range.
fn parse_poll_sleep(text: &str) -> Result<std::time::Duration, String> {
    use lockfair::variant::{MAX_POLL_SLEEP, MIN_POLL_SLEEP};
    let sleep = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as 1ms, 200us or 10ms"))?;
    if !(MIN_POLL_SLEEP..=MAX_POLL_SLEEP).contains(&sleep) {
        return Err(format!(
            "{} is out of range: the sleep must be between {} and {}",
            humantime::format_duration(sleep),
            humantime::format_duration(MIN_POLL_SLEEP),
            humantime::format_duration(MAX_POLL_SLEEP)
        ));
    }
    Ok(sleep)
}

/// `--contenders`' range, for `run`'s one value and each of `compare`'s.
fn contenders_parser() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(2..=64)
}

impl Shape {
    /// The library's shape of every session: this one with `contenders`, `rounds` long, stopped
    /// after `max_seconds`. A sweep runs in `free` mode unless told otherwise: its measures
    /// (acquisitions/s, bypass) are the free-for-all's, and 64 contenders taking turns do few
    /// rounds in a cell's time.
    pub(crate) fn with_length(
        &self,
        contenders: u16,
        rounds: u64,
        max_seconds: f64,
        sweep: bool,
    ) -> lockfair::experiment::Shape {
        let default_mode = if sweep { Mode::Free } else { Mode::Turns };
        lockfair::experiment::Shape {
            contenders: contenders.into(),
            mode: self.mode.unwrap_or(default_mode),
            spin: self.spin,
            poll_sleep: self.poll_sleep,
            rounds,
            max_seconds,
            unequal: lockfair::experiment::unequal::Unequal {
                hold: self.hold.clone(),
                think: self.think.clone(),
                nice: self.nice.clone(),
            },
        }
    }
}

#[derive(Debug, ClapArgs)]
pub(crate) struct CompareArgs {
    /// Variants to run (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Variant::ALL)]
    pub(crate) variants: Vec<Variant>,
    /// Placements to run (comma-separated); impossible ones are skipped and reported
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Placement::ALL)]
    pub(crate) placements: Vec<Placement>,
    /// Turns per side in each cell
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rounds: u64,
    /// Time limit per cell, in seconds
    #[arg(long, default_value_t = 0.1, value_parser = parse_seconds)]
    pub(crate) max_seconds: f64,
    /// Runs of every cell; the table shows the median and its interval (8: the lowest and
    /// highest, 99.2%; 6 or more reach 95%, see docs/measures.md), --baseline tests the repeats
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub(crate) repeats: u64,
    /// Contenders in all: the server, the client, and child processes of the client for the
    /// rest. Several counts (comma-separated, e.g. 2,4,8,16,32,64) sweep: every cell at each
    /// count, a table and a plot per measure against the count, and lockfair's own memory and
    /// descriptors at each; the usual tables are then the largest count's
    #[arg(long, default_value = "2", value_delimiter = ',', value_parser = contenders_parser())]
    pub(crate) contenders: Vec<u16>,
    #[command(flatten)]
    pub(crate) shape: Shape,
    /// The report folder [default: results/<UTC date-time>]
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Print summary.json instead of the table
    #[arg(long)]
    pub(crate) json: bool,
    /// Show every column of the tables (by default the columns that tell the story, so they
    /// fit a terminal; summary.md, summary.json and report.html always have every column)
    #[arg(long)]
    pub(crate) wide: bool,
    /// The lockfair-server binary [default: next to this one]
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
    /// An earlier report folder to compare with: per cell, new/old of rounds/s, round trip p50
    /// and whoops/round, and which changes are real (a rank test on the two runs' repeats,
    /// p < 0.01)
    #[arg(long, value_name = "DIR")]
    pub(crate) baseline: Option<PathBuf>,
    /// Record the kernel's own account of every cell (see `run --kernel-trace`); the report
    /// folder gets timeline-<variant>-<placement>.svg for each cell's first repeat
    #[arg(long)]
    pub(crate) kernel_trace: bool,
    /// After the cells, run the holder-death experiment (see `crash`) for these variants, plain
    /// and survivable, and put it beside speed and fairness in the report (adds seconds)
    #[arg(long)]
    pub(crate) crash: bool,
    /// Hold every CPU out of idle for the whole comparison (see `run --hold-idle`; root); the
    /// report's machine section says so, beside the cross-CPU wakeup it measured. Not the
    /// default (docs/measures.md)
    #[arg(long)]
    pub(crate) hold_idle: bool,
    /// Let the CPUs idle as they would (the default, see docs/measures.md); the opposite of
    /// --hold-idle
    #[arg(long, conflicts_with = "hold_idle")]
    pub(crate) no_hold_idle: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct BenchArgs {
    /// The compiled C yardstick: `cc -O2 -o target/release/pingpong bench/pingpong.c`
    #[arg(long, required_unless_present = "spin_sweep")]
    pub(crate) pingpong: Option<PathBuf>,
    /// Also set spin-futex against a C spin ping-pong that measures each turn as lockfair does
    /// (two timestamps, the overlap detector, the release stamp): `cc -O2 -o
    /// target/release/spin_anatomy bench/spin_anatomy.c`
    #[arg(long)]
    pub(crate) anatomy: Option<PathBuf>,
    /// Instead: run spin-futex with a range of spin bounds against plain futex, to choose the
    /// default bound
    #[arg(long)]
    pub(crate) spin_sweep: bool,
    /// Round trips per run
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rounds: u64,
    /// Alternating runs of each side per cell; medians are compared, ranges shown
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) repeats: u64,
    /// Placements (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Placement::ALL)]
    pub(crate) placements: Vec<Placement>,
    /// The lockfair-server binary [default: next to this one]
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
    /// Print Markdown instead of aligned text
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Print the table as JSON (stable field names; medians and ranges over the repeats)
    #[arg(long, conflicts_with = "markdown")]
    pub(crate) json: bool,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct CrashArgs {
    /// How long the survivor gets after the holder's SIGKILL, in seconds
    #[arg(long, default_value_t = lockfair::crash::DEFAULT_LIMIT.as_secs_f64(), value_parser = parse_seconds)]
    pub(crate) limit: f64,
    /// Protect the fast handoffs (pidfd in the poll set, or a watcher thread) and show they survive
    #[arg(long)]
    pub(crate) survivable: bool,
    /// Instead: what the protection costs when nobody dies (round trips, protected / plain)
    #[arg(long, conflicts_with = "survivable")]
    pub(crate) overhead: bool,
    /// Instead: stop the holder (SIGSTOP) rather than kill it; the survivor waits --limit, and
    /// the kernel is asked who holds the lock (one cell per variant; SIGCONT, then both killed)
    #[arg(long, conflicts_with_all = ["survivable", "overhead"])]
    pub(crate) stop: bool,
    /// --stop: also write stop.json and stop.md (the Markdown table) into this folder
    #[arg(long, value_name = "DIR", requires = "stop")]
    pub(crate) out: Option<PathBuf>,
    /// Only these variants (comma-separated) [default: every one the experiment has]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) variants: Vec<Variant>,
    /// Only these cases of who else holds the holder's description (comma-separated) [default: both]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) descriptions: Vec<lockfair::crash::Description>,
    /// --overhead: round trips per block
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) rounds: u64,
    /// --overhead: pairs of blocks (plain, protected), alternating in one ping-pong
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) repeats: u64,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub(crate) json: bool,
    /// Instead: the Markdown section for the report and the README (plain, survivable, overhead)
    #[arg(long, conflicts_with_all = ["json", "survivable", "overhead", "stop"])]
    pub(crate) markdown: bool,
}

pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

#[derive(Debug, ClapArgs)]
pub(crate) struct DemoArgs {
    /// Print the steps as one JSON object (progress goes to stderr)
    #[arg(long)]
    pub(crate) json: bool,
    /// The report folder (demo.json, demo.md, report.html) [default: results/<UTC date-time>-demo]
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Runs of every cell; each figure is their median, with compare's interval for it (with 5
    /// runs, their range)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub(crate) repeats: u64,
    /// The lockfair-server binary [default: next to this one]
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
}
