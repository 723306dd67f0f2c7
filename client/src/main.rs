//! `lockfair-client`: runs sessions against a lockfair server, compares every variant, and shows
//! by experiment how Linux file locks behave.

mod cli;
mod stdout;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser};
use cli::{BenchArgs, Cli, Command, CompareArgs, CrashArgs, DemoArgs, RunArgs};
use lockfair::compat::BLOG_SOCKET;
use lockfair::compat::reader::ReaderOptions;
use lockfair::experiment::compare::{self, CompareOptions};
use lockfair::experiment::{RunOptions, probe, run};
use lockfair::report::timeline::{timeline_file_name, timeline_svg};
use lockfair::report::{ReportDir, kernel, terminal};
use lockfair::runtime_dir::default_socket_path;
use lockfair::sys::out_dir::OutDir;
use lockfair::variant::Variant;
use stdout::{print, println};

fn main() -> ExitCode {
    lockfair::placement::allowed_cpus();
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        // `| head`: the reader has what it wanted.
        Err(e) if stdout::reader_left(&e) => ExitCode::SUCCESS,
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
                println(serde_json::to_string_pretty(&report)?)?;
            } else {
                print(report.to_text())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Matrix { json } => {
            let helper = std::env::current_exe().context("cannot find this executable")?;
            let report = lockfair::matrix::run_matrix(&helper)?;
            if json {
                println(serde_json::to_string_pretty(&report)?)?;
            } else {
                print(report.to_text())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => run_bench(args),
        Command::Crash(args) => run_crash(args),
        Command::Demo(args) => run_demo(args),
        Command::CrashChild => {
            lockfair::crash::serve_child(std::io::stdin().as_fd())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lockfair-client", &mut script);
            print(script)?;
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
            println(serde_json::to_string_pretty(&rows)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        bench::sweep_table(&rows)
    } else {
        let report = bench::bench(&opts, progress)?;
        if args.json {
            println(serde_json::to_string_pretty(&report)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        bench::table(&report)
    };
    if args.markdown {
        print(table.to_markdown())?;
    } else {
        print(table.to_text())?;
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
        args.shape
            .with_length(args.contenders, args.rounds, args.max_seconds, false),
    );
    opts.kernel_trace = args.kernel_trace;
    // --no-hold-idle is the default made explicit (clap refuses both at once).
    opts.hold_idle = args.hold_idle && !args.no_hold_idle;
    // Opened before the run, so a bad --out fails before anything is measured.
    let out = match args.out.as_deref().map(OutDir::open) {
        None => None,
        Some(Ok(out)) => Some(out),
        // A usage error, like a bad flag.
        Some(Err(e)) => {
            let dir = args.out.unwrap_or_default();
            eprintln!(
                "lockfair-client: cannot write the timeline to {}: {e}",
                dir.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let report = run(&opts)?;
    if args.json {
        println(serde_json::to_string_pretty(&report.to_json())?)?;
    } else {
        print(terminal::run_text(&report, args.wide))?;
        print(kernel::run_kernel_text(&report))?;
    }
    if let (Some(dir), Some(k)) = (&out, report.kernel.as_ref().and_then(|k| k.run())) {
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
    print(report.to_text())?;
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
    let counts = contender_counts(&args.contenders);
    let sweep = counts.len() > 1;
    let largest = counts.iter().copied().max().unwrap_or(2);
    let opts = CompareOptions {
        variants: args.variants,
        placements: args.placements,
        shape: args
            .shape
            .with_length(largest, args.rounds, args.max_seconds, sweep),
        sweep: if sweep {
            counts.iter().map(|&n| n.into()).collect()
        } else {
            Vec::new()
        },
        repeats: args.repeats as usize,
        server_bin: args.server_bin,
        command: command_line(),
        kernel_trace: args.kernel_trace,
        hold_idle: args.hold_idle && !args.no_hold_idle,
    };
    // A per-contender list cannot fit every count of a sweep: say so before measuring.
    if let Err(e) = opts.sweep_fits() {
        eprintln!("lockfair-client: {e}");
        return Ok(ExitCode::from(2));
    }
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
        write_timeline(
            dir.out_dir(),
            &timeline_file_name(*variant, *placement),
            &svg,
        )?;
    }
    if args.crash && !outcome.interrupted {
        outcome.report.holder_death = Some(holder_death(&opts.variants)?);
    }
    // Once more, now that the timelines and the holder death are there for report.html.
    dir.update(&outcome.report)?;
    if args.json {
        println(lockfair::report::json::to_json(&outcome.report)?)?;
    } else {
        print(terminal::compare_text(&outcome.report, args.wide))?;
        print(kernel::compare_kernel_text(&outcome.report))?;
        if let Some(deaths) = &outcome.report.holder_death {
            print(format!("\nWhen the holder dies:\n{}", deaths.to_text()))?;
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

/// `--contenders`' counts in the order given, each once.
fn contender_counts(given: &[u16]) -> Vec<u16> {
    let mut counts = Vec::new();
    for &n in given {
        if !counts.contains(&n) {
            counts.push(n);
        }
    }
    counts
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
        print(crash::markdown(&opts, &cost, &command_line())?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (json, text) = if args.stop {
        let report = crash::stop::stop(&opts, |c| eprintln!("{}: done", c.variant))?;
        if let Some(out) = &args.out {
            write_stop(out, &report)?;
        }
        (report.to_json(), report.to_text())
    } else if args.overhead {
        let report = overhead::overhead(&cost, |_| {})?;
        (report.to_json(), report.to_text())
    } else {
        let report = crash::crash(&opts, |c| {
            eprintln!("{} ({}): done", c.variant, c.holder_description.name())
        })?;
        (report.to_json(), report.to_text())
    };
    if args.json {
        println(json)?;
    } else {
        print(text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `crash --stop --out DIR`: the run's JSON and its Markdown table, side by side.
fn write_stop(
    out: &std::path::Path,
    report: &lockfair::crash::stop::StopReport,
) -> anyhow::Result<()> {
    let dir = OutDir::open(out).with_context(|| format!("cannot write into {}", out.display()))?;
    dir.write("stop.json", report.to_json().as_bytes())
        .context("cannot write stop.json")?;
    dir.write("stop.md", report.to_markdown().as_bytes())
        .context("cannot write stop.md")?;
    Ok(())
}

fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    use lockfair::experiment::demo::{DemoOptions, demo};
    use lockfair::report::demo as show;
    let out = args.out.unwrap_or_else(|| {
        let mut dir = compare::default_out_dir().into_os_string();
        dir.push("-demo");
        PathBuf::from(dir)
    });
    // Opened first: a bad folder fails before two minutes of measuring.
    let dir = match OutDir::open(&out) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!(
                "lockfair-client: cannot write the demo to {}: {e}",
                out.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let opts = DemoOptions {
        server_bin: args.server_bin,
        helper: std::env::current_exe().context("cannot find this executable")?,
        repeats: args.repeats as usize,
        command: command_line(),
    };
    let mut n = 0;
    let report = demo(&opts, |step| {
        n += 1;
        let text = show::step_text(n, step);
        if args.json {
            eprint!("{text}");
        } else {
            // A reader gone mid-demo stops nothing here; main ends quietly after.
            let _ = print(text);
        }
    })?;
    dir.write("demo.json", show::to_json(&report)?.as_bytes())?;
    dir.write("demo.md", show::to_markdown(&report).as_bytes())?;
    dir.write("report.html", show::to_html(&report).as_bytes())?;
    if args.json {
        println(show::to_json(&report)?)?;
    } else {
        print(show::ending_text(&report))?;
    }
    eprintln!("report written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes one timeline picture into `dir`.
fn write_timeline(dir: &OutDir, name: &str, svg: &str) -> anyhow::Result<()> {
    let path = dir.path().join(name);
    dir.write(name, svg.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("timeline written to {}", path.display());
    Ok(())
}

/// lockfair-client.1 and a page per visible subcommand, and lockfair-server.1 (its command line
/// lives in the library for this), each path printed as written, in name order.
fn write_man_pages(out: &std::path::Path) -> anyhow::Result<()> {
    let dir = OutDir::open(out)?;
    let mut pages = man_pages(Cli::command())?;
    pages.extend(man_pages(lockfair::server::args::ServerArgs::command())?);
    pages.sort();
    for (name, roff) in pages {
        dir.write(&name, &roff)?;
        println(format!("{}", out.join(name).display()))?;
    }
    Ok(())
}

/// The pages `clap_mangen::generate_to` would write for `cmd` (its file name and roff), rendered
/// in memory so that they are written through an [`OutDir`] rather than `File::create`.
fn man_pages(cmd: clap::Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn add(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            add(sub, pages)?;
        }
        let man = clap_mangen::Man::new(cmd.clone());
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        pages.push((man.get_filename(), roff));
        Ok(())
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    add(&cmd, &mut pages)?;
    Ok(pages)
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
