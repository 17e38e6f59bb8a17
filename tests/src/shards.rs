//! A collection whose partitions are actors when persisted with
//! `PersistOptions::actors(true)`: `Shards`, one [`Shard`] per partition of
//! a [`Bag`], written against the public API only.

use crate::bag::Bag;
use rudask::core::collection::{Collection, CollectionMeta, Retain};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::core::registry::{task_result, TaskArgs, TaskCall, TaskDef, TaskResult};
use rudask::Task;
use serde::{Deserialize, Serialize};

const TYPE_TAG: &str = "rudask_tests.Shards";

/// The finalize kernel: all shards' items, in order.
const ITEMS: &str = "rudask_tests::shards::items";

/// A partition: items and how many were pushed since it was made. As an
/// actor, its state changes in place on its worker.
#[rudask::actor]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shard {
    items: Vec<i64>,
    #[actor(attr)]
    pushed: u64,
}

#[rudask::actor]
impl Shard {
    /// Appends `x`; the new length.
    pub fn push(&mut self, x: i64) -> usize {
        self.items.push(x);
        self.pushed += 1;
        self.items.len()
    }

    /// The sum of the items.
    pub fn sum(&self) -> i64 {
        self.items.iter().sum()
    }
}

/// Makes a shard of a bag's partition.
#[rudask::task]
pub fn make_shard(items: Vec<i64>) -> Shard {
    Shard { items, pushed: 0 }
}

/// Sums a shard through its actor handle, inside a task.
#[rudask::task]
pub async fn shard_sum(shard: rudask::Actor<Shard>) -> rudask::Result<i64> {
    shard.sum().await
}

/// A lazy list of shards, one per partition of a bag.
#[derive(Clone, Debug)]
pub struct Shards {
    graph: TaskGraph,
    keys: Vec<Key>,
    /// Keeps the partitions it was persisted from.
    _retain: Retain,
}

impl Shards {
    /// A shard of each partition of `bag`.
    pub fn of(bag: &Bag) -> Shards {
        let mut graph = bag.graph();
        let keys = bag
            .keys()
            .iter()
            .map(|k| {
                let key = Key::from(format!("shard-{k}"));
                graph.insert(TaskSpec {
                    key: key.clone(),
                    func: make_shard.id().into(),
                    args: vec![Arg::Dep(k.clone())],
                    options: Default::default(),
                });
                key
            })
            .collect();
        Shards { graph, keys, _retain: Retain::none() }
    }
}

impl Collection for Shards {
    type Output = Vec<i64>;

    fn type_tag() -> String {
        TYPE_TAG.into()
    }

    fn graph(&self) -> TaskGraph {
        self.graph.clone()
    }

    fn keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    fn meta(&self) -> CollectionMeta {
        CollectionMeta::new(TYPE_TAG, self.keys.len(), &()).expect("unit encodes")
    }

    fn from_persisted(
        meta: &CollectionMeta,
        keys: Vec<Key>,
        retain: Retain,
    ) -> Result<Self, String> {
        meta.expect_type(TYPE_TAG)?;
        meta.expect_partitions(&keys)?;
        Ok(Shards { graph: TaskGraph::new(), keys, _retain: retain })
    }

    fn finalize(&self, out: Key) -> TaskSpec {
        TaskSpec {
            key: out,
            func: ITEMS.into(),
            args: self.keys.iter().cloned().map(Arg::Dep).collect(),
            options: Default::default(),
        }
    }
}

fn items(args: TaskArgs) -> TaskResult {
    let shards: Vec<Shard> = args.get_rest(0, "shards")?;
    task_result(shards.into_iter().flat_map(|s| s.items).collect::<Vec<i64>>())
}

inventory::submit! {
    TaskDef { id: ITEMS, prepare: |args| TaskCall::Sync(Box::new(move || items(args))) }
}
