//! One client's session on the server: check the hello and its descriptors, then run the server's
//! side (the writer) on a blocking thread.

use std::os::fd::OwnedFd;

use crate::arena::{Arena, MAX_CONTENDERS};
use crate::placement::format_cpus;
use crate::proto::Hello;
use crate::session::{Plan, SideSpec};

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

/// Checks every field of a hello against the limits and this machine. Returns the reason for
/// the `error` reply.
pub fn check_hello(hello: &Hello, limits: &Limits, allowed_cpus: &[usize]) -> Result<(), String> {
    let contenders = hello.contenders as usize;
    if !(2..=MAX_CONTENDERS).contains(&contenders) {
        return Err(format!(
            "contenders must be between 2 and {MAX_CONTENDERS}, got {contenders}"
        ));
    }
    if hello.contender as usize >= contenders {
        return Err(format!(
            "contender index {} is out of range for {contenders} contenders",
            hello.contender
        ));
    }
    if !(1..=limits.max_rounds).contains(&hello.rounds) {
        return Err(format!(
            "rounds must be between 1 and {}, got {}",
            limits.max_rounds, hello.rounds
        ));
    }
    if !(1..=limits.max_ms).contains(&hello.max_ms) {
        return Err(format!(
            "max time must be between 1 ms and {} ms, got {} ms",
            limits.max_ms, hello.max_ms
        ));
    }
    if hello.spin > crate::variant::MAX_SPIN {
        return Err(format!(
            "spin must be at most {}, got {}",
            crate::variant::MAX_SPIN,
            hello.spin
        ));
    }
    if let Some(cpu) = hello.cpu
        && !allowed_cpus.contains(&(cpu as usize))
    {
        return Err(format!(
            "CPU {cpu} is not allowed for the server (allowed: {})",
            format_cpus(allowed_cpus)
        ));
    }
    hello
        .variant
        .supports(hello.mode, contenders)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Takes the received descriptors apart: the arena (checked, mapped) and the variant's own
/// (count and kinds checked). Every descriptor is closed on every error path by being dropped.
pub fn adopt(hello: &Hello, mut fds: Vec<OwnedFd>) -> Result<(Arena, Vec<OwnedFd>), String> {
    let want = 1 + hello.variant.expected_fds(hello.mode).len();
    if fds.len() != want {
        return Err(format!(
            "a {} hello must carry exactly {want} descriptor(s) (the arena memfd first), got {}",
            hello.variant,
            fds.len()
        ));
    }
    let rest = fds.split_off(1);
    let arena_fd = fds.pop().ok_or("no arena descriptor")?;
    hello
        .variant
        .check_fds(hello.mode, &rest)
        .map_err(|e| e.to_string())?;
    let arena = Arena::adopt(
        arena_fd,
        hello.contenders as u32,
        !hello.variant.shares_description(),
    )
    .map_err(|e| e.to_string())?;
    Ok((arena, rest))
}

/// The server side's spec for a checked hello.
pub fn side_spec(hello: &Hello, limits: &Limits, peer_pid: Option<i32>) -> SideSpec {
    SideSpec {
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
        },
        peer_pids: peer_pid.into_iter().collect(),
        grace_ns: limits.grace_ms * 1_000_000,
    }
}
