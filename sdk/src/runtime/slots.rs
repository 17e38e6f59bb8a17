//! Task slots as the running task sees them, so it can give its slot back
//! while it waits on other tasks ([`crate::secede`]) and take one again
//! ([`crate::rejoin`]).
//!
//! Each call of a task function runs with a [`Running`] record in a
//! thread-local: which task, how it runs (on a task thread, inline on the
//! event loop, or as an async task), and whether it seceded. Setting it is a
//! thread-local write, nothing more, so it costs nothing on the hot path.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};

/// How a task function is being run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// On one of the worker's task threads.
    Thread,
    /// On the worker's event loop, because its calls are usually tiny.
    Inline,
    /// As an async task on the worker's runtime.
    Async,
}

/// The task running on this thread, as far as slots are concerned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    pub(crate) task: u64,
    pub(crate) func: &'static str,
    pub(crate) kind: Kind,
    /// It gave its slot back and has not taken one again.
    pub(crate) seceded: bool,
    /// An async task rejoined: it waits for a slot before it is polled again.
    pub(crate) rejoining: bool,
}

impl Running {
    pub(crate) fn new(task: u64, func: &'static str, kind: Kind) -> Running {
        Running { task, func, kind, seceded: false, rejoining: false }
    }
}

thread_local! {
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

/// Makes `state` the running task of this thread until dropped; then writes
/// what the task did (seceded, rejoined) back into `state`.
pub(crate) struct Entered<'a> {
    state: &'a mut Running,
    previous: Option<Running>,
}

pub(crate) fn enter(state: &mut Running) -> Entered<'_> {
    let previous = RUNNING.with(|r| r.replace(Some(*state)));
    Entered { state, previous }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Some(now) = RUNNING.with(|r| r.replace(self.previous)) {
            *self.state = now;
        }
    }
}

/// The running task of this thread.
pub(crate) fn current() -> Option<Running> {
    RUNNING.with(Cell::get)
}

/// Updates the running task of this thread.
pub(crate) fn update(f: impl FnOnce(&mut Running)) {
    RUNNING.with(|r| {
        if let Some(mut state) = r.get() {
            f(&mut state);
            r.set(Some(state));
        }
    });
}

/// What a task's slot changes tell the worker's event loop.
#[derive(Debug)]
pub(crate) enum SlotEvent {
    Seceded {
        task: u64,
        func: &'static str,
    },
    Rejoined {
        task: u64,
    },
    /// The function was run inline and tried to block: run it on task threads.
    NeedsThread {
        func: &'static str,
    },
}

/// A counting semaphore for task threads: taking and returning a slot is one
/// atomic operation unless a thread waits, so the task hot path takes no lock.
#[derive(Debug)]
pub(crate) struct SyncSlots {
    free: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl SyncSlots {
    pub(crate) fn new(n: usize) -> SyncSlots {
        SyncSlots {
            free: AtomicUsize::new(n),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    fn try_acquire(&self) -> bool {
        self.free.fetch_update(SeqCst, SeqCst, |f| f.checked_sub(1)).is_ok()
    }

    /// Takes a slot, waiting until one is free.
    pub(crate) fn acquire(&self) {
        if self.try_acquire() {
            return;
        }
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.waiters.fetch_add(1, SeqCst);
        while !self.try_acquire() {
            guard = self.freed.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// Returns a slot.
    pub(crate) fn release(&self) {
        self.free.fetch_add(1, SeqCst);
        // A waiter counts itself under the lock before it checks `free`, so
        // either it sees this slot or it is counted here and gets notified.
        if self.waiters.load(SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_gets_the_slot_returned_by_another_thread() {
        let slots = Arc::new(SyncSlots::new(1));
        slots.acquire();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                slots.acquire();
                tx.send(()).expect("receiver alive");
            })
        };
        assert!(rx.try_recv().is_err(), "no slot is free yet");
        slots.release();
        rx.recv().expect("the waiter took the slot");
        waiter.join().expect("waiter ran");
        assert!(!slots.try_acquire(), "the waiter holds the only slot");
    }

    #[test]
    fn entered_state_is_written_back() {
        let mut state = Running::new(7, "f", Kind::Thread);
        {
            let _e = enter(&mut state);
            update(|r| r.seceded = true);
            assert_eq!(current().map(|r| r.task), Some(7));
        }
        assert!(state.seceded);
        assert!(current().is_none());
    }
}
