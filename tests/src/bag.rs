//! A third-party collection: `Bag`, a partitioned list of integers, written
//! against the public API only, the way any crate adds a collection type.
//! It implements [`rudask::Collection`], so the cluster can persist,
//! compute, publish and get it without knowing it exists.
//!
//! ```no_run
//! # async fn demo(client: rudask::Client) -> rudask::Result<()> {
//! use rudask_tests::bag::{double, Bag};
//! let bag = Bag::from_vec((0..100).collect(), 4).map_partitions(double);
//! let bag = client.persist(&bag)?;
//! assert_eq!(client.compute(&bag)?.await?, (0..100).map(|x| x * 2).collect::<Vec<i64>>());
//! # Ok(()) }
//! ```

use rudask::core::collection::{Collection, CollectionMeta, Retain};
use rudask::core::graph::{Arg, Key, TaskGraph, TaskSpec};
use rudask::core::registry::{hold, task_result, TaskArgs, TaskCall, TaskDef, TaskResult};
use rudask::Task;

const TYPE_TAG: &str = "rudask_tests.Bag<i64>";

/// The finalize kernel's id: it takes any number of partitions, so it is
/// registered by hand rather than with `#[rudask::task]`.
const CONCAT: &str = "rudask_tests::bag::concat";

/// A lazy, partitioned list of integers.
#[derive(Clone, Debug)]
pub struct Bag {
    graph: TaskGraph,
    keys: Vec<Key>,
    retain: Retain,
}

impl Bag {
    /// `items` in `npartitions` nearly equal partitions (at least one).
    pub fn from_vec(items: Vec<i64>, npartitions: usize) -> Bag {
        let n = npartitions.max(1);
        let name = format!("bag-{:016x}", fastrand_u64());
        let mut graph = TaskGraph::new();
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let part = items[items.len() * i / n..items.len() * (i + 1) / n].to_vec();
            let key = Key::from(format!("{name}-{i}"));
            graph.insert(TaskSpec {
                key: key.clone(),
                func: bag_partition.id().into(),
                args: vec![Arg::Value(hold(part))],
                options: Default::default(),
            });
            keys.push(key);
        }
        Bag { graph, keys, retain: Retain::none() }
    }

    /// Applies `task` to every partition.
    pub fn map_partitions<F: Task<Args = (Vec<i64>,), Output = Vec<i64>>>(&self, task: F) -> Bag {
        let mut graph = self.graph.clone();
        let keys = self
            .keys
            .iter()
            .map(|k| {
                let key = Key::from(format!("{}-{k}", task.name()));
                graph.insert(TaskSpec {
                    key: key.clone(),
                    func: task.id().into(),
                    args: vec![Arg::Dep(k.clone())],
                    options: Default::default(),
                });
                key
            })
            .collect();
        Bag { graph, keys, retain: self.retain.clone() }
    }
}

impl Collection for Bag {
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
        Ok(Bag { graph: TaskGraph::new(), keys, retain })
    }

    fn finalize(&self, out: Key) -> TaskSpec {
        TaskSpec {
            key: out,
            func: CONCAT.into(),
            args: self.keys.iter().cloned().map(Arg::Dep).collect(),
            options: Default::default(),
        }
    }
}

/// A source partition, passed through.
#[rudask::task]
pub fn bag_partition(items: Vec<i64>) -> Vec<i64> {
    items
}

/// Doubles every item (an example partition function).
#[rudask::task]
pub fn double(items: Vec<i64>) -> Vec<i64> {
    items.into_iter().map(|x| x * 2).collect()
}

fn concat(args: TaskArgs) -> TaskResult {
    let parts: Vec<Vec<i64>> = args.get_rest(0, "partitions")?;
    task_result(parts.concat())
}

inventory::submit! {
    TaskDef { id: CONCAT, prepare: |args| TaskCall::Sync(Box::new(move || concat(args))) }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
