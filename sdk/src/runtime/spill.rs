//! Spilled results on disk: one file per value under the worker's spill
//! directory, holding the value's wire encoding as it is (a result that
//! arrived or was produced encoded is written without a copy).

use bytes::Bytes;
use rudask_core::worker::SpillBackend;
use std::io::Write;
use std::path::PathBuf;

/// Files under `dir`, created on the first spill.
#[derive(Debug)]
pub(crate) struct FileSpill {
    dir: PathBuf,
}

impl FileSpill {
    pub(crate) fn new(dir: PathBuf) -> Self {
        FileSpill { dir }
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }
}

impl SpillBackend for FileSpill {
    fn write(&mut self, id: u64, data: &Bytes) -> Result<(), String> {
        let path = self.path(id);
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::File::create(&path))
            .and_then(|mut f| f.write_all(data));
        written.map_err(|e| {
            // A partly written file is of no use to anyone.
            let _ = std::fs::remove_file(&path);
            format!("writing {}: {e}", path.display())
        })
    }

    fn read(&mut self, id: u64) -> Result<Bytes, String> {
        let path = self.path(id);
        std::fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| format!("reading {}: {e}", path.display()))
    }

    fn remove(&mut self, id: u64) {
        let _ = std::fs::remove_file(self.path(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rudask_core::worker::Store;
    use rudask_core::Payload;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rudask-spill-test-{name}-{}", std::process::id()))
    }

    fn files(dir: &PathBuf) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[test]
    fn spills_to_files_reads_them_back_and_removes_them() {
        let dir = tmp("roundtrip");
        let mut s = Store::default();
        s.set_backend(Box::new(FileSpill::new(dir.clone())));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        s.insert("a".into(), Payload::from(data.clone()));
        s.insert("b".into(), Payload::from(vec![1u8; 10]));
        s.insert("c".into(), Payload::from(vec![2u8; 10]));
        assert_eq!(s.spill_until(20, u64::MAX).keys, 1, "the oldest goes first");
        assert!(s.is_spilled(&"a".into()));
        assert_eq!(files(&dir), 1);
        assert_eq!(std::fs::read(dir.join("0.bin")).unwrap(), data, "raw bytes as sent");

        let back = s.get(&"a".into()).expect("read back");
        assert_eq!(back.as_bytes().unwrap().as_ref(), &data[..]);
        assert_eq!(files(&dir), 0, "reading back removes the file");

        s.spill_until(0, u64::MAX);
        assert_eq!(files(&dir), 3);
        s.remove(&"b".into());
        assert_eq!(files(&dir), 2, "deleting a key removes its file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_directory_keeps_values_in_memory() {
        let blocker = tmp("blocked");
        std::fs::write(&blocker, b"a file where the directory should be").unwrap();
        let mut s = Store::default();
        s.set_backend(Box::new(FileSpill::new(blocker.join("spill"))));
        s.insert("a".into(), Payload::from(vec![7u8; 64]));
        let out = s.spill_until(0, u64::MAX);
        assert_eq!(out.keys, 0);
        assert!(out.error.is_some());
        assert_eq!(s.managed(), 64);
        assert_eq!(s.get(&"a".into()).unwrap().as_bytes().unwrap().as_ref(), &[7u8; 64][..]);
        let _ = std::fs::remove_file(&blocker);
    }
}
