//! [`TaskGraph`]: a set of tasks keyed by their keys, submitted together.

use super::{Key, TaskSpec};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// Tasks keyed by their keys, in insertion order. Dependencies between them
/// are [`Arg::Dep`](super::Arg::Dep) arguments naming other keys of the graph
/// (or keys already on the cluster).
///
/// ```
/// use rudask_core::graph::{Arg, Key, TaskGraph, TaskSpec};
/// let task = |key: &str, deps: &[&str]| TaskSpec {
///     key: Key::from(key),
///     func: "app::f".into(),
///     args: deps.iter().map(|d| Arg::Dep(Key::from(*d))).collect(),
///     options: Default::default(),
/// };
/// let mut g = TaskGraph::new();
/// g.insert(task("a", &[]));
/// g.insert(task("b", &["a"]));
/// g.insert(task("c", &["a", "x"]));
/// assert_eq!(g.len(), 3);
/// assert_eq!(g.external_dependencies().collect::<Vec<_>>(), [&Key::from("x")]);
/// let needed = g.cull(&[Key::from("b")]);
/// assert!(needed.contains("a") && needed.contains("b") && !needed.contains("c"));
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "Vec<TaskSpec>")]
pub struct TaskGraph {
    tasks: Vec<TaskSpec>,
    index: FxHashMap<Key, usize>,
}

impl TaskGraph {
    /// An empty graph.
    pub fn new() -> Self {
        TaskGraph::default()
    }

    /// Adds a task; a task with the same key is replaced and returned.
    pub fn insert(&mut self, spec: TaskSpec) -> Option<TaskSpec> {
        match self.index.get(&spec.key) {
            Some(&i) => Some(std::mem::replace(&mut self.tasks[i], spec)),
            None => {
                self.index.insert(spec.key.clone(), self.tasks.len());
                self.tasks.push(spec);
                None
            }
        }
    }

    /// Adds every task of `other` (replacing tasks with the same keys).
    pub fn extend(&mut self, other: TaskGraph) {
        for spec in other.tasks {
            self.insert(spec);
        }
    }

    /// The task with this key.
    pub fn get(&self, key: &str) -> Option<&TaskSpec> {
        self.index.get(key).map(|&i| &self.tasks[i])
    }

    /// Whether a task has this key.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks, in insertion order.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// The tasks, in insertion order.
    pub fn into_tasks(self) -> Vec<TaskSpec> {
        self.tasks
    }

    /// Keys the tasks depend on that are not tasks of this graph (each once).
    pub fn external_dependencies(&self) -> impl Iterator<Item = &Key> {
        let mut seen = FxHashSet::default();
        self.tasks
            .iter()
            .flat_map(TaskSpec::dependencies)
            .filter(move |k| !self.contains(k.as_str()) && seen.insert(*k))
    }

    /// The tasks needed to compute `outputs`: those keys and, transitively,
    /// their dependencies within the graph. Output keys not in the graph are
    /// ignored.
    pub fn cull(&self, outputs: &[Key]) -> TaskGraph {
        let mut keep = FxHashSet::default();
        let mut stack: Vec<&Key> = outputs.iter().collect();
        while let Some(k) = stack.pop() {
            let Some(t) = self.get(k.as_str()) else { continue };
            if keep.insert(&t.key) {
                stack.extend(t.dependencies());
            }
        }
        let mut out = TaskGraph::new();
        for t in self.tasks.iter().filter(|t| keep.contains(&t.key)) {
            out.insert(t.clone());
        }
        out
    }
}

impl FromIterator<TaskSpec> for TaskGraph {
    fn from_iter<I: IntoIterator<Item = TaskSpec>>(iter: I) -> Self {
        let mut g = TaskGraph::new();
        for spec in iter {
            g.insert(spec);
        }
        g
    }
}

impl From<Vec<TaskSpec>> for TaskGraph {
    fn from(tasks: Vec<TaskSpec>) -> Self {
        tasks.into_iter().collect()
    }
}

impl Serialize for TaskGraph {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.tasks.serialize(s)
    }
}

impl AsRef<TaskGraph> for TaskGraph {
    fn as_ref(&self) -> &TaskGraph {
        self
    }
}
