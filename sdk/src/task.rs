//! Registered tasks as seen by a client: the [`Task`] trait that
//! `#[rudask::task]` implements, per-submit options, and how each argument is
//! either a value or a [`Future`] of the same type.

use crate::error::{Error, Result};
use crate::future::{Future, KeyRef};
use rudask_core::graph::{Restrictions, TaskOptions};
use rudask_core::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A value that can be a task argument or result: encodable and decodable
/// (to cross sockets), cloneable and shareable (to be handed between tasks and
/// clients in one process without being encoded).
pub trait Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Value for T {}

/// A registered task function. Implemented by `#[rudask::task]`.
///
/// ```
/// #[rudask::task]
/// fn double(x: i64) -> i64 { x * 2 }
///
/// use rudask::Task;
/// assert!(double.id().ends_with("::double"));
/// assert_eq!(double::call(4), 8);
/// ```
pub trait Task: Send + Sync + 'static {
    /// The argument tuple.
    type Args;
    /// What the task returns (the `T` of a `Result<T, E>` return type).
    type Output: Value;
    /// Stable registered id.
    fn id(&self) -> &'static str;
    /// Short name, used as the prefix of keys.
    fn name(&self) -> &'static str;
    /// Options for submitting it.
    fn options(&self) -> SubmitOptions {
        SubmitOptions::default()
    }
}

/// Options of a submission. Set them on a task with the [`TaskExt`]
/// methods, or build a set to reuse with [`crate::Client::get_executor`];
/// each builder method here does what the [`TaskExt`] method of the same
/// name does.
///
/// ```
/// use rudask::SubmitOptions;
/// use std::time::Duration;
/// let gpu = SubmitOptions::new()
///     .resources([("GPU", 1)])
///     .workers(["gpu-1", "gpu-2"])
///     .allow_other_workers(true)
///     .priority(10)
///     .retries(2)
///     .fifo_timeout(Duration::from_millis(500));
/// # let _ = gpu;
/// ```
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    pub(crate) key: Option<String>,
    pub(crate) pure: bool,
    pub(crate) priority: i32,
    pub(crate) retries: u32,
    restrictions: Option<Arc<Restrictions>>,
    fifo_timeout: Option<Duration>,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            key: None,
            pure: true,
            priority: 0,
            retries: 0,
            restrictions: None,
            fifo_timeout: None,
        }
    }
}

impl SubmitOptions {
    /// The defaults: pure keys, priority 0, no retries, any worker, a
    /// fifo timeout of 100 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`TaskExt::key`].
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// See [`TaskExt::pure`].
    pub fn pure(mut self, pure: bool) -> Self {
        self.pure = pure;
        self
    }

    /// See [`TaskExt::priority`].
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// See [`TaskExt::retries`].
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// See [`TaskExt::workers`].
    pub fn workers<S: Into<String>>(mut self, workers: impl IntoIterator<Item = S>) -> Self {
        self.restrictions_mut().workers = workers.into_iter().map(Into::into).collect();
        self
    }

    /// See [`TaskExt::allow_other_workers`].
    pub fn allow_other_workers(mut self, allow: bool) -> Self {
        self.restrictions_mut().allow_other_workers = allow;
        self
    }

    /// See [`TaskExt::resources`].
    pub fn resources<S: Into<String>, A: Into<f64>>(
        mut self,
        resources: impl IntoIterator<Item = (S, A)>,
    ) -> Self {
        self.restrictions_mut().resources =
            resources.into_iter().map(|(n, a)| (n.into(), a.into())).collect();
        self
    }

    /// See [`TaskExt::fifo_timeout`].
    pub fn fifo_timeout(mut self, timeout: Duration) -> Self {
        self.fifo_timeout = Some(timeout);
        self
    }

    fn restrictions_mut(&mut self) -> &mut Restrictions {
        Arc::make_mut(self.restrictions.get_or_insert_with(Default::default))
    }

    /// Checks the options once per submission, before any task is built.
    pub(crate) fn validate(&self) -> Result<()> {
        match &self.restrictions {
            Some(r) => r.validate().map_err(Error::InvalidArgument),
            None => Ok(()),
        }
    }

    /// The scheduling options every task of the submission carries.
    pub(crate) fn task_options(&self) -> TaskOptions {
        // Emptied restrictions (`workers([])`) restrict nothing: send none.
        let restrictions = self
            .restrictions
            .as_ref()
            .filter(|r| !r.workers.is_empty() || !r.resources.is_empty())
            .cloned();
        TaskOptions {
            priority: self.priority,
            retries: self.retries,
            restrictions,
            fifo_timeout_us: self
                .fifo_timeout
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX)),
            actor: false,
        }
    }
}

/// Submission options, set on the task before it is submitted:
/// `client.submit(inc.pure(false).priority(10), (1,))`.
///
/// ```
/// #[rudask::task]
/// fn inc(x: i64) -> i64 { x + 1 }
///
/// use rudask::{Task, TaskExt};
/// let t = inc.pure(false).retries(2).priority(5);
/// assert_eq!(t.id(), inc.id());
/// let on_gpu = inc.workers(["gpu-box"]).allow_other_workers(true).resources([("GPU", 1)]);
/// let batch = inc.fifo_timeout(std::time::Duration::from_secs(1));
/// # let _ = (on_gpu, batch);
/// ```
pub trait TaskExt: Task + Sized {
    /// `false` gives every submission a fresh random key (default: pure).
    fn pure(self, pure: bool) -> WithOptions<Self> {
        with_option(self, |o| o.pure(pure))
    }
    /// An explicit key (for `map`, the prefix of `key-0`, `key-1`, ...).
    fn key(self, key: impl Into<String>) -> WithOptions<Self> {
        with_option(self, |o| o.key(key))
    }
    /// Higher runs first.
    fn priority(self, priority: i32) -> WithOptions<Self> {
        with_option(self, |o| o.priority(priority))
    }
    /// Re-run automatically up to `n` times when the task errs.
    fn retries(self, n: u32) -> WithOptions<Self> {
        with_option(self, |o| o.retries(n))
    }
    /// Run only on these workers, given by name or data address. A task
    /// whose workers are not connected waits (state `no-worker`, reason in
    /// [`crate::SchedulerInfo::unrunnable`]) until one joins; with
    /// [`TaskExt::allow_other_workers`] they are only preferred.
    fn workers<S: Into<String>>(self, workers: impl IntoIterator<Item = S>) -> WithOptions<Self> {
        with_option(self, |o| o.workers(workers))
    }
    /// `true`: the [`TaskExt::workers`] are preferred, not required; other
    /// workers run the task when none of them is connected, and may steal it
    /// when idle. Needs a list of workers.
    fn allow_other_workers(self, allow: bool) -> WithOptions<Self> {
        with_option(self, |o| o.allow_other_workers(allow))
    }
    /// Abstract resources one run holds, e.g. `[("GPU", 1)]`: the task runs
    /// only on workers started with enough of them (`--resources GPU=2`), and
    /// a worker runs at most as many such tasks at once as its totals allow.
    /// Resources are required even with [`TaskExt::allow_other_workers`].
    fn resources<S: Into<String>, A: Into<f64>>(
        self,
        resources: impl IntoIterator<Item = (S, A)>,
    ) -> WithOptions<Self> {
        with_option(self, |o| o.resources(resources))
    }
    /// Submissions less than `timeout` after the start of the current
    /// priority generation join it, and are ordered among themselves by
    /// their position within their own submission (two quick `map`s
    /// interleave); a later submission starts a new generation, which runs
    /// after all earlier ones at equal priority. Default 100 ms, as in dask.
    fn fifo_timeout(self, timeout: Duration) -> WithOptions<Self> {
        with_option(self, |o| o.fifo_timeout(timeout))
    }
}

fn with_option<T: Task>(
    task: T,
    set: impl FnOnce(SubmitOptions) -> SubmitOptions,
) -> WithOptions<T> {
    let options = set(task.options());
    WithOptions { task, options }
}

impl<T: Task> TaskExt for T {}

/// A task with submission options attached.
#[derive(Clone, Debug)]
pub struct WithOptions<T> {
    task: T,
    options: SubmitOptions,
}

impl<T> WithOptions<T> {
    /// `task` with exactly `options` (for executors with fixed options).
    pub(crate) fn new(task: T, options: SubmitOptions) -> Self {
        WithOptions { task, options }
    }
}

impl<T: Task> Task for WithOptions<T> {
    type Args = T::Args;
    type Output = T::Output;
    fn id(&self) -> &'static str {
        self.task.id()
    }
    fn name(&self) -> &'static str {
        self.task.name()
    }
    fn options(&self) -> SubmitOptions {
        self.options.clone()
    }
}

/// One encoded argument.
#[derive(Debug)]
pub enum ArgSlot {
    /// An encoded value.
    Value(Payload),
    /// Another task's result.
    Dep(Arc<KeyRef>),
    /// The result of another task of the same graph, by key (a
    /// [`crate::GraphKey`]); outside a graph, the scheduler must know the key.
    Key(rudask_core::Key),
    /// An encoded value that refers to something the client must keep alive
    /// until the task is done (an actor handle keeps its actor).
    Retaining(Payload, rudask_core::collection::Retain),
}

/// Something that can stand in an argument position of type `T`: a `T`, or a
/// [`Future<T>`] (by value or reference), whose result is passed instead.
pub trait IntoArg<T> {
    /// Encodes the argument.
    fn into_arg(self) -> Result<ArgSlot>;
}

impl<T: Value> IntoArg<T> for T {
    fn into_arg(self) -> Result<ArgSlot> {
        encode_value(&self).map(ArgSlot::Value)
    }
}

impl<T> IntoArg<T> for &Future<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        Ok(ArgSlot::Dep(self.key_ref().clone()))
    }
}

impl<T> IntoArg<T> for Future<T> {
    fn into_arg(self) -> Result<ArgSlot> {
        Ok(ArgSlot::Dep(self.key_ref().clone()))
    }
}

impl IntoArg<String> for &str {
    fn into_arg(self) -> Result<ArgSlot> {
        rudask_core::registry::encode_serde(self)
            .map(ArgSlot::Value)
            .map_err(|e| Error::Serialization(format!("could not encode a value: {e}")))
    }
}

/// An argument tuple for a task whose parameters are `Args`.
pub trait IntoArgs<Args> {
    /// Encodes the arguments in order.
    fn into_args(self) -> Result<Vec<ArgSlot>>;
}

impl IntoArgs<()> for () {
    fn into_args(self) -> Result<Vec<ArgSlot>> {
        Ok(Vec::new())
    }
}

macro_rules! tuple_args {
    ($(($T:ident, $A:ident, $i:tt)),+) => {
        impl<$($T, $A: IntoArg<$T>),+> IntoArgs<($($T,)+)> for ($($A,)+) {
            fn into_args(self) -> Result<Vec<ArgSlot>> {
                Ok(vec![$(self.$i.into_arg()?),+])
            }
        }
    };
}

/// Implements `IntoArgs` for every prefix of the list: 1-tuples, 2-tuples, ...
macro_rules! tuple_args_upto {
    ([$($done:tt)*]) => {};
    ([$($done:tt)*] $next:tt $($rest:tt)*) => {
        tuple_args!($($done,)* $next);
        tuple_args_upto!([$($done)* $next] $($rest)*);
    };
}

tuple_args_upto!([](T0, A0, 0)(T1, A1, 1)(T2, A2, 2)(T3, A3, 3)(T4, A4, 4)(T5, A5, 5)(T6, A6, 6)(
    T7, A7, 7
));

pub(crate) fn encode_value<T: Serialize + std::any::Any>(v: &T) -> Result<Payload> {
    rudask_core::registry::encode(v)
        .map_err(|e| Error::Serialization(format!("could not encode a value: {e}")))
}

pub(crate) fn decode_value<T: DeserializeOwned + Clone + std::any::Any>(
    key: &str,
    p: &Payload,
) -> Result<T> {
    rudask_core::registry::decode(p).map_err(|e| {
        Error::Serialization(format!(
            "value of {key} could not be decoded as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}
