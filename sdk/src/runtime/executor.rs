//! Running task functions: synchronous ones on a pool of task threads,
//! asynchronous ones on the runtime, both with panics caught and turned into
//! failures that carry the panic message and a backtrace.
//!
//! A synchronous function whose observed run time is tiny runs inline on the
//! caller's thread instead: handing a 1 µs task to another thread costs more
//! than the task (two futex wakeups), and the caller bounds how long it runs
//! inline tasks before serving its sockets again.

use super::slots::{self, Kind, Running, SyncSlots};
use crate::context::{self, WorkerContext};
use rudask_core::registry::{Catalog, TaskArgs, TaskCall, TaskResult};
use rudask_core::worker::{Execute, Worker};
use rudask_core::{FailureKind, Key, TaskFailure};
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::task::Poll;
use std::time::Instant;

/// A finished task: id, outcome, run time in microseconds and function id.
pub(crate) type Completion = (u64, TaskResult, u64, &'static str);

/// Functions whose average run time is below this run inline.
const INLINE_BELOW_US: f64 = 100.0;

/// A task thread runs jobs already queued for it back to back for at most
/// this long before reporting, so tiny tasks wake the event loop once per
/// batch instead of once per task.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_micros(200);

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics raised inside tasks
/// instead of printing them; other panics go to the previous hook.
pub(super) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TASK.with(Cell::get) {
                let payload = info.payload();
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let backtrace = std::backtrace::Backtrace::force_capture().to_string();
                LAST_PANIC
                    .with(|p| *p.borrow_mut() = Some((format!("{msg}{location}"), backtrace)));
            } else {
                previous(info);
            }
        }));
    });
}

pub(super) fn panic_failure() -> TaskFailure {
    let (message, traceback) = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| ("unknown panic".to_string(), String::new()));
    TaskFailure::new(FailureKind::Panic, message).with_traceback(traceback)
}

pub(super) struct InTask;

impl InTask {
    pub(super) fn enter() -> InTask {
        IN_TASK.with(|c| c.set(true));
        InTask
    }
}

impl Drop for InTask {
    fn drop(&mut self) {
        IN_TASK.with(|c| c.set(false));
    }
}

/// A result leaving the process is encoded right away, on the task's own
/// thread, so its size is exact and encoding errors are the task's failure.
pub(super) fn settle(result: TaskResult, encode: bool, func: &str) -> TaskResult {
    match result {
        Ok(p) if encode => p.into_encoded().map_err(|e| {
            TaskFailure::new(
                FailureKind::BadResult,
                format!("result of task {func} could not be encoded: {e}"),
            )
        }),
        other => other,
    }
}

/// `call`, whose result then stays on this worker as an actor.
fn adopting(key: Key, call: TaskCall) -> TaskCall {
    match call {
        TaskCall::Sync(call) => {
            TaskCall::Sync(Box::new(move || super::actors::adopt(&key, call())))
        }
        TaskCall::Async(fut) => {
            TaskCall::Async(Box::pin(async move { super::actors::adopt(&key, fut.await) }))
        }
    }
}

pub(super) fn run_sync(call: Box<dyn FnOnce() -> TaskResult + Send>) -> TaskResult {
    let guard = InTask::enter();
    let r = std::panic::catch_unwind(AssertUnwindSafe(call));
    drop(guard);
    r.unwrap_or_else(|_| Err(panic_failure()))
}

/// A task for the thread pool: id, call, function, and its tracing span.
type Job = (u64, Box<dyn FnOnce() -> TaskResult + Send>, &'static str, tracing::Span);

thread_local! {
    static POOL: RefCell<Option<Arc<Pool>>> = const { RefCell::new(None) };
    /// Completions of this task thread's current batch, not yet reported.
    static UNREPORTED: RefCell<Vec<Completion>> = const { RefCell::new(Vec::new()) };
}

fn take_unreported() -> Vec<Completion> {
    UNREPORTED.with(|b| std::mem::take(&mut *b.borrow_mut()))
}

/// A worker's task threads and what they share.
///
/// `nthreads` threads take jobs. A task that secedes gives its slot back and
/// its thread leaves the pool after that task; a new thread takes its place.
/// A task that rejoins waits for a slot and its thread joins the pool again,
/// one too many, so the first thread to finish a job then leaves.
#[derive(Debug)]
struct Pool {
    jobs: Mutex<mpsc::Receiver<Job>>,
    done: tokio::sync::mpsc::UnboundedSender<Vec<Completion>>,
    ctx: Arc<WorkerContext>,
    encode: bool,
    nthreads: usize,
    /// Threads taking jobs.
    members: AtomicUsize,
    /// Running jobs hold a slot, so at most `nthreads` run at once even while
    /// a rejoined thread makes the pool one too many.
    slots: SyncSlots,
    spawned: AtomicUsize,
}

impl Pool {
    fn spawn_thread(self: &Arc<Self>) -> std::io::Result<()> {
        let i = self.spawned.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        std::thread::Builder::new()
            .name(format!("{}-task-{i}", self.ctx.name))
            .spawn(move || pool.run())
            .map(drop)
    }

    fn run(self: Arc<Self>) {
        let _entered = context::enter(&self.ctx);
        POOL.with(|p| *p.borrow_mut() = Some(self.clone()));
        loop {
            let job = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(mut job) = job else { return };
            self.slots.acquire();
            let batch_start = Instant::now();
            let mut seceded = false;
            loop {
                let (task, call, func, span) = job;
                let start = Instant::now();
                let mut state = Running::new(task, func, Kind::Thread);
                let result = {
                    let _span = span.enter();
                    let _running = slots::enter(&mut state);
                    run_sync(call)
                };
                let result = settle(result, self.encode, func);
                let us = start.elapsed().as_micros() as u64;
                UNREPORTED.with(|b| b.borrow_mut().push((task, result, us, func)));
                if state.seceded {
                    seceded = true;
                    break;
                }
                if batch_start.elapsed() >= REPORT_EVERY {
                    break;
                }
                // An idle sibling may hold the lock while it blocks in
                // `recv`; then report what is done instead of waiting.
                let next = match self.jobs.try_lock() {
                    Ok(guard) => guard.try_recv().ok(),
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().try_recv().ok(),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                };
                match next {
                    Some(next) => job = next,
                    None => break,
                }
            }
            if !seceded {
                self.slots.release();
            }
            if self.done.send(take_unreported()).is_err() || seceded || self.retire() {
                return;
            }
        }
    }

    /// Leaves the pool if it has more threads than slots.
    fn retire(&self) -> bool {
        let nthreads = self.nthreads;
        self.members
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| (m > nthreads).then(|| m - 1))
            .is_ok()
    }
}

/// The task on this task thread secedes: its slot goes back and a new thread
/// takes its place in the pool. Tasks this thread finished earlier in its
/// batch are reported now: the seceding task may wait on them.
pub(crate) fn leave_pool() -> Result<(), String> {
    let pool = POOL.with(|p| p.borrow().clone()).ok_or("this thread is not a task thread")?;
    pool.spawn_thread().map_err(|e| format!("could not start a task thread to take over: {e}"))?;
    pool.slots.release();
    let finished = take_unreported();
    if !finished.is_empty() {
        let _ = pool.done.send(finished);
    }
    Ok(())
}

/// The seceded task on this task thread takes a slot again, waiting for one.
pub(crate) fn rejoin_pool() {
    if let Some(pool) = POOL.with(|p| p.borrow().clone()) {
        pool.slots.acquire();
        pool.members.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs registered task functions for one worker.
///
/// It may be handed more tasks than it has slots; at most `nthreads` run at
/// once (the thread pool for sync tasks, a semaphore for async ones).
#[derive(Debug)]
pub(crate) struct Executor {
    jobs: mpsc::Sender<Job>,
    done: tokio::sync::mpsc::UnboundedSender<Vec<Completion>>,
    async_slots: Arc<tokio::sync::Semaphore>,
    avg_us: rustc_hash::FxHashMap<&'static str, f64>,
    encode: bool,
    ctx: Arc<WorkerContext>,
}

impl Executor {
    /// Starts `nthreads` task threads; completions go to `done`. With
    /// `encode`, results are encoded as they are made (for a worker whose
    /// results leave the process); otherwise they stay in memory as values.
    pub(crate) fn new(
        nthreads: usize,
        ctx: Arc<WorkerContext>,
        done: tokio::sync::mpsc::UnboundedSender<Vec<Completion>>,
        encode: bool,
    ) -> Executor {
        install_panic_hook();
        let nthreads = nthreads.max(1);
        let (jobs, rx) = mpsc::channel::<Job>();
        let pool = Arc::new(Pool {
            jobs: Mutex::new(rx),
            done: done.clone(),
            ctx: ctx.clone(),
            encode,
            nthreads,
            members: AtomicUsize::new(nthreads),
            slots: SyncSlots::new(nthreads),
            spawned: AtomicUsize::new(0),
        });
        for _ in 0..nthreads {
            pool.spawn_thread().expect("failed to spawn a task thread");
        }
        Executor {
            jobs,
            done,
            async_slots: Arc::new(tokio::sync::Semaphore::new(nthreads)),
            avg_us: Default::default(),
            encode,
            ctx,
        }
    }

    /// The context tasks of this executor run in.
    pub(crate) fn context(&self) -> &Arc<WorkerContext> {
        &self.ctx
    }

    /// Never runs `func` inline again: it seceded, so it may block on other
    /// tasks, which must not happen on the event loop.
    pub(crate) fn pin(&mut self, func: &'static str) {
        self.avg_us.insert(func, f64::INFINITY);
    }

    /// Records a task's run time.
    pub(crate) fn observe(&mut self, func: &'static str, us: u64) {
        let avg = self.avg_us.entry(func).or_insert(us as f64);
        *avg = 0.8 * *avg + 0.2 * us as f64;
    }

    /// Starts a task. A tiny synchronous one runs right here and its
    /// completion is returned; others report through the completion channel.
    pub(crate) fn start(&mut self, e: Execute) -> Option<Completion> {
        let Some(def) = Catalog::global().get(&e.func) else {
            return Some((e.task, Err(Worker::unknown_function(&e.func)), 0, ""));
        };
        let span = super::span::task(&e.key, def.id);
        let call = (def.prepare)(TaskArgs::new(def.id, e.args));
        let call = if e.actor { adopting(e.key, call) } else { call };
        match call {
            TaskCall::Sync(call)
                if self.avg_us.get(def.id).is_some_and(|&us| us < INLINE_BELOW_US) =>
            {
                let start = Instant::now();
                let _span = span.enter();
                let entered = context::enter(&self.ctx);
                let mut state = Running::new(e.task, def.id, Kind::Inline);
                let running = slots::enter(&mut state);
                let result = settle(run_sync(call), self.encode, def.id);
                drop(running);
                drop(entered);
                Some((e.task, result, start.elapsed().as_micros() as u64, def.id))
            }
            TaskCall::Sync(call) => {
                if let Err(mpsc::SendError((task, _, func, _))) =
                    self.jobs.send((e.task, call, def.id, span))
                {
                    let failure = TaskFailure::new(
                        FailureKind::Error,
                        "the worker's task threads have stopped",
                    );
                    return Some((task, Err(failure), 0, func));
                }
                None
            }
            TaskCall::Async(mut fut) => {
                let done = self.done.clone();
                let async_slots = self.async_slots.clone();
                let func = def.id;
                let encode = self.encode;
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let mut slot = async_slots.acquire().await.ok();
                    let start = Instant::now();
                    let mut state = Running::new(e.task, func, Kind::Async);
                    let result = loop {
                        let step = std::future::poll_fn(|cx| {
                            let polled = {
                                let _span = span.enter();
                                let _entered = context::enter(&ctx);
                                let _guard = InTask::enter();
                                let _running = slots::enter(&mut state);
                                fut.as_mut().poll(cx)
                            };
                            if state.seceded {
                                slot = None;
                            }
                            match polled {
                                Poll::Ready(r) => Poll::Ready(Some(r)),
                                // A rejoined task waits for a slot before it runs on.
                                Poll::Pending if state.rejoining => Poll::Ready(None),
                                Poll::Pending => Poll::Pending,
                            }
                        });
                        match futures::FutureExt::catch_unwind(AssertUnwindSafe(step)).await {
                            Ok(Some(r)) => break r,
                            Ok(None) => {
                                state.rejoining = false;
                                slot = async_slots.acquire().await.ok();
                            }
                            Err(_) => break Err(panic_failure()),
                        }
                    };
                    drop(slot);
                    let result = settle(result, encode, func);
                    let _ =
                        done.send(vec![(e.task, result, start.elapsed().as_micros() as u64, func)]);
                });
                None
            }
        }
    }
}
