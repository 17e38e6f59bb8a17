//! Registering kernels that take any number of partitions (concatenations,
//! the combine steps of tree reductions): `#[rudask::task]` functions have a
//! fixed arity, so these are registered as [`TaskDef`]s by hand.

pub(crate) use rudask::core::registry::{error_failure, task_result, TaskArgs, TaskCall, TaskDef};

/// Registers `$f: fn(TaskArgs) -> TaskResult` as the synchronous task `$id`
/// (a `&'static str` constant that graphs name in their task specs).
macro_rules! variadic_kernel {
    ($id:expr, $f:path) => {
        inventory::submit! {
            $crate::kernel::TaskDef {
                id: $id,
                prepare: |args: $crate::kernel::TaskArgs| {
                    $crate::kernel::TaskCall::Sync(Box::new(move || $f(args)))
                },
            }
        }
    };
}
pub(crate) use variadic_kernel;
