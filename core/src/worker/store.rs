//! The results a worker holds: in memory in least-recently-used order, or
//! spilled to disk through a [`SpillBackend`] when the driver's memory
//! monitor asks for it ([`Store::spill_until`]). A spilled value is read back
//! transparently by [`Store::get`], which brings it back into memory as the
//! most recently used. Every operation on one key is O(1); only spilling walks
//! the LRU end, and only as far as it spills.
//!
//! ```
//! use rudask_core::worker::Store;
//! use rudask_core::Payload;
//! let mut s = Store::default();
//! s.insert("a".into(), Payload::from(vec![0u8; 10]));
//! assert_eq!(s.managed(), 10);
//! assert_eq!(s.get(&"a".into()).map(|p| p.len()), Some(10));
//! ```

use crate::protocol::Payload;
use crate::Key;
use bytes::Bytes;
use lru::LruCache;
use rustc_hash::{FxBuildHasher, FxHashMap};

/// Where spilled values go: files under a worker's spill directory in the
/// runtime, a map in tests. Values are written as their wire encoding, so a
/// value that arrived encoded is written as it is.
pub trait SpillBackend: Send + std::fmt::Debug {
    /// Stores `data` under `id` (an id is never reused while stored).
    fn write(&mut self, id: u64, data: &Bytes) -> Result<(), String>;
    /// The data stored under `id`.
    fn read(&mut self, id: u64) -> Result<Bytes, String>;
    /// Forgets `id`; missing ids are ignored.
    fn remove(&mut self, id: u64);
}

/// A value on disk: the backend's id for it and its size in bytes.
#[derive(Debug, Clone, Copy)]
struct OnDisk {
    id: u64,
    nbytes: u64,
}

/// What one [`Store::spill_until`] call did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SpillOutcome {
    /// Values moved to disk.
    pub keys: usize,
    /// Their in-memory size in bytes.
    pub bytes: u64,
    /// Why spilling stopped early, if a write failed; the value that could
    /// not be written stays in memory.
    pub error: Option<String>,
}

/// A worker's results, in memory or spilled. See the module docs.
#[derive(Debug)]
pub struct Store {
    memory: LruCache<Key, Payload, FxBuildHasher>,
    spilled: FxHashMap<Key, OnDisk>,
    managed: u64,
    spilled_bytes: u64,
    next_id: u64,
    backend: Option<Box<dyn SpillBackend>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            memory: LruCache::unbounded_with_hasher(FxBuildHasher),
            spilled: FxHashMap::default(),
            managed: 0,
            spilled_bytes: 0,
            next_id: 0,
            backend: None,
        }
    }
}

impl Store {
    /// Sets where spilled values go; without one nothing is spilled.
    pub fn set_backend(&mut self, backend: Box<dyn SpillBackend>) {
        self.backend = Some(backend);
    }

    /// Bytes of values held in memory.
    pub fn managed(&self) -> u64 {
        self.managed
    }

    /// Bytes of values on disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Number of values on disk.
    pub fn spilled_count(&self) -> usize {
        self.spilled.len()
    }

    /// Number of values held, in memory or on disk.
    pub fn len(&self) -> usize {
        self.memory.len() + self.spilled.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is held, in memory or on disk.
    pub fn contains(&self, key: &Key) -> bool {
        self.memory.contains(key) || self.spilled.contains_key(key)
    }

    /// Whether `key` is held on disk.
    pub fn is_spilled(&self, key: &Key) -> bool {
        self.spilled.contains_key(key)
    }

    /// Size of the value held for `key`, without reading it back.
    pub fn nbytes(&self, key: &Key) -> Option<u64> {
        match self.memory.peek(key) {
            Some(v) => Some(v.len() as u64),
            None => self.spilled.get(key).map(|d| d.nbytes),
        }
    }

    /// Holds `value` as the most recently used, replacing any older value.
    pub fn insert(&mut self, key: Key, value: Payload) {
        if !self.spilled.is_empty() {
            self.remove_spilled(&key);
        }
        self.managed += value.len() as u64;
        if let Some(old) = self.memory.put(key, value) {
            self.managed -= old.len() as u64;
        }
    }

    /// Holds `value` unless `key` is already held.
    pub fn insert_if_absent(&mut self, key: &Key, value: &Payload) {
        if !self.contains(key) {
            self.insert(key.clone(), value.clone());
        }
    }

    /// Drops `key` from memory and disk; true if it was held.
    pub fn remove(&mut self, key: &Key) -> bool {
        if let Some(v) = self.memory.pop(key) {
            self.managed -= v.len() as u64;
            return true;
        }
        self.remove_spilled(key)
    }

    fn remove_spilled(&mut self, key: &Key) -> bool {
        let Some(d) = self.spilled.remove(key) else { return false };
        self.spilled_bytes -= d.nbytes;
        if let Some(b) = self.backend.as_mut() {
            b.remove(d.id);
        }
        true
    }

    /// The value of `key`, marked most recently used. A spilled value is read
    /// back into memory; if it cannot be read it is dropped (logged) and this
    /// returns `None`, so whoever asked treats it as missing and the
    /// scheduler recomputes it.
    pub fn get(&mut self, key: &Key) -> Option<Payload> {
        if let Some(v) = self.memory.get(key) {
            return Some(v.clone());
        }
        let d = self.spilled.remove(key)?;
        self.spilled_bytes -= d.nbytes;
        let backend = self.backend.as_mut().expect("values are spilled only through a backend");
        let read = backend.read(d.id);
        backend.remove(d.id);
        match read {
            Ok(bytes) => {
                let value = Payload::from(bytes);
                self.managed += value.len() as u64;
                self.memory.put(key.clone(), value.clone());
                Some(value)
            }
            Err(e) => {
                tracing::error!(%key, error = %e, "could not read a spilled value back; it is lost and will be recomputed");
                None
            }
        }
    }

    /// Moves least-recently-used values to disk until at most `target` bytes
    /// stay in memory, nothing is left to spill, or `budget` bytes were
    /// written (at least one value is, however large; the caller spills the
    /// rest on its next round, so one round blocks only so long). A value
    /// that cannot be encoded stays in memory and is skipped; a failed write
    /// stops spilling and the value stays in memory.
    pub fn spill_until(&mut self, target: u64, budget: u64) -> SpillOutcome {
        let mut outcome = SpillOutcome::default();
        let Some(backend) = self.backend.as_mut() else {
            return outcome;
        };
        let mut kept = Vec::new();
        while self.managed > target && (outcome.keys == 0 || outcome.bytes < budget) {
            let Some((key, value)) = self.memory.pop_lru() else { break };
            let bytes = match value.encoded() {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(%key, error = %e, "a value that cannot be encoded stays in memory");
                    self.managed -= value.len() as u64;
                    kept.push((key, value));
                    continue;
                }
            };
            let id = self.next_id;
            if let Err(e) = backend.write(id, &bytes) {
                tracing::warn!(%key, error = %e, "could not spill to disk; the value stays in memory");
                outcome.error = Some(e);
                self.memory.put(key.clone(), value);
                self.memory.demote(&key);
                break;
            }
            self.next_id += 1;
            let nbytes = value.len() as u64;
            self.managed -= nbytes;
            self.spilled_bytes += nbytes;
            self.spilled.insert(key, OnDisk { id, nbytes });
            outcome.keys += 1;
            outcome.bytes += nbytes;
        }
        for (key, value) in kept.into_iter().rev() {
            self.managed += value.len() as u64;
            self.memory.put(key.clone(), value);
            self.memory.demote(&key);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spilled data in a map; writes fail while `full`.
    #[derive(Debug, Default)]
    struct MapBackend {
        files: std::sync::Arc<std::sync::Mutex<FxHashMap<u64, Bytes>>>,
        full: bool,
    }

    impl SpillBackend for MapBackend {
        fn write(&mut self, id: u64, data: &Bytes) -> Result<(), String> {
            if self.full {
                return Err("disk full".into());
            }
            self.files.lock().unwrap().insert(id, data.clone());
            Ok(())
        }
        fn read(&mut self, id: u64) -> Result<Bytes, String> {
            self.files.lock().unwrap().get(&id).cloned().ok_or_else(|| "gone".into())
        }
        fn remove(&mut self, id: u64) {
            self.files.lock().unwrap().remove(&id);
        }
    }

    fn store() -> (Store, std::sync::Arc<std::sync::Mutex<FxHashMap<u64, Bytes>>>) {
        let backend = MapBackend::default();
        let files = backend.files.clone();
        let mut s = Store::default();
        s.set_backend(Box::new(backend));
        (s, files)
    }

    fn put(s: &mut Store, key: &str, n: usize) {
        s.insert(key.into(), Payload::from(vec![key.as_bytes()[0]; n]));
    }

    #[test]
    fn spills_least_recently_used_first() {
        let (mut s, files) = store();
        put(&mut s, "a", 10);
        put(&mut s, "b", 10);
        put(&mut s, "c", 10);
        assert!(s.get(&"a".into()).is_some());
        let out = s.spill_until(15, u64::MAX);
        assert_eq!((out.keys, out.bytes, out.error), (2, 20, None));
        assert!(s.is_spilled(&"b".into()) && s.is_spilled(&"c".into()));
        assert!(!s.is_spilled(&"a".into()));
        assert_eq!((s.managed(), s.spilled_bytes(), s.spilled_count()), (10, 20, 2));
        assert_eq!(files.lock().unwrap().len(), 2);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn reads_spilled_values_back_intact() {
        let (mut s, files) = store();
        put(&mut s, "a", 10);
        put(&mut s, "b", 7);
        s.spill_until(0, u64::MAX);
        assert_eq!(s.managed(), 0);
        assert_eq!(s.nbytes(&"b".into()), Some(7));
        let b = s.get(&"b".into()).expect("reloaded");
        assert_eq!(b.as_bytes().map(|b| b.to_vec()), Some(vec![b'b'; 7]));
        assert!(!s.is_spilled(&"b".into()));
        assert_eq!((s.managed(), s.spilled_bytes()), (7, 10));
        assert_eq!(files.lock().unwrap().len(), 1);
        // Read back means most recently used: here "b" is older than "c" and "a".
        put(&mut s, "c", 1);
        s.get(&"a".into());
        assert_eq!(s.spill_until(11, u64::MAX).keys, 1);
        assert!(s.is_spilled(&"b".into()) && !s.is_spilled(&"a".into()));
    }

    #[test]
    fn removing_a_spilled_key_removes_its_file() {
        let (mut s, files) = store();
        put(&mut s, "a", 10);
        s.spill_until(0, u64::MAX);
        assert_eq!(files.lock().unwrap().len(), 1);
        assert!(s.remove(&"a".into()));
        assert!(files.lock().unwrap().is_empty());
        assert_eq!((s.spilled_bytes(), s.spilled_count(), s.len()), (0, 0, 0));
        assert!(!s.remove(&"a".into()));
        // Replacing a spilled value drops its file too.
        put(&mut s, "b", 3);
        s.spill_until(0, u64::MAX);
        put(&mut s, "b", 4);
        assert!(files.lock().unwrap().is_empty());
        assert_eq!(s.managed(), 4);
    }

    #[test]
    fn a_failed_write_keeps_the_value_in_memory() {
        let mut s = Store::default();
        s.set_backend(Box::new(MapBackend { full: true, ..Default::default() }));
        put(&mut s, "a", 10);
        put(&mut s, "b", 10);
        let out = s.spill_until(0, u64::MAX);
        assert_eq!(out.keys, 0);
        assert_eq!(out.error.as_deref(), Some("disk full"));
        assert_eq!((s.managed(), s.spilled_count()), (20, 0));
        assert_eq!(s.get(&"a".into()).map(|p| p.len()), Some(10));
        assert_eq!(s.get(&"b".into()).map(|p| p.len()), Some(10));
    }

    #[test]
    fn one_round_writes_at_most_its_budget_but_at_least_one_value() {
        let (mut s, _) = store();
        for k in ["a", "b", "c", "d"] {
            put(&mut s, k, 10);
        }
        assert_eq!(s.spill_until(0, 15).keys, 2);
        assert_eq!(s.spill_until(0, 1).keys, 1);
        assert_eq!(s.spill_until(0, 100).keys, 1);
        assert_eq!(s.spilled_count(), 4);
    }

    #[test]
    fn without_a_backend_nothing_spills() {
        let mut s = Store::default();
        put(&mut s, "a", 10);
        assert_eq!(s.spill_until(0, u64::MAX), SpillOutcome::default());
        assert_eq!(s.managed(), 10);
    }

    #[test]
    fn a_value_that_cannot_be_read_back_is_dropped() {
        let (mut s, files) = store();
        put(&mut s, "a", 10);
        s.spill_until(0, u64::MAX);
        files.lock().unwrap().clear();
        assert!(s.get(&"a".into()).is_none());
        assert!(!s.contains(&"a".into()));
        assert_eq!((s.managed(), s.spilled_bytes()), (0, 0));
    }
}
