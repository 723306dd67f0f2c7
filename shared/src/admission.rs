//! Admitting a session: who may ask, what a hello may ask for, and taking its descriptors apart.
//!
//! The server, its `--seed-compat` sessions and the client's helper contenders all admit with these
//! same checks, so a peer is refused with the same words whichever of them it talks to. The
//! refusal texts are what peers read in their `error` reply: they name what was wrong and what to
//! do.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use thiserror::Error;

use crate::arena::{Arena, ArenaError, MAX_CONTENDERS};
use crate::placement::format_cpus;
use crate::proto::{DecodeError, Hello, MAX_DATAGRAM, version_mismatch};
use crate::session::{ContenderSpec, Plan};
use crate::sys::scm::Credentials;
use crate::variant::{SetupError, Variant};

/// What the server allows a session to ask for.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_rounds: u64,
    pub max_ms: u64,
    /// How long a session waits for its peer at the start line.
    pub start_timeout_ms: u64,
    /// How long past its time limit a session may run before it is declared stuck.
    pub grace_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rounds: 1_000_000_000,
            max_ms: 600_000,
            start_timeout_ms: 5_000,
            grace_ms: 5_000,
        }
    }
}

/// Why a datagram does not start a session. The text is the peer's `error` reply.
#[derive(Debug, Error)]
pub enum Refusal {
    #[error("no credentials arrived with the datagram")]
    NoCredentials,
    #[error(
        "uid {uid} may not use this server (it runs as uid {ours}); start it with --allow-uid {uid}"
    )]
    Uid { uid: u32, ours: u32 },
    #[error("datagram larger than {MAX_DATAGRAM} bytes")]
    TooLarge,
    #[error("too many descriptors: ancillary data truncated (at most {max} fit)")]
    TooManyFds { max: usize },
    #[error(transparent)]
    Decode(DecodeError),
    /// The client's protocol version.
    #[error("{}", version_mismatch("this server", "the client", *.0))]
    Version(u16),
    #[error(transparent)]
    Hello(#[from] HelloError),
    #[error("server busy: {0} sessions running (--max-sessions); try again later")]
    Busy(usize),
    #[error(
        "uid {uid} already runs {quota} {} (its quota; --max-sessions-per-uid); try again later",
        if *.quota == 1 { "session" } else { "sessions" }
    )]
    Quota { uid: u32, quota: usize },
    #[error("server out of resources (eventfd)")]
    OutOfResources(#[source] Errno),
    #[error("the sender exited before its session could start")]
    SenderGone(#[source] Errno),
}

impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Version { got, .. } => Refusal::Version(got),
            other => Refusal::Decode(other),
        }
    }
}

/// A hello field out of bounds, or a variant that cannot run as asked.
#[derive(Debug, Error)]
pub enum HelloError {
    #[error("contenders must be between 2 and {MAX_CONTENDERS}, got {0}")]
    Contenders(usize),
    #[error("contender index {index} is out of range for {contenders} contenders")]
    ContenderIndex { index: u16, contenders: usize },
    #[error("rounds must be between 1 and {max}, got {got}")]
    Rounds { max: u64, got: u64 },
    #[error("max time must be between 1 ms and {max} ms, got {got} ms")]
    MaxTime { max: u64, got: u64 },
    #[error("spin must be at most {max}, got {got}")]
    Spin { max: u32, got: u32 },
    #[error("{what} must be at most {max} ns, got {got} ns")]
    Busy {
        what: &'static str,
        max: u64,
        got: u64,
    },
    #[error("nice must be between -20 and 19, got {0}")]
    Nice(i8),
    #[error(
        "nice {nice} refused: only root may ask for a negative nice value (the sender is uid {uid})"
    )]
    NegativeNice { nice: i8, uid: u32 },
    #[error("CPU {cpu} is not allowed for the server (allowed: {allowed})")]
    Cpu { cpu: u16, allowed: String },
    #[error(transparent)]
    Unsupported(#[from] SetupError),
}

/// Why a hello's descriptors cannot be used.
#[derive(Debug, Error)]
pub enum AdoptError {
    #[error(
        "a {variant} hello must carry exactly {want} descriptor(s) (the arena memfd first), got {got}"
    )]
    FdCount {
        variant: Variant,
        want: usize,
        got: usize,
    },
    #[error(transparent)]
    Fds(SetupError),
    #[error(transparent)]
    Arena(#[from] ArenaError),
}

/// The sender's credentials, if its uid may start sessions here (ours, or one of `allowed`).
pub fn check_sender(
    credentials: Option<Credentials>,
    ours: u32,
    allowed: &[u32],
) -> Result<Credentials, Refusal> {
    let creds = credentials.ok_or(Refusal::NoCredentials)?;
    if creds.uid != ours && !allowed.contains(&creds.uid) {
        return Err(Refusal::Uid {
            uid: creds.uid,
            ours,
        });
    }
    Ok(creds)
}

/// Checks every field of a hello against the limits and this machine.
pub fn check_hello(
    hello: &Hello,
    limits: &Limits,
    allowed_cpus: &[usize],
) -> Result<(), HelloError> {
    let contenders = hello.contenders as usize;
    if !(2..=MAX_CONTENDERS).contains(&contenders) {
        return Err(HelloError::Contenders(contenders));
    }
    if hello.contender as usize >= contenders {
        return Err(HelloError::ContenderIndex {
            index: hello.contender,
            contenders,
        });
    }
    if !(1..=limits.max_rounds).contains(&hello.rounds) {
        return Err(HelloError::Rounds {
            max: limits.max_rounds,
            got: hello.rounds,
        });
    }
    if !(1..=limits.max_ms).contains(&hello.max_ms) {
        return Err(HelloError::MaxTime {
            max: limits.max_ms,
            got: hello.max_ms,
        });
    }
    if hello.spin > crate::variant::MAX_SPIN {
        return Err(HelloError::Spin {
            max: crate::variant::MAX_SPIN,
            got: hello.spin,
        });
    }
    check_busy_work(hello)?;
    if let Some(cpu) = hello.cpu
        && !allowed_cpus.contains(&(cpu as usize))
    {
        return Err(HelloError::Cpu {
            cpu,
            allowed: format_cpus(allowed_cpus),
        });
    }
    hello.variant.supports(hello.mode, contenders)?;
    Ok(())
}

/// The busy work and nice value of a hello, within bounds.
fn check_busy_work(hello: &Hello) -> Result<(), HelloError> {
    let max = crate::session::MAX_BUSY_NS;
    for (what, got) in [("hold", hello.hold_ns), ("think", hello.think_ns)] {
        if got > max {
            return Err(HelloError::Busy { what, max, got });
        }
    }
    match hello.nice {
        Some(n) if !crate::sys::priority::NICE_RANGE.contains(&i32::from(n)) => {
            Err(HelloError::Nice(n))
        }
        _ => Ok(()),
    }
}

/// A negative nice value (a priority above everyone else's) only for a root sender: a server
/// running as root must not lend its privilege to anyone it admits.
pub fn check_nice(hello: &Hello, sender_uid: u32) -> Result<(), HelloError> {
    match hello.nice {
        Some(nice) if nice < 0 && sender_uid != 0 => Err(HelloError::NegativeNice {
            nice,
            uid: sender_uid,
        }),
        _ => Ok(()),
    }
}

/// Takes the received descriptors apart: the arena (checked, mapped) and the variant's own
/// (count and kinds checked). Every descriptor is closed on every error path by being dropped.
pub fn adopt(hello: &Hello, fds: Vec<OwnedFd>) -> Result<(Arena, Vec<OwnedFd>), AdoptError> {
    let want = 1 + hello.variant.expected_fds(hello.mode).len();
    let count_error = |got| AdoptError::FdCount {
        variant: hello.variant,
        want,
        got,
    };
    if fds.len() != want {
        return Err(count_error(fds.len()));
    }
    let mut fds = fds.into_iter();
    let arena_fd = fds.next().ok_or(count_error(0))?;
    let rest: Vec<OwnedFd> = fds.collect();
    hello
        .variant
        .check_fds(hello.mode, &rest)
        .map_err(AdoptError::Fds)?;
    let arena = Arena::adopt(
        arena_fd,
        hello.contenders as u32,
        !hello.variant.shares_description(),
    )?;
    Ok((arena, rest))
}

/// The spec of the side that answers a checked hello.
pub fn contender_spec(hello: &Hello, limits: &Limits, peer_pid: Option<i32>) -> ContenderSpec {
    ContenderSpec {
        variant: hello.variant,
        mode: hello.mode,
        spin: hello.spin,
        plan: Plan {
            contender: hello.contender as usize,
            contenders: hello.contenders as usize,
            rounds: hello.rounds,
            max_ns: hello.max_ms * 1_000_000,
            start_timeout_ns: limits.start_timeout_ms * 1_000_000,
            cpu: hello.cpu.map(usize::from),
            hold_ns: hello.hold_ns,
            think_ns: hello.think_ns,
        },
        peer_pids: peer_pid.into_iter().collect(),
        grace_ns: limits.grace_ms * 1_000_000,
        nice: hello.nice.map(i32::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(uid: u32) -> Option<Credentials> {
        Some(Credentials {
            pid: 1,
            uid,
            gid: 0,
        })
    }

    #[test]
    fn only_our_uid_and_allowed_ones_are_admitted() {
        assert!(check_sender(creds(7), 7, &[]).is_ok());
        assert!(check_sender(creds(8), 7, &[8]).is_ok());
        let refused = check_sender(creds(9), 7, &[8]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "uid 9 may not use this server (it runs as uid 7); start it with --allow-uid 9"
        );
        assert!(matches!(
            check_sender(None, 7, &[]),
            Err(Refusal::NoCredentials)
        ));
    }
}
