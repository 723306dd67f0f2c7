//! The server's closer: one thread that closes what refused datagrams carried.
//!
//! Closing a descriptor can wait on whoever serves the file (a FUSE mount's daemon answers the
//! close's flush), and any sender can pass such a descriptor. Closed on the receive loop, one slow
//! close would stop the server answering; closed on tokio's blocking pool, many would take the
//! threads the sessions' round loops need. So the receive loop hands them to this one thread and
//! goes on; a slow close holds up only the closes queued behind it.
//!
//! What waits in the queue needs no bound of its own: the descriptors are open in this process,
//! so they count against its `RLIMIT_NOFILE`. When the table is full, the kernel installs no
//! more of a datagram's descriptors and drops the rest (`MSG_CTRUNC`), which is already a
//! refusal (`Refusal::TooManyFds`); the queue holds one small `Vec` per datagram beside them.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

/// The thread's name, as `/proc/<pid>/task/*/comm` shows it (15 characters fit).
pub(super) const THREAD_NAME: &str = "lockfair-closer";

/// The receive loop's end: hands things over to be dropped (closed) on the closer thread.
/// Generic so that a test can hand over something whose drop is slow.
#[derive(Debug)]
pub(super) struct Closer<T: Send + 'static = Vec<OwnedFd>> {
    /// `None` once the server stops: the thread then ends when the queue is empty.
    queue: Mutex<Option<Sender<T>>>,
}

/// The thread itself, for the end of `serve`.
#[derive(Debug)]
pub(super) struct CloserThread {
    handle: JoinHandle<()>,
    /// Resolves (sent, or dropped by a panic) when the thread has left its loop.
    done: oneshot::Receiver<()>,
}

impl<T: Send + 'static> Closer<T> {
    /// Starts the thread.
    pub(super) fn start() -> io::Result<(Closer<T>, CloserThread)> {
        let (queue, items) = channel::<T>();
        let (finished, done) = oneshot::channel();
        let handle = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                // Ends when every sender is gone and the queue is empty.
                for item in items {
                    drop(item);
                }
                let _ = finished.send(());
            })?;
        let closer = Closer {
            queue: Mutex::new(Some(queue)),
        };
        Ok((closer, CloserThread { handle, done }))
    }

    /// Queues `item` to be dropped on the closer thread; never waits for the drop.
    pub(super) fn close(&self, item: T) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let unsent = match &*queue {
            Some(q) => q.send(item).err().map(|e| e.0),
            None => Some(item),
        };
        drop(queue);
        // Only after `stop` (the receive loop has ended) or if the thread died is nothing
        // queued: then the caller drops it, which beats keeping it open.
        drop(unsent);
    }

    /// Lets the thread end once it has closed what is queued.
    pub(super) fn stop(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Closer<Vec<OwnedFd>> {
    /// Queues a datagram's descriptors, if it carried any.
    pub(super) fn discard(&self, fds: Vec<OwnedFd>) {
        if !fds.is_empty() {
            self.close(fds);
        }
    }
}

impl CloserThread {
    /// Waits up to `within` for the thread to close what is queued (after [`Closer::stop`]) and
    /// joins it; true if it did. A close still stuck then is left to the thread, which the
    /// process's exit ends: a peer's slow close must not hold the server's shutdown.
    pub(super) async fn finish(self, within: Duration) -> bool {
        match tokio::time::timeout(within, self.done).await {
            Ok(_) => {
                let _ = self.handle.join();
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc::Receiver;

    /// How long a test waits for what must happen.
    const HANG: Duration = Duration::from_secs(60);

    /// Something whose drop counts itself and records the thread it ran on; the gated one
    /// waits for the test to open its gate first, as a close on a stuck mount waits.
    struct Item {
        dropped: Arc<AtomicUsize>,
        threads: Arc<Mutex<Vec<String>>>,
        gate: Option<Receiver<()>>,
    }

    impl Drop for Item {
        fn drop(&mut self) {
            if let Some(gate) = &self.gate {
                let _ = gate.recv_timeout(HANG);
            }
            let name = std::thread::current().name().unwrap_or("").to_string();
            self.threads.lock().unwrap().push(name);
            self.dropped.fetch_add(1, SeqCst);
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_slow_close_never_holds_up_the_caller_and_everything_is_closed_on_the_thread() {
        let (closer, thread) = Closer::<Item>::start().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let item = |gate| Item {
            dropped: dropped.clone(),
            threads: threads.clone(),
            gate,
        };
        let (open, gate) = channel();
        closer.close(item(Some(gate)));
        // The first close is stuck; the caller still hands over a hundred more at once.
        for _ in 0..100 {
            closer.close(item(None));
        }
        assert_eq!(dropped.load(SeqCst), 0, "all wait behind the stuck close");
        open.send(()).unwrap();
        closer.stop();
        assert!(runtime().block_on(thread.finish(HANG)), "the thread ends");
        assert_eq!(dropped.load(SeqCst), 101);
        let names = threads.lock().unwrap().clone();
        assert!(names.iter().all(|t| t == THREAD_NAME), "{names:?}");
        // After `stop` the caller closes by itself.
        closer.close(item(None));
        assert_eq!(dropped.load(SeqCst), 102);
    }

    #[test]
    fn a_close_stuck_at_shutdown_is_left_to_the_thread() {
        let (closer, thread) = Closer::<Item>::start().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let (open, gate) = channel();
        closer.close(Item {
            dropped: dropped.clone(),
            threads: Arc::default(),
            gate: Some(gate),
        });
        closer.stop();
        let rt = runtime();
        assert!(!rt.block_on(thread.finish(Duration::from_millis(50))));
        // Released, the detached thread still closes it.
        open.send(()).unwrap();
        let give_up = std::time::Instant::now() + HANG;
        while dropped.load(SeqCst) == 0 {
            assert!(std::time::Instant::now() < give_up, "never closed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn descriptors_are_closed() {
        let (closer, thread) = Closer::start().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        closer.discard(vec![w]);
        closer.discard(Vec::new());
        closer.stop();
        assert!(runtime().block_on(thread.finish(HANG)));
        // The write end is closed: the read end sees end of file.
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf), Ok(0));
    }
}
