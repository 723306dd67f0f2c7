//! `lockfair-server`: receives sealed arenas over a Unix datagram socket and plays the writer.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use lockfair::server::args::ServerArgs;
use lockfair::server::{say, serve};

fn main() -> ExitCode {
    match run(ServerArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockfair-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ServerArgs) -> anyhow::Result<()> {
    if args.build_id {
        println!("{}", lockfair::BUILD_ID);
        return Ok(());
    }
    let config = args.config();
    let compat_turns = config.seed_compat.as_ref().map(|c| c.turns);
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
        say(&format!("listening on {}", bound.path().display()));
        if let Some(n) = compat_turns {
            say(&format!(
                "--seed-compat: a bare CACHEDFILE HELLO gets the blog's server, {n} turns"
            ));
        }
    }))?;
    Ok(())
}
