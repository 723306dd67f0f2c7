//! Interrupting a thread that sleeps in a blocking syscall.
//!
//! A lock waiter in `F_SETLKW`, a futex sleeper or an eventfd reader cannot notice by itself that
//! its peer died. The session's watchdog sends [`INTERRUPT`] to the session thread; the handler
//! does nothing but is installed without `SA_RESTART`, so the syscall returns `EINTR` and the round
//! loop re-checks its abort flag.
//!
//! SIGINT and SIGTERM get a handler that records the request in [`stop_requested`], so a Ctrl-C
//! stops the work cleanly (the blocking call returns `EINTR`) instead of killing the process with
//! files half written and children left behind.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The signal the watchdog uses to kick a thread out of a blocking syscall.
pub const INTERRUPT: Signal = Signal::SIGUSR2;

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn ignore(_: nix::libc::c_int) {}

extern "C" fn record_stop(_: nix::libc::c_int) {
    // An atomic store is async-signal-safe.
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

fn install(signal: Signal, handler: extern "C" fn(nix::libc::c_int)) {
    // No SA_RESTART: blocking syscalls must return EINTR so the caller can look at its flags.
    let action = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: both handlers only touch an atomic, which is async-signal-safe; replacing the
    // default disposition of these signals has no other effect on the program.
    let _ = unsafe { sigaction(signal, &action) };
}

/// Installs the no-op [`INTERRUPT`] handler (once per process).
pub fn install_interrupt_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| install(INTERRUPT, ignore));
}

/// Makes SIGINT and SIGTERM set [`stop_requested`] instead of killing the process.
pub fn install_stop_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install(Signal::SIGINT, record_stop);
        install(Signal::SIGTERM, record_stop);
    });
}

/// True once SIGINT or SIGTERM arrived (after [`install_stop_handler`]).
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// The calling thread's handle, for [`interrupt`].
pub fn current_thread() -> Pthread {
    pthread_self()
}

/// Sends [`INTERRUPT`] to `thread`, which must still be running (the watchdog guarantees it by
/// being joined before the session thread returns).
pub fn interrupt(thread: Pthread) -> Result<(), Errno> {
    pthread_kill(thread, INTERRUPT)
}
