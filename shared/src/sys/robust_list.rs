//! The calling thread's robust futex list (`set_robust_list(2)`), kept in the thread's private
//! memory with room for one entry.
//!
//! At a thread's exit the kernel walks the list it registered (`exit_robust_list` in
//! kernel/futex/core.c): for each entry it finds the futex word at `entry + futex_offset`, and if
//! the word names the dying thread it sets `FUTEX_OWNER_DIED` and wakes a waiter. glibc keeps its
//! list inside the `pthread_mutex_t` itself, so a process that can write the mutex can make the
//! owner's next unlock follow pointers of its choice. Here the head and the entry live in this
//! thread's thread-local storage; the shared word is named only by an offset, and nothing in
//! shared memory is ever followed as a pointer, by us or by the kernel.
//!
//! One entry is enough: a thread holds at most one [`super::robust_mutex::RobustMutex`] at a
//! time. While ours is registered, glibc's own list for the thread is not (the kernel keeps one
//! head per thread); the previous head is restored when the thread's registration is dropped.

use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::libc;

/// `struct robust_list_head` followed by our one `struct robust_list` entry.
#[repr(C)]
struct Registration {
    /// `head.list.next`: the first entry, or the head's own address when the list is empty.
    list_next: AtomicUsize,
    /// `head.futex_offset`: the futex word is at `entry + futex_offset`.
    futex_offset: AtomicIsize,
    /// `head.list_op_pending`: the entry being locked or unlocked right now.
    list_op_pending: AtomicUsize,
    /// The entry's `next`: back to the head (a list of one).
    entry_next: AtomicUsize,
    /// The head registered before ours (glibc's), as `(address, length)`, once we replaced it.
    previous: Cell<Option<(usize, usize)>>,
}

/// The kernel's `sizeof(struct robust_list_head)`: `set_robust_list` refuses any other length.
const HEAD_LEN: usize = 3 * size_of::<usize>();

thread_local! {
    static REGISTRATION: Registration = const {
        Registration {
            list_next: AtomicUsize::new(0),
            futex_offset: AtomicIsize::new(0),
            list_op_pending: AtomicUsize::new(0),
            entry_next: AtomicUsize::new(0),
            previous: Cell::new(None),
        }
    };
}

impl Registration {
    fn head(&self) -> usize {
        std::ptr::from_ref(&self.list_next) as usize
    }

    fn entry(&self) -> usize {
        std::ptr::from_ref(&self.entry_next) as usize
    }

    /// Registers this head with the kernel unless it is the one registered already.
    fn ensure(&self) -> Result<(), Errno> {
        let (current, len) = get_robust_list()?;
        if current == self.head() {
            return Ok(());
        }
        if self.list_next.load(Ordering::Relaxed) == 0 {
            self.list_next.store(self.head(), Ordering::Relaxed);
        }
        set_robust_list(self.head())?;
        if self.previous.get().is_none() {
            self.previous.set(Some((current, len)));
        }
        Ok(())
    }

    fn holding(&self) -> bool {
        self.list_next.load(Ordering::Relaxed) == self.entry()
    }

    /// The entry names `word` and is pending: a death from here on marks `word` if it holds
    /// our TID.
    fn begin(&self, word: &AtomicU32) {
        let offset = (std::ptr::from_ref(word) as isize).wrapping_sub(self.entry() as isize);
        self.futex_offset.store(offset, Ordering::Relaxed);
        self.list_op_pending.store(self.entry(), Ordering::SeqCst);
    }

    fn names(&self, word: &AtomicU32) -> bool {
        let at = (self.entry() as isize).wrapping_add(self.futex_offset.load(Ordering::Relaxed));
        at as usize == std::ptr::from_ref(word) as usize
    }

    fn link(&self) {
        self.entry_next.store(self.head(), Ordering::Relaxed);
        self.list_next.store(self.entry(), Ordering::SeqCst);
        self.list_op_pending.store(0, Ordering::SeqCst);
    }

    fn unlink(&self) {
        self.list_next.store(self.head(), Ordering::SeqCst);
    }

    fn settle(&self) {
        self.list_op_pending.store(0, Ordering::SeqCst);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A thread that exits holding its lock keeps our head registered, so that the kernel
        // still marks the word when the thread is gone (the storage outlives this destructor
        // until the thread has exited).
        if self.holding() {
            return;
        }
        if let (Some((previous, _)), Ok((current, _))) = (self.previous.get(), get_robust_list())
            && current == self.head()
        {
            let _ = set_robust_list(previous);
        }
    }
}

/// The calling thread's robust-list slot for one lock.
#[derive(Debug, Clone, Copy)]
pub struct RobustSlot {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Runs `f` on this thread's registration; `ESRCH` once the thread is being torn down.
fn with<T>(f: impl FnOnce(&Registration) -> T) -> Result<T, Errno> {
    REGISTRATION.try_with(f).map_err(|_| Errno::ESRCH)
}

impl RobustSlot {
    /// Registers this thread's list with the kernel (once per thread; a no-op after that).
    pub fn for_this_thread() -> Result<RobustSlot, Errno> {
        with(Registration::ensure)??;
        Ok(RobustSlot {
            _not_send: std::marker::PhantomData,
        })
    }

    /// True while the entry is linked: this thread holds a lock through it.
    pub fn holding(&self) -> bool {
        with(Registration::holding).unwrap_or(false)
    }

    /// True if the entry names `word`.
    pub fn names(&self, word: &AtomicU32) -> bool {
        with(|r| r.names(word)).unwrap_or(false)
    }

    /// Before trying to take `word`: marks the operation pending.
    pub fn begin_lock(&self, word: &AtomicU32) {
        let _ = with(|r| r.begin(word));
    }

    /// After `word` was taken: the entry joins the list, nothing is pending.
    pub fn locked(&self) {
        let _ = with(Registration::link);
    }

    /// Before releasing the word the entry names: pending again, off the list.
    pub fn begin_unlock(&self) {
        let _ = with(|r| {
            r.list_op_pending.store(r.entry(), Ordering::SeqCst);
            r.unlink();
        });
    }

    /// After a lock attempt failed or an unlock finished: nothing pending.
    pub fn settle(&self) {
        let _ = with(Registration::settle);
    }
}

/// The calling thread's registered robust-list head and its length.
fn get_robust_list() -> Result<(usize, usize), Errno> {
    let mut head: usize = 0;
    let mut len: usize = 0;
    // SAFETY: pid 0 is the calling thread; the kernel writes one pointer into `head` and one
    // size into `len`, both valid and writable for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0 as libc::c_int,
            &mut head as *mut usize,
            &mut len as *mut usize,
        )
    };
    Errno::result(rc).map(|_| (head, len))
}

/// Makes `head` the calling thread's robust-list head.
fn set_robust_list(head: usize) -> Result<(), Errno> {
    // SAFETY: the kernel stores the address and reads it only at this thread's exit or exec, with
    // `get_user` (a bad address ends the walk, it never faults us). `head` is either this
    // thread's own `Registration`, which stays registered only while its storage lives, or the
    // head that was registered before it.
    let rc = unsafe { libc::syscall(libc::SYS_set_robust_list, head, HEAD_LEN) };
    Errno::result(rc).map(drop)
}
