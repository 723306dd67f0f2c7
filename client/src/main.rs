//! `lockfair-client`: runs sessions against a lockfair server, compares every variant, and shows
//! by experiment how Linux file locks behave.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, CommandFactory, Parser, Subcommand};
use lockfair::compat::reader::ReaderOptions;
use lockfair::compat::{BLOG_SOCKET, DEFAULT_TURNS, MAX_TURNS};
use lockfair::experiment::compare::{self, CompareOptions};
use lockfair::experiment::{RunOptions, probe, run};
use lockfair::placement::Placement;
use lockfair::report::timeline::{timeline_file_name, timeline_svg};
use lockfair::report::{ReportDir, kernel, terminal};
use lockfair::runtime_dir::default_socket_path;
use lockfair::variant::{Mode, Variant};

/// Measure how (un)fairly Linux hands a file lock between processes, and what to use instead.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
struct RunArgs {
    /// Handoff mechanism
    #[arg(long, value_enum)]
    variant: Variant,
    /// Turns each side takes
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Stop after this many seconds even if rounds remain
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    max_seconds: f64,
    /// Where the processes run
    #[arg(long, value_enum, default_value_t = Placement::Free)]
    placement: Placement,
    #[command(flatten)]
    shape: Shape,
    /// The server's socket [default: the server's default; /tmp/test_socket with --seed-compat]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Speak the seed blog's client protocol byte for byte (with --variant seed), to drive the blog's own server
    #[arg(long, conflicts_with_all = ["rounds", "placement", "json", "contenders", "mode", "spin"])]
    seed_compat: bool,
    /// Record the kernel's own account of the run (tracefs: file-lock and scheduler events of
    /// the contenders' threads; needs root, or CAP_SYS_ADMIN): requests, grants, blocks, unlocks,
    /// wakeups, kernel-confirmed barges and wake-to-run latency, beside lockfair's own figures.
    /// Without the right the run goes on without it and says why
    #[arg(long, conflicts_with = "seed_compat")]
    kernel_trace: bool,
    /// With --kernel-trace: write DIR/timeline.svg, the first barge (or first milliseconds) as
    /// one lane per contender
    #[arg(long, value_name = "DIR", requires = "kernel_trace")]
    out: Option<PathBuf>,
    /// Turns of a --seed-compat run (the blog's 100); whoops do not count
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TURNS, requires = "seed_compat",
          value_parser = clap::value_parser!(u64).range(1..=MAX_TURNS))]
    seed_iterations: u64,
}

/// How many contend, in which order, and spin-futex's bound: the same for `run` and each cell of
/// `compare`.
#[derive(Debug, ClapArgs)]
struct Shape {
    /// Contenders in all: the server, the client, and child processes of the client for the rest
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=64))]
    contenders: u16,
    /// `turns`: a fixed round-robin order; `free`: every contender takes the lock --rounds
    /// times, as fast as it can
    #[arg(long, value_enum, default_value_t = Mode::Turns)]
    mode: Mode,
    /// spin-futex: how many times to look at the turn word before sleeping
    #[arg(long, default_value_t = lockfair::variant::DEFAULT_SPIN, value_parser = clap::value_parser!(u32).range(1..=i64::from(lockfair::variant::MAX_SPIN)))]
    spin: u32,
}

impl Shape {
    /// The library's shape of every session: this one, `rounds` long, stopped after
    /// `max_seconds`.
    fn with_length(&self, rounds: u64, max_seconds: f64) -> lockfair::experiment::Shape {
        lockfair::experiment::Shape {
            contenders: self.contenders.into(),
            mode: self.mode,
            spin: self.spin,
            rounds,
            max_seconds,
        }
    }
}

#[derive(Debug, ClapArgs)]
struct CompareArgs {
    /// Variants to run (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Variant::ALL)]
    variants: Vec<Variant>,
    /// Placements to run (comma-separated); impossible ones are skipped and reported
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Placement::ALL)]
    placements: Vec<Placement>,
    /// Turns per side in each cell
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Time limit per cell, in seconds
    #[arg(long, default_value_t = 0.25, value_parser = parse_seconds)]
    max_seconds: f64,
    /// Runs of every cell; the table shows the median and the spread
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    repeats: u64,
    #[command(flatten)]
    shape: Shape,
    /// The report folder [default: results/<UTC date-time>]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print summary.json instead of the table
    #[arg(long)]
    json: bool,
    /// The lockfair-server binary [default: next to this one]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// An earlier report folder to compare with: per cell, new/old of rounds/s, round trip p50
    /// and whoops/round, and which changes are real
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// Record the kernel's own account of every cell (see `run --kernel-trace`); the report
    /// folder gets timeline-<variant>-<placement>.svg for each cell's first repeat
    #[arg(long)]
    kernel_trace: bool,
    /// After the cells, run the holder-death experiment (see `crash`) for these variants, plain
    /// and survivable, and put it beside speed and fairness in the report (adds seconds)
    #[arg(long)]
    crash: bool,
}

#[derive(Debug, ClapArgs)]
struct BenchArgs {
    /// The compiled C yardstick: `cc -O2 -o target/release/pingpong bench/pingpong.c`
    #[arg(long, required_unless_present = "spin_sweep")]
    pingpong: Option<PathBuf>,
    /// Also set spin-futex against a C spin ping-pong that measures each turn as lockfair does
    /// (two timestamps, the overlap detector, the release stamp): `cc -O2 -o
    /// target/release/spin_anatomy bench/spin_anatomy.c`
    #[arg(long)]
    anatomy: Option<PathBuf>,
    /// Instead: run spin-futex with a range of spin bounds against plain futex, to choose the
    /// default bound
    #[arg(long)]
    spin_sweep: bool,
    /// Round trips per run
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Alternating runs of each side per cell; medians are compared, ranges shown
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeats: u64,
    /// Placements (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Placement::ALL)]
    placements: Vec<Placement>,
    /// The lockfair-server binary [default: next to this one]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Print Markdown instead of aligned text
    #[arg(long)]
    markdown: bool,
    /// Print the table as JSON (stable field names; medians and ranges over the repeats)
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
}

#[derive(Debug, ClapArgs)]
struct CrashArgs {
    /// How long the survivor gets after the holder's SIGKILL, in seconds
    #[arg(long, default_value_t = lockfair::crash::DEFAULT_LIMIT.as_secs_f64(), value_parser = parse_seconds)]
    limit: f64,
    /// Protect the fast handoffs (pidfd in the poll set, or a watcher thread) and show they survive
    #[arg(long)]
    survivable: bool,
    /// Instead: what the protection costs when nobody dies (round trips, protected / plain)
    #[arg(long, conflicts_with = "survivable")]
    overhead: bool,
    /// Only these variants (comma-separated) [default: every one the experiment has]
    #[arg(long, value_enum, value_delimiter = ',')]
    variants: Vec<Variant>,
    /// Only these cases of who else holds the holder's description (comma-separated) [default: both]
    #[arg(long, value_enum, value_delimiter = ',')]
    descriptions: Vec<lockfair::crash::Description>,
    /// --overhead: round trips per block
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// --overhead: pairs of blocks (plain, protected), alternating in one ping-pong
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeats: u64,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Instead: the Markdown section for the report and the README (plain, survivable, overhead)
    #[arg(long, conflicts_with_all = ["json", "survivable", "overhead"])]
    markdown: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

fn main() -> ExitCode {
    lockfair::placement::allowed_cpus();
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lockfair-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_one(args),
        Command::Compare(args) => run_compare(args),
        Command::Probe { json } => {
            let helper = std::env::current_exe().context("cannot find this executable")?;
            let report = probe::probe(&helper)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Matrix { json } => {
            let helper = std::env::current_exe().context("cannot find this executable")?;
            let report = lockfair::matrix::run_matrix(&helper)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => run_bench(args),
        Command::Crash(args) => run_crash(args),
        Command::CrashChild => {
            lockfair::crash::serve_child(std::io::stdin().as_fd())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "lockfair-client",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            write_man_pages(&out)
                .with_context(|| format!("cannot write man pages to {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Peer => {
            lockfair::peer::serve(std::io::stdin().as_fd())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Contender => {
            lockfair::experiment::contender::serve(std::io::stdin().as_fd())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    use lockfair::experiment::bench;
    let opts = bench::BenchOptions {
        pingpong: args.pingpong.unwrap_or_default(),
        anatomy: args.anatomy,
        rounds: args.rounds,
        repeats: args.repeats as usize,
        placements: args.placements,
        server_bin: args.server_bin,
    };
    let progress = |line: &str| eprintln!("{line}");
    let table = if args.spin_sweep {
        let rows = bench::spin_sweep(&opts, progress)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        bench::sweep_table(&rows)
    } else {
        let report = bench::bench(&opts, progress)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        bench::table(&report)
    };
    if args.markdown {
        print!("{}", table.to_markdown());
    } else {
        print!("{}", table.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_one(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.seed_compat {
        return run_seed_compat(args);
    }
    let mut opts = RunOptions::new(
        args.socket.unwrap_or_else(default_socket_path),
        args.variant,
        args.placement,
        args.shape.with_length(args.rounds, args.max_seconds),
    );
    opts.kernel_trace = args.kernel_trace;
    let report = run(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", terminal::run_text(&report));
        print!("{}", kernel::run_kernel_text(&report));
    }
    if let (Some(dir), Some(k)) = (&args.out, report.kernel.as_ref().and_then(|k| k.run())) {
        let title = format!("{} {}", report.variant, report.placement);
        write_timeline(dir, "timeline.svg", &timeline_svg(&k.timeline, &title))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_seed_compat(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.variant != lockfair::variant::BLOG_VARIANT {
        // A usage error, like a bad flag.
        eprintln!(
            "lockfair-client: --seed-compat speaks the blog's seed protocol: use it with --variant seed, not --variant {}",
            args.variant
        );
        return Ok(ExitCode::from(2));
    }
    let report = lockfair::compat::reader::run_reader(&ReaderOptions {
        socket: args.socket.unwrap_or_else(|| PathBuf::from(BLOG_SOCKET)),
        turns: args.seed_iterations,
        max_seconds: args.max_seconds,
    })?;
    print!("{}", report.to_text());
    // Gave up (the server exited, --max-seconds passed): say so where errors go, and fail.
    if let Some(stop) = report.played.stop_line() {
        eprintln!("lockfair-client: {stop}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if args.variants.is_empty() || args.placements.is_empty() {
        bail!("nothing to compare: give at least one variant and one placement");
    }
    let opts = CompareOptions {
        variants: args.variants,
        placements: args.placements,
        shape: args.shape.with_length(args.rounds, args.max_seconds),
        repeats: args.repeats as usize,
        server_bin: args.server_bin,
        command: command_line(),
        kernel_trace: args.kernel_trace,
    };
    let mut plan = compare::plan(&opts);
    if let Some(dir) = &args.baseline {
        match lockfair::report::baseline::read_baseline(dir) {
            Ok(b) => plan.report.baseline = Some(b),
            // A usage error, like a bad --out.
            Err(e) => {
                eprintln!("lockfair-client: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let out = args.out.unwrap_or_else(compare::default_out_dir);
    let dir = match ReportDir::create(&out, &plan.report) {
        Ok(dir) => dir,
        // A bad --out is a usage error, like a bad flag.
        Err(e) => {
            eprintln!("lockfair-client: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut outcome = compare::compare(&opts, plan, |report| dir.update(report))?;
    for (variant, placement, t) in &outcome.timelines {
        let svg = timeline_svg(t, &format!("{variant} {placement}"));
        write_timeline(dir.path(), &timeline_file_name(*variant, *placement), &svg)?;
    }
    if args.crash && !outcome.interrupted {
        outcome.report.holder_death = Some(holder_death(&opts.variants)?);
    }
    // Once more, now that the timelines and the holder death are there for report.html.
    dir.update(&outcome.report)?;
    if args.json {
        println!("{}", lockfair::report::json::to_json(&outcome.report)?);
    } else {
        print!("{}", terminal::compare_text(&outcome.report));
        print!("{}", kernel::compare_kernel_text(&outcome.report));
        if let Some(deaths) = &outcome.report.holder_death {
            print!("\nWhen the holder dies:\n{}", deaths.to_text());
        }
    }
    eprintln!("report written to {}", dir.path().display());
    eprintln!("open {}", dir.path().join("report.html").display());
    Ok(if outcome.interrupted {
        eprintln!("lockfair-client: interrupted; the report holds the cells finished before");
        ExitCode::from(130)
    } else if !outcome.report.failures.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `compare --crash`: the holder-death experiment for `variants`, plain then survivable.
fn holder_death(variants: &[Variant]) -> anyhow::Result<lockfair::CrashReport> {
    use lockfair::crash;
    let opts = crash::CrashOptions {
        helper: std::env::current_exe().context("cannot find this executable")?,
        limit: crash::DEFAULT_LIMIT,
        survivable: false,
        variants: variants.to_vec(),
        descriptions: Vec::new(),
    };
    eprintln!("holder death: killing holders inside their critical section...");
    crash::plain_and_survivable(&opts).context("the holder-death experiment (--crash) failed")
}

fn run_crash(args: CrashArgs) -> anyhow::Result<ExitCode> {
    use lockfair::crash::{self, overhead};
    let helper = std::env::current_exe().context("cannot find this executable")?;
    let cost = overhead::OverheadOptions {
        helper: helper.clone(),
        rounds: args.rounds,
        repeats: args.repeats as usize,
        variants: args.variants.clone(),
    };
    let opts = crash::CrashOptions {
        helper,
        limit: std::time::Duration::from_secs_f64(args.limit),
        survivable: args.survivable,
        variants: args.variants,
        descriptions: args.descriptions,
    };
    if args.markdown {
        print!("{}", crash::markdown(&opts, &cost, &command_line())?);
        return Ok(ExitCode::SUCCESS);
    }
    let (json, text) = if args.overhead {
        let report = overhead::overhead(&cost, |_| {})?;
        (report.to_json(), report.to_text())
    } else {
        let report = crash::crash(&opts, |c| {
            eprintln!("{} ({}): done", c.variant, c.holder_description.name())
        })?;
        (report.to_json(), report.to_text())
    };
    if args.json {
        println!("{json}");
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one timeline picture into `dir` (made if missing).
fn write_timeline(dir: &std::path::Path, name: &str, svg: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("timeline written to {}", path.display());
    Ok(())
}

/// lockfair-client.1 and a page per visible subcommand, then lockfair-server.1 (its command
/// line lives in the library for this), each path printed as written.
fn write_man_pages(out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    clap_mangen::generate_to(Cli::command(), out)?;
    clap_mangen::generate_to(lockfair::server::args::ServerArgs::command(), out)?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    pages.sort();
    for page in pages {
        println!("{}", page.display());
    }
    Ok(())
}

/// This process's command line, quoted where a shell would need it.
fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or(a)
            } else {
                a
            };
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\*?".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
