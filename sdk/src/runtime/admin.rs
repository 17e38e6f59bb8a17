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

#[cfg(test)]
mod tests {
    use super::*;

    #[rudask::task]
    fn admin_test_panics(message: String) -> i64 {
        panic!("{message}")
    }

    #[rudask::task]
    async fn admin_test_double(x: i64) -> i64 {
        2 * x
    }

    fn arg<T: serde::Serialize + 'static>(v: T) -> Payload {
        rudask_core::registry::encode(&v).unwrap()
    }

    #[tokio::test]
    async fn call_runs_registered_functions_and_catches_panics() {
        use crate::Task;
        let out = call(admin_test_double.id(), vec![arg(21i64)], None).await.unwrap();
        assert_eq!(rudask_core::registry::decode::<i64>(&out).unwrap(), 42);
        assert!(out.as_bytes().is_some(), "results leave the process encoded");

        let failure =
            call(admin_test_panics.id(), vec![arg("oops".to_string())], None).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Panic);
        assert!(failure.message.contains("oops"), "{}", failure.message);

        let failure = call("no::such::function", vec![], None).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::NoWorker);
        assert!(failure.message.contains("no::such::function"));

        match run_on_scheduler(Arc::from("no::such::function"), vec![]).await {
            Err(e) => assert_eq!(e.kind, RequestErrorKind::InvalidArgument),
            Ok(r) => panic!("unexpected {r:?}"),
        }
    }

    #[test]
    fn files_are_replaced_whole_and_leave_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("rudask-admin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_file(&dir, "f.txt", &Payload::from(b"first version".to_vec())).unwrap();
        write_file(&dir, "f.txt", &Payload::from(b"second".to_vec())).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("f.txt")).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["f.txt".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
