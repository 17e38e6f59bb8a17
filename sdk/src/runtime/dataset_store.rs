//! The durable dataset store: a catalog of published datasets in an
//! embedded transactional database (redb) beside one directory of partition
//! files per dataset. The scheduler's driver owns the catalog; workers write
//! and read the partition files (the scheduler never relays data).
//!
//! A partition file is written to a temporary name, synced and renamed, so
//! a crash leaves either the whole file or none; its xxh3 checksum is in the
//! catalog, so a damaged file is detected when it is loaded back. A value
//! encoded as one msgpack `bin` (an Arrow IPC stream, an array chunk) is
//! written without that wrapper: a DataFrame partition's file is a plain
//! Arrow IPC stream.

use crate::error::{Error, Result};
use bytes::{BufMut, Bytes};
use redb::{Database, ReadableTable, TableDefinition};
use rudask_core::protocol::{CatalogChange, DatasetRecord, Payload, StoredPart};
use rudask_core::registry::{decode, encode_serde, TaskArgs, TaskCall, TaskDef, TaskResult};
use rudask_core::scheduler::LOAD_PART;
use rudask_core::{FailureKind, TaskFailure};
use std::io::Write;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("datasets");

/// The catalog of a dataset store, open for one scheduler at a time.
pub(crate) struct DatasetStore {
    dir: PathBuf,
    db: Database,
}

impl std::fmt::Debug for DatasetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatasetStore({})", self.dir.display())
    }
}

impl DatasetStore {
    /// Opens (creating if needed) the store in `dir`, checking now that it
    /// is writable rather than at the first publish.
    pub(crate) fn open(dir: &Path) -> Result<DatasetStore> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Io(format!(
                "dataset store {}: {what}: {e}; give --dataset-store a writable directory, or \
                 run with --no-dataset-store",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory", &e))?;
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        std::fs::write(&probe, b"probe").map_err(|e| fail("the directory is not writable", &e))?;
        let _ = std::fs::remove_file(&probe);
        let db = Database::create(dir.join("catalog.redb")).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                fail("the catalog is in use", &"another scheduler has this store open")
            }
            e => fail("cannot open the catalog", &e),
        })?;
        let txn = db.begin_write().map_err(|e| fail("cannot write the catalog", &e))?;
        txn.open_table(CATALOG).map_err(|e| fail("cannot write the catalog", &e))?;
        txn.commit().map_err(|e| fail("cannot write the catalog", &e))?;
        Ok(DatasetStore { dir: dir.to_path_buf(), db })
    }

    /// The store's directory, as workers are told it.
    pub(crate) fn dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// Every record, with a record whose files are missing or truncated
    /// marked damaged (a record that does not decode is skipped, loudly).
    pub(crate) fn load(&self) -> Result<Vec<DatasetRecord>> {
        let read = || -> std::result::Result<Vec<DatasetRecord>, Box<dyn std::error::Error>> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(CATALOG)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (name, bytes) = entry?;
                match decode::<DatasetRecord>(&Payload::from(bytes.value().to_vec())) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::error!(dataset = name.value(), error = %e,
                        "a catalog record does not decode; the dataset is skipped"),
                }
            }
            Ok(out)
        };
        let mut records = read().map_err(|e| {
            Error::Io(format!("dataset store {}: cannot read the catalog: {e}", self.dir.display()))
        })?;
        for r in &mut records {
            if r.damaged.is_some() {
                continue;
            }
            for part in r.parts.iter().flatten() {
                let path = self.dir.join(&r.dir).join(&part.file);
                let len = std::fs::metadata(&path).map(|m| m.len()).ok();
                if len != Some(part.nbytes) {
                    r.damaged = Some(format!(
                        "partition file {} is {} (expected {} bytes)",
                        path.display(),
                        len.map_or("missing".to_string(), |l| format!("{l} bytes")),
                        part.nbytes
                    ));
                    tracing::error!(dataset = %r.name, reason = r.damaged.as_deref(), "damaged dataset");
                    break;
                }
            }
        }
        Ok(records)
    }

    /// Writes one change of the catalog; a failure is logged (the datasets
    /// stay published in memory).
    pub(crate) fn apply(&self, change: CatalogChange) {
        let result = match &change {
            CatalogChange::Put(r) => self.put(r),
            CatalogChange::Delete { name, dir } => self.delete(name, dir),
        };
        if let Err(e) = result {
            tracing::error!(store = %self.dir.display(), error = %e, ?change, "could not update the dataset catalog");
        }
    }

    fn put(&self, r: &DatasetRecord) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let bytes = encode_serde(r)?.encoded()?;
        let txn = self.db.begin_write()?;
        txn.open_table(CATALOG)?.insert(r.name.as_str(), &bytes[..])?;
        txn.commit()?;
        Ok(())
    }

    fn delete(&self, name: &str, dir: &str) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let txn = self.db.begin_write()?;
        txn.open_table(CATALOG)?.remove(name)?;
        txn.commit()?;
        match std::fs::remove_dir_all(self.dir.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// The body of `v` when it is exactly one msgpack `bin`.
fn bin_body(v: &[u8]) -> Option<&[u8]> {
    let (len, head) = match v.first()? {
        0xc4 => (usize::from(*v.get(1)?), 2),
        0xc5 => (usize::from(u16::from_be_bytes(v.get(1..3)?.try_into().ok()?)), 3),
        0xc6 => (u32::from_be_bytes(v.get(1..5)?.try_into().ok()?) as usize, 5),
        _ => return None,
    };
    (v.len() == head + len).then(|| &v[head..])
}

/// Writes one partition's encoded value to `store/dir/file`, atomically.
pub(crate) fn write_part(
    store: &str,
    dir: &str,
    file: &str,
    value: &Bytes,
) -> std::result::Result<StoredPart, String> {
    let (body, is_bin) = match bin_body(value) {
        Some(b) => (b, true),
        None => (&value[..], false),
    };
    let dir = Path::new(store).join(dir);
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(StoredPart {
        file: file.to_string(),
        nbytes: body.len() as u64,
        checksum: xxh3_64(body),
        bin_body: is_bin,
    })
}

/// The task that loads a partition back: `(path, checksum, bin_body)` →
/// the value as it was encoded when it was written.
fn load_part(args: TaskArgs) -> TaskResult {
    let path: String = args.get(0, "path")?;
    let checksum: u64 = args.get(1, "checksum")?;
    let is_bin: bool = args.get(2, "bin_body")?;
    let damaged = |why: String| {
        TaskFailure::new(
            FailureKind::Error,
            format!("partition file {path} cannot be loaded: {why}; the dataset is damaged"),
        )
    };
    let body = std::fs::read(&path).map_err(|e| damaged(e.to_string()))?;
    if xxh3_64(&body) != checksum {
        return Err(damaged("its checksum does not match what was written".into()));
    }
    if !is_bin {
        return Ok(Payload::from(body));
    }
    let mut out = rudask_core::mem::bytes_with_capacity(body.len() + 5);
    out.put_u8(0xc6);
    out.put_u32(u32::try_from(body.len()).map_err(|_| damaged("larger than 4 GiB".into()))?);
    out.put_slice(&body);
    Ok(Payload::from(out.freeze()))
}

inventory::submit! {
    TaskDef { id: LOAD_PART, prepare: |args| TaskCall::Sync(Box::new(move || load_part(args))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rudask-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn parts_round_trip_through_files_and_bin_values_are_written_bare() {
        let store = temp("parts");
        let s = store.display().to_string();
        let value = rudask_core::registry::encode(&vec![7u8; 100]).unwrap().encoded().unwrap();
        let part = write_part(&s, "d", "part-00000", &value).unwrap();
        assert!(part.bin_body && part.nbytes == 100);
        let path = store.join("d/part-00000").display().to_string();
        let args = |c: u64| {
            use rudask_core::registry::encode;
            let args = vec![encode(&path).unwrap(), encode(&c).unwrap(), encode(&true).unwrap()];
            TaskArgs::new("load", args)
        };
        let back = load_part(args(part.checksum)).unwrap();
        assert_eq!(back.encoded().unwrap(), value);
        let err = load_part(args(part.checksum ^ 1)).unwrap_err();
        assert!(err.message.contains("checksum"), "{}", err.message);
        let _ = std::fs::remove_dir_all(&store);
    }

    #[test]
    fn the_catalog_survives_reopening_and_missing_files_mark_a_dataset_damaged() {
        let dir = temp("catalog");
        let record = |name: &str, nbytes: u64| DatasetRecord {
            name: name.into(),
            dir: format!("dir-{name}"),
            publication: rudask_core::protocol::Publication {
                meta: rudask_core::collection::CollectionMeta::new("t", 1, &()).unwrap(),
                keys: vec!["k".into()],
                graph: Vec::new(),
            },
            owner: "me".into(),
            published_at: 0.0,
            parts: vec![Some(StoredPart {
                file: "p".into(),
                nbytes,
                checksum: 0,
                bin_body: false,
            })],
            damaged: None,
        };
        {
            let store = DatasetStore::open(&dir).unwrap();
            assert!(DatasetStore::open(&dir).unwrap_err().to_string().contains("in use"));
            std::fs::create_dir_all(dir.join("dir-good")).unwrap();
            std::fs::write(dir.join("dir-good/p"), b"abc").unwrap();
            store.apply(CatalogChange::Put(record("good", 3)));
            store.apply(CatalogChange::Put(record("bad", 9)));
            store.apply(CatalogChange::Put(record("gone", 1)));
            store.apply(CatalogChange::Delete { name: "gone".into(), dir: "dir-gone".into() });
        }
        let store = DatasetStore::open(&dir).unwrap();
        let mut got = store.load().unwrap();
        got.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(got.len(), 2);
        assert!(got[0].name == "bad" && got[0].damaged.as_deref().unwrap().contains("missing"));
        assert!(got[1].name == "good" && got[1].damaged.is_none());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_store_is_refused_at_open() {
        let file = temp("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = DatasetStore::open(&file).unwrap_err().to_string();
        assert!(err.contains("--dataset-store"), "{err}");
        let _ = std::fs::remove_file(&file);
    }
}
