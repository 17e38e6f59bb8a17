//! The [`Collection`] trait: a lazy, partitioned value (a dataframe, an array,
//! a bag) that the cluster can persist, compute and publish without knowing
//! its concrete type.
//!
//! A collection is a task graph plus the keys of its output partitions and a
//! serializable [`CollectionMeta`] (a type tag and whatever the type needs to
//! rebuild itself: a schema, a shape and chunks). The SDK's `persist` submits
//! the graph and rebuilds the collection over the keys now in memory;
//! `compute` adds the collection's finalize task and returns one future of
//! its output; publishing stores keys and meta, so another client rebuilds
//! the same collection with [`Collection::from_persisted`].
//!
//! ```
//! use rudask_core::collection::{Collection, CollectionMeta, Retain};
//! use rudask_core::graph::{Arg, Key, TaskGraph, TaskSpec};
//!
//! /// A bag of numbers: partitions are `Vec<i64>` results of tasks.
//! #[derive(Clone, Debug)]
//! struct Bag { graph: TaskGraph, keys: Vec<Key>, _retain: Retain }
//!
//! impl Collection for Bag {
//!     type Output = Vec<i64>;
//!     fn type_tag() -> String { "example.Bag<i64>".into() }
//!     fn graph(&self) -> TaskGraph { self.graph.clone() }
//!     fn keys(&self) -> Vec<Key> { self.keys.clone() }
//!     fn meta(&self) -> CollectionMeta {
//!         CollectionMeta::new(Self::type_tag(), self.keys.len(), &()).unwrap()
//!     }
//!     fn from_persisted(meta: &CollectionMeta, keys: Vec<Key>, retain: Retain)
//!         -> Result<Self, String> {
//!         meta.expect_type(&Self::type_tag())?;
//!         Ok(Bag { graph: TaskGraph::new(), keys, _retain: retain })
//!     }
//!     fn finalize(&self, out: Key) -> TaskSpec {
//!         TaskSpec {
//!             key: out,
//!             func: "example::concat".into(),
//!             args: self.keys.iter().cloned().map(Arg::Dep).collect(),
//!             options: Default::default(),
//!         }
//!     }
//! }
//!
//! let bag = Bag { graph: TaskGraph::new(), keys: vec![Key::from("p-0")], _retain: Retain::none() };
//! let again = bag.rebuild(vec![Key::from("q-0")], Retain::none()).unwrap();
//! assert_eq!(again.keys(), [Key::from("q-0")]);
//! assert!(bag.meta().expect_type("example.Array<f64>").unwrap_err().contains("example.Bag<i64>"));
//! ```

use crate::graph::{Key, TaskGraph, TaskSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A lazy, partitioned value the cluster can persist, compute and publish.
///
/// See the [module documentation](self) for a complete implementation.
pub trait Collection: Send + Sync + Sized + 'static {
    /// What computing the whole collection gives (one value on the client).
    type Output;

    /// Names the type, with its element type where it has one
    /// (`"rudask.DataFrame"`, `"rudask.Array<f64>"`). Rebuilding from a meta
    /// with another tag is a type error that names both.
    fn type_tag() -> String;

    /// The tasks that produce [`Collection::keys`], with their dependencies.
    /// Tasks may depend on keys outside the graph that are already in
    /// memory on the cluster (partitions of a persisted collection).
    fn graph(&self) -> TaskGraph;

    /// The keys of the output partitions, in order.
    fn keys(&self) -> Vec<Key>;

    /// The type tag and what is needed to rebuild the collection over
    /// persisted keys.
    fn meta(&self) -> CollectionMeta;

    /// The collection whose partitions are `keys`, already computed on the
    /// cluster; `retain` keeps them there for as long as the collection (or
    /// anything derived from it) lives. Fails when `meta` belongs to
    /// another type or does not match `keys`.
    fn from_persisted(
        meta: &CollectionMeta,
        keys: Vec<Key>,
        retain: Retain,
    ) -> Result<Self, String>;

    /// A task, keyed `out`, that depends on every output partition and
    /// combines them into [`Collection::Output`] on a worker.
    fn finalize(&self, out: Key) -> TaskSpec;

    /// This collection over persisted keys (its own meta, new partitions).
    fn rebuild(&self, keys: Vec<Key>, retain: Retain) -> Result<Self, String> {
        Self::from_persisted(&self.meta(), keys, retain)
    }
}

/// What a collection needs to rebuild itself: its type tag, its number of
/// partitions and a type-specific part (msgpack), such as a schema or a
/// shape and chunks. It is stored with published datasets.
///
/// ```
/// use rudask_core::collection::CollectionMeta;
/// let meta = CollectionMeta::new("example.Bag", 3, &vec!["x".to_string()]).unwrap();
/// assert_eq!(meta.partitions(), 3);
/// assert_eq!(meta.spec::<Vec<String>>().unwrap(), ["x"]);
/// assert!(meta.expect_type("example.Bag").is_ok());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionMeta {
    type_tag: String,
    partitions: usize,
    #[serde(with = "serde_bytes_vec")]
    spec: Vec<u8>,
}

impl CollectionMeta {
    /// A meta of type `type_tag` with `partitions` partitions and `spec`.
    pub fn new(
        type_tag: impl Into<String>,
        partitions: usize,
        spec: &impl Serialize,
    ) -> Result<Self, String> {
        let spec = rmp_serde::to_vec_named(spec).map_err(|e| e.to_string())?;
        Ok(CollectionMeta { type_tag: type_tag.into(), partitions, spec })
    }

    /// The type tag.
    pub fn type_tag(&self) -> &str {
        &self.type_tag
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The type-specific part.
    pub fn spec<T: DeserializeOwned>(&self) -> Result<T, String> {
        rmp_serde::from_slice(&self.spec)
            .map_err(|e| format!("the meta of a {} does not decode: {e}", self.type_tag))
    }

    /// `Ok` when this meta is of type `tag`; otherwise an error naming both.
    pub fn expect_type(&self, tag: &str) -> Result<(), String> {
        if self.type_tag == tag {
            Ok(())
        } else {
            Err(format!("expected a {tag}, found a {}", self.type_tag))
        }
    }

    /// `Ok` when `keys` has one key per partition.
    pub fn expect_partitions(&self, keys: &[Key]) -> Result<(), String> {
        if keys.len() == self.partitions {
            Ok(())
        } else {
            Err(format!(
                "a {} with {} partitions cannot be rebuilt over {} keys",
                self.type_tag,
                self.partitions,
                keys.len()
            ))
        }
    }
}

impl fmt::Debug for CollectionMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectionMeta")
            .field("type_tag", &self.type_tag)
            .field("partitions", &self.partitions)
            .field("spec_bytes", &self.spec.len())
            .finish()
    }
}

/// Keeps persisted partitions in memory on the cluster while any collection
/// built over them lives: the SDK puts the partitions' futures in it.
/// Clones share it; [`Retain::none`] keeps nothing.
#[derive(Clone, Default)]
pub struct Retain(Option<Arc<dyn Any + Send + Sync>>);

impl Retain {
    /// Keeps `holder` alive as long as any clone of this lives.
    pub fn new(holder: impl Any + Send + Sync) -> Self {
        Retain(Some(Arc::new(holder)))
    }

    /// Keeps nothing (for collections that are only graphs).
    pub fn none() -> Self {
        Retain(None)
    }

    /// True when something is kept.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Retain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Retain(..)" } else { "Retain(none)" })
    }
}

/// `Vec<u8>` as msgpack `bin` rather than an array of integers.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}
