//! Registered tasks as seen by a client: the [`Task`] trait that
//! `#[rudask::task]` implements, per-submit options, and how each argument is
//! either a value or a [`Future`] of the same type.

use crate::error::{Error, Result};
use crate::future::{Future, KeyRef};
use rudask_core::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;

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

/// Options of one submission. Set them with the [`TaskExt`] methods.
#[derive(Clone, Debug)]
pub struct SubmitOptions {
    pub(crate) key: Option<String>,
    pub(crate) pure: bool,
    pub(crate) priority: i32,
    pub(crate) retries: u32,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions { key: None, pure: true, priority: 0, retries: 0 }
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
/// ```
pub trait TaskExt: Task + Sized {
    /// `false` gives every submission a fresh random key (default: pure).
    fn pure(self, pure: bool) -> WithOptions<Self> {
        with_option(self, |o| o.pure = pure)
    }
    /// An explicit key (for `map`, the prefix of `key-0`, `key-1`, ...).
    fn key(self, key: impl Into<String>) -> WithOptions<Self> {
        let key = key.into();
        with_option(self, |o| o.key = Some(key))
    }
    /// Higher runs first.
    fn priority(self, priority: i32) -> WithOptions<Self> {
        with_option(self, |o| o.priority = priority)
    }
    /// Re-run automatically up to `n` times when the task errs.
    fn retries(self, n: u32) -> WithOptions<Self> {
        with_option(self, |o| o.retries = n)
    }
}

fn with_option<T: Task>(task: T, set: impl FnOnce(&mut SubmitOptions)) -> WithOptions<T> {
    let mut options = task.options();
    set(&mut options);
    WithOptions { task, options }
}

impl<T: Task> TaskExt for T {}

/// A task with submission options attached.
#[derive(Clone, Debug)]
pub struct WithOptions<T> {
    task: T,
    options: SubmitOptions,
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
