//! `--nice`: the session thread's nice value for one run, and back afterwards.

use nix::errno::Errno;

use super::SessionError;
use crate::sys::priority::{set_thread_nice, thread_nice};

/// The calling thread at the nice value asked for, until dropped: then back where it was, if the
/// thread may (going back down needs CAP_SYS_NICE; without it the thread keeps the value).
#[derive(Debug)]
pub(super) struct NiceGuard {
    before: Option<i32>,
    /// The value read back once set (what the run reports).
    pub now: i32,
}

impl NiceGuard {
    /// Applies `nice` to the calling thread (`None`: leaves it as it is).
    pub fn apply(nice: Option<i32>) -> Result<NiceGuard, SessionError> {
        let read = |errno| SessionError::Sys {
            what: "read the thread's nice value",
            errno,
        };
        let before = thread_nice().map_err(read)?;
        let Some(nice) = nice.filter(|&n| n != before) else {
            return Ok(NiceGuard {
                before: None,
                now: before,
            });
        };
        set_thread_nice(nice).map_err(|errno| match errno {
            Errno::EACCES | Errno::EPERM => SessionError::Nice(nice),
            errno => SessionError::Sys {
                what: "set the thread's nice value",
                errno,
            },
        })?;
        Ok(NiceGuard {
            before: Some(before),
            now: thread_nice().map_err(read)?,
        })
    }
}

impl Drop for NiceGuard {
    fn drop(&mut self) {
        if let Some(before) = self.before {
            let _ = set_thread_nice(before);
        }
    }
}
