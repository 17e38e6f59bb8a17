//! `event-log`: task transitions and logged events as JSON lines in a file.

use rudask::core::scheduler::TaskState;
use rudask::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Configuration of [`EventLog`] (`{"path": "events.jsonl"}` at least).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogConfig {
    /// The file lines are appended to.
    pub path: PathBuf,
    /// Size after which the file is rotated to `PATH.1` (older ones shift to
    /// `PATH.2`, ...).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_max_bytes() -> u64 {
    64 << 20
}

fn default_keep() -> u32 {
    3
}

/// Scheduler plugin appending one JSON object per line for every task
/// transition (`{"t":..,"key":..,"from":..,"to":..,"worker":..,"duration_us":..}`)
/// and every logged event (`{"t":..,"topic":..}`). Lines are buffered and
/// written out on rotation and when the plugin closes.
///
/// ```no_run
/// use rudask_plugins::{EventLog, EventLogConfig};
/// let opts = rudask::SchedulerOptions::default().plugin(EventLog::new(EventLogConfig {
///     path: "events.jsonl".into(),
///     max_bytes: 1 << 20,
///     keep: 2,
/// }));
/// ```
#[derive(Debug)]
pub struct EventLog {
    config: EventLogConfig,
    out: Option<BufWriter<File>>,
    written: u64,
    // Reused for every line, so that logging allocates nothing per transition.
    line: Vec<u8>,
}

impl Clone for EventLog {
    fn clone(&self) -> Self {
        EventLog::new(self.config.clone())
    }
}

#[derive(Serialize)]
struct Line<'a> {
    t: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
}

impl EventLog {
    /// A log writing to `config.path` once started.
    ///
    /// ```
    /// let log = rudask_plugins::EventLog::new(rudask_plugins::EventLogConfig {
    ///     path: "events.jsonl".into(),
    ///     max_bytes: 1 << 20,
    ///     keep: 1,
    /// });
    /// ```
    pub fn new(config: EventLogConfig) -> Self {
        EventLog { config, out: None, written: 0, line: Vec::new() }
    }

    fn open(&mut self) -> Result<(), PluginError> {
        let path = &self.config.path;
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
            PluginError::new(format!("cannot open event log {}: {e}", path.display()))
        })?;
        self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
        // Large buffer: a busy scheduler writes many short lines per millisecond.
        self.out = Some(BufWriter::with_capacity(1 << 18, file));
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), PluginError> {
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| PluginError::new(format!("event log: {e}")))?;
        }
        let path = &self.config.path;
        let numbered = |i: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.config.keep == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            for i in (1..self.config.keep).rev() {
                let _ = std::fs::rename(numbered(i), numbered(i + 1));
            }
            let _ = std::fs::rename(path, numbered(1));
        }
        self.open()
    }

    fn write(&mut self, line: &Line<'_>) -> PluginResult {
        if self.written >= self.config.max_bytes {
            self.rotate()?;
        }
        let out = self.out.as_mut().ok_or_else(|| PluginError::new("event log is not started"))?;
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).map_err(|e| PluginError::new(e.to_string()))?;
        self.line.push(b'\n');
        out.write_all(&self.line).map_err(|e| PluginError::new(format!("event log: {e}")))?;
        self.written += self.line.len() as u64;
        Ok(())
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl SchedulerPlugin for EventLog {
    fn name(&self) -> &str {
        "event-log"
    }

    fn start(&mut self) -> PluginResult {
        self.open()
    }

    fn close(&mut self) -> PluginResult {
        match self.out.take() {
            Some(mut out) => out.flush().map_err(|e| PluginError::new(format!("event log: {e}"))),
            None => Ok(()),
        }
    }

    fn transition(
        &mut self,
        key: &str,
        from: TaskState,
        to: TaskState,
        ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        self.write(&Line {
            t: now(),
            key: Some(key),
            from: Some(crate::state_name(from)),
            to: Some(crate::state_name(to)),
            worker: ctx.worker,
            duration_us: ctx.duration_us,
            error: ctx.error.map(|e| e.message.as_str()),
            topic: None,
        })
    }

    fn log_event(&mut self, topic: &str, time: f64) -> PluginResult {
        self.write(&Line {
            t: time,
            key: None,
            from: None,
            to: None,
            worker: None,
            duration_us: None,
            error: None,
            topic: Some(topic),
        })
    }
}

fn make(config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
    Ok(Box::new(EventLog::new(crate::config("event-log", config)?)))
}
rudask::register_scheduler_plugin!("event-log", make);
