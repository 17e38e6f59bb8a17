//! Registering kernels that take any number of partitions (concatenations,
//! the combine steps of tree reductions): `#[rudask::task]` functions have a
//! fixed arity, so these are registered as [`TaskDef`]s by hand.

pub(crate) use rudask::core::registry::{error_failure, task_result, TaskArgs, TaskCall, TaskDef};

use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};

/// Adds the task `key = func(args..)` (default options) to `graph` and
/// returns its key: how every collection operation grows its graph.
pub(crate) fn add_task(graph: &mut TaskGraph, key: Key, func: &str, args: Vec<Arg>) -> Key {
    graph.insert(TaskSpec {
        key: key.clone(),
        func: func.into(),
        args,
        options: Default::default(),
    });
    key
}

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
