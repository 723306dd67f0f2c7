//! `lockfair-server`'s command line. It lives in the library, not the binary, so that
//! `lockfair-client man` can write the server's man page from the same definition the server
//! parses; the binary still only parses it and calls [`serve`](super::serve).

use std::path::PathBuf;

use clap::Parser;

use super::ServerConfig;
use crate::admission::Limits;
use crate::compat::{DEFAULT_SESSION_SECONDS, DEFAULT_TURNS, MAX_TURNS, SeedCompat};
use crate::runtime_dir::default_socket_path;

/// Serve lockfair sessions: receive the client's sealed memfd over a Unix datagram socket
/// (SCM_RIGHTS), play the writer, and report this side's measurements.
#[derive(Debug, Parser)]
#[command(name = "lockfair-server", version)]
pub struct ServerArgs {
    /// Socket path [default: $XDG_RUNTIME_DIR/lockfair/server.sock, else /tmp/lockfair-<uid>/server.sock]
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Most sessions running at once; more get an `error` reply
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_sessions: u16,
    /// Most sessions one uid may run at once, ours included [default: --max-sessions for our own uid, a quarter of it, rounded up, for each --allow-uid]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_sessions_per_uid: Option<u16>,
    /// Also accept sessions from this uid (repeatable); by default only our own uid
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,
    /// Longest session a client may ask for, in seconds
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_session_seconds: u64,
    /// How long a session waits for its client at the start line, in seconds
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub peer_timeout: u64,
    /// Print a line for every refused datagram
    #[arg(long)]
    pub verbose: bool,
    /// Exit when the process with this pid exits (used by `lockfair-client compare`)
    #[arg(long, value_name = "PID", hide = true)]
    pub exit_with: Option<i32>,
    /// Also play the seed blog's server for its unchanged client: a bare `CACHEDFILE HELLO` with one sealed memfd
    #[arg(long)]
    pub seed_compat: bool,
    /// Turns of each --seed-compat session (the blog's 100); whoops do not count
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TURNS, requires = "seed_compat",
          value_parser = clap::value_parser!(u64).range(1..=MAX_TURNS))]
    pub seed_iterations: u64,
    /// Longest --seed-compat session, in seconds: the blog's client never gives up, so the server does
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SESSION_SECONDS, requires = "seed_compat",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seed_max_seconds: u64,
    /// Print the hash of the sources this binary was built from, and exit
    #[arg(long, hide = true)]
    pub build_id: bool,
}

impl ServerArgs {
    /// The server's configuration from these arguments.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            socket: self.socket.clone().unwrap_or_else(default_socket_path),
            private_dir: self.socket.is_none(),
            max_sessions: self.max_sessions.into(),
            max_sessions_per_uid: self.max_sessions_per_uid.map(usize::from),
            allow_uids: self.allow_uids.clone(),
            limits: Limits {
                max_ms: self.max_session_seconds * 1000,
                start_timeout_ms: self.peer_timeout * 1000,
                ..Limits::default()
            },
            verbose: self.verbose,
            exit_with: self.exit_with,
            seed_compat: self.seed_compat.then_some(SeedCompat {
                turns: self.seed_iterations,
                max_seconds: self.seed_max_seconds,
            }),
        }
    }
}
