//! [`Scalar`]: one lazy value computed from a collection (a length, a sum, a
//! reduction's result), itself a collection of one partition; and the tree
//! reduction that most scalars are built with.

use crate::kernel::{variadic_kernel, TaskArgs};
use crate::token::Token;
use rudask::core::collection::{Collection, CollectionMeta, Retain};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::core::registry::TaskResult;
use rudask::core::{FailureKind, TaskFailure};
use rudask::Value;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The id of the kernel that passes its first argument through.
const IDENTITY: &str = "rudask_collections::scalar::identity";

/// One lazy value of type `T`; `client.compute(&scalar)?.await?` gives it.
///
/// ```no_run
/// # use arrow::array::{Int64Array, RecordBatch};
/// # use std::sync::Arc;
/// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
/// let rows: u64 = client.compute(&df.len())?.await?;
/// # Ok(()) }
/// ```
pub struct Scalar<T> {
    graph: Arc<TaskGraph>,
    key: Key,
    retain: Retain,
    _t: PhantomData<fn() -> T>,
}

impl<T> Scalar<T> {
    /// The value of `key`, computed by `graph` (which may depend on keys
    /// that `retain` keeps in memory).
    pub(crate) fn new(graph: TaskGraph, key: Key, retain: Retain) -> Self {
        Scalar { graph: Arc::new(graph), key, retain, _t: PhantomData }
    }

    /// The key of the value.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

impl<T> Clone for Scalar<T> {
    fn clone(&self) -> Self {
        Scalar {
            graph: self.graph.clone(),
            key: self.key.clone(),
            retain: self.retain.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Scalar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scalar<{}>({})", std::any::type_name::<T>(), self.key)
    }
}

impl<T: Value> Collection for Scalar<T> {
    type Output = T;

    fn type_tag() -> String {
        format!("rudask.Scalar<{}>", std::any::type_name::<T>())
    }

    fn graph(&self) -> TaskGraph {
        TaskGraph::clone(&self.graph)
    }

    fn keys(&self) -> Vec<Key> {
        vec![self.key.clone()]
    }

    fn meta(&self) -> CollectionMeta {
        CollectionMeta::new(Self::type_tag(), 1, &()).expect("unit encodes")
    }

    fn from_persisted(
        meta: &CollectionMeta,
        mut keys: Vec<Key>,
        retain: Retain,
    ) -> Result<Self, String> {
        meta.expect_type(&Self::type_tag())?;
        meta.expect_partitions(&keys)?;
        Ok(Scalar::new(TaskGraph::new(), keys.remove(0), retain))
    }

    fn finalize(&self, out: Key) -> TaskSpec {
        TaskSpec {
            key: out,
            func: IDENTITY.into(),
            args: vec![Arg::Dep(self.key.clone())],
            options: Default::default(),
        }
    }
}

fn identity(args: TaskArgs) -> TaskResult {
    args.payload(0)
        .cloned()
        .ok_or_else(|| TaskFailure::new(FailureKind::BadArgument, "identity takes one argument"))
}
variadic_kernel!(IDENTITY, identity);

/// Adds to `graph` a tree that combines `inputs` at most `split_every` at a
/// time with the variadic kernel `combine` (called as `combine(params..,
/// inputs..)`) until one key is left, and returns it. Keys are named
/// `op-<token>-<level>.<i>`.
pub(crate) fn tree_reduce(
    graph: &mut TaskGraph,
    token: Token,
    op: &str,
    mut inputs: Vec<Key>,
    combine: &str,
    params: &[Arg],
    split_every: usize,
) -> Key {
    let split_every = split_every.max(2);
    let mut level = 0;
    loop {
        let groups: Vec<Vec<Key>> = inputs.chunks(split_every).map(<[Key]>::to_vec).collect();
        let last = groups.len() == 1;
        inputs = groups
            .into_iter()
            .enumerate()
            .map(|(i, group)| {
                let key =
                    if last { token.key(op, 0) } else { token.key(&format!("{op}.{level}"), i) };
                let mut args = params.to_vec();
                args.extend(group.into_iter().map(Arg::Dep));
                crate::kernel::add_task(graph, key, combine, args)
            })
            .collect();
        if last {
            return inputs.remove(0);
        }
        level += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_of_16_inputs_by_4_has_4_then_1_combines_over_every_input() {
        let mut g = TaskGraph::new();
        let inputs: Vec<Key> = (0..16).map(|i| Key::from(format!("in-{i}"))).collect();
        let root = tree_reduce(&mut g, Token::random(), "sum", inputs.clone(), "f", &[], 4);
        assert_eq!(g.len(), 5);
        let needed = g.cull(std::slice::from_ref(&root));
        assert_eq!(needed.len(), 5);
        let external: Vec<&Key> = needed.external_dependencies().collect();
        assert_eq!(external.len(), 16, "every input feeds the root");
        let mut g = TaskGraph::new();
        let one = tree_reduce(&mut g, Token::random(), "sum", inputs[..1].to_vec(), "f", &[], 4);
        assert_eq!((g.len(), g.get(one.as_str()).unwrap().args.len()), (1, 1));
    }
}
