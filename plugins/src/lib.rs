//! # rudask-plugins
//!
//! Ready-made plugins, written only against rudask's public plugin traits.
//! Linking this crate offers them by name to the binary's command line and to
//! clients registering plugins at run time:
//!
//! - `task-stats` ([`TaskStats`]): per-function counts, failures and run-time
//!   histograms, queryable with [`rudask::Client::plugin_query`].
//! - `event-log` ([`EventLog`]): every task transition and logged event
//!   appended to a JSON-lines file, rotated by size.
//! - `idle-shutdown` ([`IdleShutdown`]): the cluster stops after N seconds
//!   with no tasks and no clients.
//! - `environ` ([`Environ`], worker): environment variables set on the worker
//!   (`rudask worker --plugin environ:{"vars":{"A":"1"}}`).
//! - `upload-directory` ([`UploadDirectory`], worker): a client-side
//!   directory's files written into every worker's local directory.
//!
//! ```no_run
//! # async fn demo(client: rudask::Client) -> rudask::Result<()> {
//! use rudask_plugins as _; // links the plugins into this binary
//! client.register_scheduler_plugin("task-stats", "{}").await?;
//! let stats = client.plugin_query("task-stats", "{}").await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod environ;
mod event_log;
mod idle_shutdown;
mod task_stats;
mod upload_directory;

pub use environ::Environ;
pub use event_log::{EventLog, EventLogConfig};
pub use idle_shutdown::IdleShutdown;
pub use task_stats::{FunctionStats, TaskStats, HISTOGRAM_BUCKETS};
pub use upload_directory::UploadDirectory;

use rudask::plugin::PluginError;

/// Parses a plugin's JSON configuration, naming the plugin in the error.
fn config<T: serde::de::DeserializeOwned>(plugin: &str, json: &str) -> Result<T, PluginError> {
    serde_json::from_str(json)
        .map_err(|e| PluginError::new(format!("bad {plugin} configuration {json:?}: {e}")))
}

/// Lower-case name of a scheduler task state, as written in logs and answers.
fn state_name(s: rudask::core::scheduler::TaskState) -> &'static str {
    use rudask::core::scheduler::TaskState as S;
    match s {
        S::Released => "released",
        S::Waiting => "waiting",
        S::NoWorker => "no-worker",
        S::Queued => "queued",
        S::Processing => "processing",
        S::Memory => "memory",
        S::Erred => "erred",
        S::Forgotten => "forgotten",
    }
}
