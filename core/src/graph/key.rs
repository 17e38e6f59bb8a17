//! Task keys: cheap to clone, hashable names of results.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// The name of a task's result, unique on a scheduler.
///
/// Pure keys are derived from the function id and the encoded arguments, so
/// the same call gives the same key and is computed once:
///
/// ```
/// use rudask_core::graph::Key;
/// let a = Key::pure("app::inc", "inc", [b"\x01".as_slice()]);
/// let b = Key::pure("app::inc", "inc", [b"\x01".as_slice()]);
/// assert_eq!(a, b);
/// assert!(a.as_str().starts_with("inc-"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Key(Arc<str>);

impl Key {
    /// A key named after `name` with a hash of the function id and the parts.
    pub fn pure<'a>(func_id: &str, name: &str, parts: impl IntoIterator<Item = &'a [u8]>) -> Key {
        let mut h = Xxh3::new();
        h.update(func_id.as_bytes());
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Key::from(format!("{name}-{:032x}", h.digest128()))
    }

    /// A fresh random key named after `name`.
    pub fn random(name: &str, random: u128) -> Key {
        Key::from(format!("{name}-{random:032x}"))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key(Arc::from(s))
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key(Arc::from(s))
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}
