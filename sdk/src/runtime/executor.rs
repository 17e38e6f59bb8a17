//! Running task functions: synchronous ones on a pool of task threads,
//! asynchronous ones on the runtime, both with panics caught and turned into
//! failures that carry the panic message and a backtrace.

use rudask_core::registry::{Catalog, TaskArgs, TaskCall, TaskResult};
use rudask_core::worker::{Execute, Worker};
use rudask_core::{FailureKind, TaskFailure};
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::Instant;

/// A finished task: id, outcome and run time in microseconds.
pub(crate) type Completion = (u64, TaskResult, u64);

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics raised inside tasks
/// instead of printing them; other panics go to the previous hook.
fn install_panic_hook() {
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
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let backtrace = std::backtrace::Backtrace::force_capture().to_string();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some((format!("{msg}{location}"), backtrace)));
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_failure() -> TaskFailure {
    let (message, traceback) =
        LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| ("unknown panic".to_string(), String::new()));
    TaskFailure::new(FailureKind::Panic, message).with_traceback(traceback)
}

struct InTask;

impl InTask {
    fn enter() -> InTask {
        IN_TASK.with(|c| c.set(true));
        InTask
    }
}

impl Drop for InTask {
    fn drop(&mut self) {
        IN_TASK.with(|c| c.set(false));
    }
}

fn run_sync(call: Box<dyn FnOnce() -> TaskResult + Send>) -> TaskResult {
    let guard = InTask::enter();
    let r = std::panic::catch_unwind(AssertUnwindSafe(call));
    drop(guard);
    r.unwrap_or_else(|_| Err(panic_failure()))
}

type Job = (u64, Box<dyn FnOnce() -> TaskResult + Send>);

/// Runs registered task functions for one worker.
#[derive(Debug)]
pub(crate) struct Executor {
    jobs: mpsc::Sender<Job>,
    done: tokio::sync::mpsc::UnboundedSender<Completion>,
}

impl Executor {
    /// Starts `nthreads` task threads; completions go to `done`.
    pub(crate) fn new(nthreads: usize, name: &str, done: tokio::sync::mpsc::UnboundedSender<Completion>) -> Executor {
        install_panic_hook();
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..nthreads.max(1) {
            let rx = rx.clone();
            let done = done.clone();
            std::thread::Builder::new()
                .name(format!("{name}-task-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((task, call)) = job else { return };
                    let start = Instant::now();
                    let result = run_sync(call);
                    if done.send((task, result, start.elapsed().as_micros() as u64)).is_err() {
                        return;
                    }
                })
                .expect("failed to spawn a task thread");
        }
        Executor { jobs, done }
    }

    /// Starts a task.
    pub(crate) fn start(&self, e: Execute) {
        let Some(def) = Catalog::global().get(&e.func) else {
            let _ = self.done.send((e.task, Err(Worker::unknown_function(&e.func)), 0));
            return;
        };
        match (def.prepare)(TaskArgs::new(def.id, e.args)) {
            TaskCall::Sync(call) => {
                if let Err(mpsc::SendError((task, _))) = self.jobs.send((e.task, call)) {
                    let failure = TaskFailure::new(FailureKind::Error, "the worker's task threads have stopped");
                    let _ = self.done.send((task, Err(failure), 0));
                }
            }
            TaskCall::Async(mut fut) => {
                let done = self.done.clone();
                tokio::spawn(async move {
                    let start = Instant::now();
                    let polled = std::future::poll_fn(move |cx| {
                        let _guard = InTask::enter();
                        fut.as_mut().poll(cx)
                    });
                    let result = futures::FutureExt::catch_unwind(AssertUnwindSafe(polled))
                        .await
                        .unwrap_or_else(|_| Err(panic_failure()));
                    let _ = done.send((e.task, result, start.elapsed().as_micros() as u64));
                });
            }
        }
    }
}
