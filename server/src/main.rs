//! `lockfair-server`: receives sealed arenas over a Unix datagram socket and plays the writer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use lockfair::admission::Limits;
use lockfair::compat::{DEFAULT_ITERATIONS, MAX_ITERATIONS, SeedCompat};
use lockfair::runtime_dir::default_socket_path;
use lockfair::server::{ServerConfig, serve};

/// Serve lockfair sessions: receive the client's sealed memfd over a Unix datagram socket
/// (SCM_RIGHTS), play the writer, and report this side's measurements.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Socket path [default: $XDG_RUNTIME_DIR/lockfair/server.sock, else /tmp/lockfair-<uid>/server.sock]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Most sessions running at once; more get an `error` reply
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_sessions: u16,
    /// Also accept sessions from this uid (repeatable); by default only our own uid
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uids: Vec<u32>,
    /// Longest session a client may ask for, in seconds
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_session_seconds: u64,
    /// How long a session waits for its client at the start line, in seconds
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    peer_timeout: u64,
    /// Print a line for every refused datagram
    #[arg(long)]
    verbose: bool,
    /// Exit when the process with this pid exits (used by `lockfair-client compare`)
    #[arg(long, value_name = "PID", hide = true)]
    exit_with: Option<i32>,
    /// Also play the seed blog's server for its unchanged client: a bare `CACHEDFILE HELLO` with one sealed memfd
    #[arg(long)]
    seed_compat: bool,
    /// Iterations of each --seed-compat session (the blog's 100)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ITERATIONS, requires = "seed_compat",
          value_parser = clap::value_parser!(u64).range(1..=MAX_ITERATIONS))]
    seed_iterations: u64,
    /// Print the hash of the sources this binary was built from, and exit
    #[arg(long, hide = true)]
    build_id: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockfair-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.build_id {
        println!("{}", lockfair::BUILD_ID);
        return Ok(());
    }
    let private_dir = args.socket.is_none();
    let config = ServerConfig {
        socket: args.socket.unwrap_or_else(default_socket_path),
        private_dir,
        max_sessions: args.max_sessions.into(),
        allow_uids: args.allow_uids,
        limits: Limits {
            max_ms: args.max_session_seconds * 1000,
            start_timeout_ms: args.peer_timeout * 1000,
            ..Limits::default()
        },
        verbose: args.verbose,
        exit_with: args.exit_with,
        seed_compat: args.seed_compat.then_some(SeedCompat {
            iterations: args.seed_iterations,
        }),
    };
    let compat_iterations = config.seed_compat.as_ref().map(|c| c.iterations);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Every session holds a blocking thread for its whole run: never queue one behind others.
        .max_blocking_threads(usize::from(args.max_sessions) + 64)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, |bound| {
        if let Some(w) = &bound.warning {
            eprintln!("lockfair-server: {w}");
        }
        println!("listening on {}", bound.path().display());
        if let Some(n) = compat_iterations {
            println!(
                "--seed-compat: a bare CACHEDFILE HELLO gets the blog's server, {n} iterations"
            );
        }
    }))?;
    Ok(())
}
