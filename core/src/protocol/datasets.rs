//! Published datasets on the wire and in the scheduler's catalog: what a
//! client publishes, what a getter receives, and the durable record of each
//! dataset with the files its partitions were written to.

use crate::collection::CollectionMeta;
use crate::graph::{Key, TaskSpec};
use serde::{Deserialize, Serialize};

/// Longest dataset name accepted.
pub const MAX_DATASET_NAME: usize = 256;

/// A collection, a future or a list of futures as published: its meta
/// (type tag, partitions), the keys of its partitions and, for a collection
/// that was not persisted, the tasks that compute them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Publication {
    /// Type tag and rebuild information.
    pub meta: CollectionMeta,
    /// The partitions' keys, in order.
    pub keys: Vec<Key>,
    /// Tasks computing the keys, for a published graph (empty when the keys
    /// are in memory).
    pub graph: Vec<TaskSpec>,
}

/// A partition written to the dataset store by the worker that held it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPart {
    /// File name inside the dataset's directory.
    pub file: String,
    /// Bytes in the file.
    pub nbytes: u64,
    /// xxh3-64 of the file's bytes.
    pub checksum: u64,
    /// The value's encoding was one msgpack `bin` whose body alone was
    /// written (an Arrow IPC stream or raw array bytes): re-wrap on load.
    pub bin_body: bool,
}

/// The durable record of one dataset: what the catalog stores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The dataset's name.
    pub name: String,
    /// Directory of its partition files, relative to the store.
    pub dir: String,
    /// What was published.
    pub publication: Publication,
    /// Name of the client that published it.
    pub owner: String,
    /// When, in seconds since the Unix epoch.
    pub published_at: f64,
    /// One entry per key once written; `None` while not (yet) on disk.
    pub parts: Vec<Option<StoredPart>>,
    /// Why the dataset cannot be restored, if it cannot.
    pub damaged: Option<String>,
}

impl DatasetRecord {
    /// True when every partition is on disk.
    pub fn durable(&self) -> bool {
        self.parts.iter().all(Option::is_some)
    }
}

/// A change the driver writes to the durable catalog, in order.
#[derive(Clone, Debug)]
pub enum CatalogChange {
    /// Insert or replace a record.
    Put(DatasetRecord),
    /// Remove a record and its partition files.
    Delete {
        /// The dataset's name.
        name: String,
        /// Its directory, relative to the store.
        dir: String,
    },
}

/// One published dataset as [`crate::protocol::Request::ListDatasets`]
/// describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The name.
    pub name: String,
    /// The type tag of what was published.
    pub type_tag: String,
    /// Number of partitions.
    pub partitions: usize,
    /// Bytes of the partitions in memory or on disk (0 when unknown).
    pub nbytes: u64,
    /// Every partition is in memory on the workers.
    pub in_memory: bool,
    /// Every partition is written to the dataset store.
    pub on_disk: bool,
    /// A published graph: getters compute it.
    pub lazy: bool,
    /// Why it cannot be restored, if it cannot.
    pub damaged: Option<String>,
    /// The publishing client.
    pub owner: String,
    /// Seconds since the Unix epoch.
    pub published_at: f64,
}

/// Checks a dataset name: not empty, at most [`MAX_DATASET_NAME`] bytes, no
/// control characters.
///
/// ```
/// use rudask_core::protocol::check_dataset_name;
/// assert!(check_dataset_name("negative_accounts").is_ok());
/// assert!(check_dataset_name("").is_err());
/// assert!(check_dataset_name(&"x".repeat(300)).is_err());
/// ```
pub fn check_dataset_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a dataset name cannot be empty".into());
    }
    if name.len() > MAX_DATASET_NAME {
        return Err(format!(
            "a dataset name is at most {MAX_DATASET_NAME} bytes; this one has {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("the dataset name {name:?} contains control characters"));
    }
    Ok(())
}
