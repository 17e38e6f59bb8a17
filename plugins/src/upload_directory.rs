//! `upload-directory`: the files of a client-side directory, carried in the
//! plugin's configuration, written into every worker's local directory
//! (workers that join later get the registered plugin, so the files too).

use rudask::plugin::{PluginError, PluginResult, WorkerPlugin, WorkerSetup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Writes a directory's files under `<worker local dir>/<name>/` on every
/// worker. Configuration: `{"name": "data", "files": {"sub/a.txt": "<hex>"}}`
/// with each file's contents hex-encoded; [`UploadDirectory::config_for`]
/// builds it from a directory on the client.
///
/// ```no_run
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// use rudask_plugins::UploadDirectory;
/// let config = UploadDirectory::config_for("./data")?;
/// client.register_worker_plugin("upload-directory", &config).await?;
/// // Tasks now find ./data/... at rudask::local_directory()/data/...
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadDirectory {
    /// Directory name under the worker's local directory.
    pub name: String,
    /// Relative path (with `/`) to hex-encoded contents.
    pub files: BTreeMap<String, String>,
}

impl UploadDirectory {
    /// Reads every file under `dir` (recursively) into the JSON configuration
    /// of the `upload-directory` plugin, named after `dir`'s last component.
    ///
    /// ```no_run
    /// let config = rudask_plugins::UploadDirectory::config_for("./data").unwrap();
    /// assert!(config.contains("\"name\":\"data\""));
    /// ```
    pub fn config_for(dir: impl AsRef<Path>) -> rudask::Result<String> {
        let dir = dir.as_ref();
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| {
                rudask::Error::InvalidArgument(format!(
                    "cannot upload {}: not an existing directory with a name",
                    dir.display()
                ))
            })?;
        let mut files = BTreeMap::new();
        collect(dir, dir, &mut files).map_err(|e| {
            rudask::Error::Io(format!("cannot read directory {} to upload: {e}", dir.display()))
        })?;
        let plugin = UploadDirectory { name, files };
        Ok(serde_json::to_string(&plugin).expect("strings and maps serialize"))
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let rel: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect();
            files.insert(rel.join("/"), hex(&std::fs::read(&path)?));
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// `rel` as a path that stays inside the upload directory.
fn safe(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

impl WorkerPlugin for UploadDirectory {
    fn name(&self) -> &str {
        "upload-directory"
    }

    fn setup(&mut self, worker: &WorkerSetup<'_>) -> PluginResult {
        let name = safe(&self.name).filter(|n| n.components().count() == 1).ok_or_else(|| {
            PluginError::new(format!(
                "upload-directory name {:?} must be one plain name",
                self.name
            ))
        })?;
        let root = worker.local_dir.join(name);
        for (rel, contents) in &self.files {
            let path = root.join(safe(rel).ok_or_else(|| {
                PluginError::new(format!("upload-directory file {rel:?} must be a relative path"))
            })?);
            let bytes = unhex(contents).ok_or_else(|| {
                PluginError::new(format!("upload-directory file {rel:?} is not hex-encoded"))
            })?;
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, bytes));
            written
                .map_err(|e| PluginError::new(format!("cannot write {}: {e}", path.display())))?;
        }
        tracing::info!(worker = worker.name, dir = %root.display(), files = self.files.len(), "directory uploaded");
        Ok(())
    }
}

fn make(config: &str) -> Result<Box<dyn WorkerPlugin>, PluginError> {
    let u: UploadDirectory = crate::config("upload-directory", config)?;
    Ok(Box::new(u))
}
rudask::register_worker_plugin!("upload-directory", make);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(unhex(&hex(b"\x00\xffab")).unwrap(), b"\x00\xffab");
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn paths_leaving_the_directory_are_refused() {
        assert!(safe("a/b.txt").is_some());
        assert!(safe("../x").is_none());
        assert!(safe("/etc/passwd").is_none());
        assert!(safe("").is_none());
    }
}
