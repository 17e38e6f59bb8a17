//! Administration on the driver side: calling a registered function outside
//! the task graph (on a worker for `Client::run`, in the scheduler's process
//! for `Client::run_on_scheduler`), writing uploaded files, and replacing a
//! worker process with a fresh one on restart.

use super::executor::{install_panic_hook, panic_failure, run_sync, settle, InTask};
use crate::context::{self, WorkerContext};
use rudask_core::protocol::{Reply, RequestError, RequestErrorKind};
use rudask_core::registry::{Catalog, TaskArgs, TaskCall, TaskResult};
use rudask_core::{FailureKind, Payload, TaskFailure};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

/// Calls registered function `func` once, off the caller's event loop: a
/// synchronous one on a blocking thread, an async one as a task of its own.
/// Panics become failures; the result is encoded, since it leaves the process.
pub(crate) async fn call(
    func: &str,
    args: Vec<Payload>,
    ctx: Option<Arc<WorkerContext>>,
) -> TaskResult {
    let Some(def) = Catalog::global().get(func) else {
        return Err(TaskFailure::new(
            FailureKind::NoWorker,
            format!("this process's binary has no task function {func}; link the crate that defines it into the binary"),
        ));
    };
    install_panic_hook();
    let id = def.id;
    let joined = match (def.prepare)(TaskArgs::new(id, args)) {
        TaskCall::Sync(f) => {
            tokio::task::spawn_blocking(move || {
                let _entered = ctx.as_ref().map(context::enter);
                settle(run_sync(f), true, id)
            })
            .await
        }
        TaskCall::Async(mut fut) => {
            tokio::spawn(async move {
                let polled = std::future::poll_fn(move |cx| {
                    let _entered = ctx.as_ref().map(context::enter);
                    let _guard = InTask::enter();
                    fut.as_mut().poll(cx)
                });
                let result = futures::FutureExt::catch_unwind(AssertUnwindSafe(polled))
                    .await
                    .unwrap_or_else(|_| Err(panic_failure()));
                settle(result, true, id)
            })
            .await
        }
    };
    joined.unwrap_or_else(|e| {
        Err(TaskFailure::new(FailureKind::Error, format!("function {func} did not complete: {e}")))
    })
}

/// Answers `Client::run_on_scheduler`: runs `func` in this (the scheduler's) process.
pub(crate) async fn run_on_scheduler(
    func: Arc<str>,
    args: Vec<Payload>,
) -> Result<Reply, RequestError> {
    if Catalog::global().get(&func).is_none() {
        return Err(RequestError::new(
            RequestErrorKind::InvalidArgument,
            format!(
                "the scheduler's binary has no task function {func}; run_on_scheduler can only call \
                 functions linked into the executable the scheduler runs from"
            ),
        ));
    }
    Ok(Reply::RunOnScheduler(call(&func, args, None).await))
}

/// Writes an uploaded file into `dir` atomically: to a temporary name, then
/// renamed, so a task never sees a half-written file.
pub(crate) fn write_file(dir: &Path, name: &str, data: &Payload) -> std::io::Result<()> {
    let bytes = data.encoded().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.{:x}.tmp", fastrand::u64(..)));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Replaces this process with a fresh run of the same executable and
/// arguments (same pid, same environment). Returns only on failure.
pub(crate) fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec()
}
