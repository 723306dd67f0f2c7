//! Running another program with a deadline: `Command::output` waits forever, and a tool that
//! hangs (or a child that never exits) must not take lockfair with it.

use std::io::Read;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to completion, collecting stdout and stderr (on threads, so a chatty child
/// cannot block on a full pipe). Kills it and returns `Ok(None)` if it outlives `timeout`.
pub fn output_within(command: &mut Command, timeout: Duration) -> std::io::Result<Option<Output>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = match wait_within(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
    };
    Ok(Some(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }))
}

/// Waits up to `timeout` for `child` to exit: asleep on a pidfd, so that waiting wakes nothing
/// (a `bench` yardstick's timing must not share its CPUs with a poll loop; one every 2 ms made
/// the C ping-pong's cross-CPU wakeups measurably faster, keeping the vCPUs from going idle).
pub fn wait_within(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let give_up = Instant::now() + timeout;
    let pidfd = crate::sys::pidfd::open(child.id() as i32).ok();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match &pidfd {
            // Readable once the child has exited; EINTR or a timeout just go round again.
            Some(fd) => {
                let _ = crate::sys::poll::readable_within(fd, left);
            }
            // No pidfd (the child is already gone, or a kernel without pidfd_open).
            None => std::thread::sleep(left.min(Duration::from_millis(2))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_exits_is_reaped_with_its_output() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        )
        .unwrap()
        .expect("finished");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_child_past_its_timeout_is_killed_and_reaped() {
        let started = Instant::now();
        let out =
            output_within(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(out.is_none());
        // Killed, not waited out (30 s); generous for a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
