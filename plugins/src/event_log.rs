//! `event-log`: task transitions and logged events as JSON lines in a file.

use rudask::core::scheduler::TaskState;
use rudask::plugin::{PluginError, PluginResult, SchedulerPlugin, TransitionCtx};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
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
/// and every logged event (`{"t":..,"topic":..}`). The scheduler thread only
/// appends small records to a batch; a background thread formats and writes
/// them, so file I/O and JSON never slow the scheduler. Everything is on disk
/// once the plugin closes.
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
    batch: Batch,
    writer: Option<Background>,
}

#[derive(Debug)]
struct Background {
    batches: mpsc::Sender<Batch>,
    // Written batches come back to be refilled, so steady logging allocates nothing.
    // In a mutex only because plugins must be `Sync`; one thread ever locks it, once a batch.
    recycled: Mutex<mpsc::Receiver<Batch>>,
    failure: Arc<Mutex<Option<String>>>,
    thread: std::thread::JoinHandle<()>,
}

/// Records sent to the writer at once: enough to make the channel cheap.
const BATCH: usize = 1024;

/// Records whose strings live in one shared buffer, as byte ranges.
#[derive(Debug, Default)]
struct Batch {
    text: String,
    records: Vec<Record>,
}

type Span = (u32, u32);

#[derive(Debug)]
struct Record {
    t: f64,
    key: Option<Span>,
    from: Option<&'static str>,
    to: Option<&'static str>,
    worker: Option<Span>,
    duration_us: Option<u64>,
    error: Option<Span>,
    topic: Option<Span>,
}

impl Batch {
    fn span(&mut self, s: Option<&str>) -> Option<Span> {
        let s = s?;
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Some((start, self.text.len() as u32))
    }

    fn get(&self, span: Option<Span>) -> Option<&str> {
        span.map(|(a, b)| &self.text[a as usize..b as usize])
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // Writes out what is still batched when the scheduler drops the plugin.
        let _ = self.close();
    }
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
        EventLog { config, batch: Batch::default(), writer: None }
    }

    fn push(&mut self, record: Record) -> PluginResult {
        self.batch.records.push(record);
        if self.batch.records.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Hands the batch to the writer; reports a write failure it met since.
    fn send(&mut self) -> PluginResult {
        let w = self.writer.as_ref().ok_or_else(|| PluginError::new("event log is not started"))?;
        let fresh = w.recycled.lock().ok().and_then(|r| r.try_recv().ok()).unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, fresh);
        if w.batches.send(full).is_err() {
            return Err(PluginError::new("event log writer stopped"));
        }
        match w.failure.lock().map(|mut f| f.take()) {
            Ok(Some(e)) => Err(PluginError::new(e)),
            _ => Ok(()),
        }
    }
}

/// The file side, owned by the background thread.
struct Writer {
    config: EventLogConfig,
    out: Option<BufWriter<File>>,
    written: u64,
    line: Vec<u8>,
}

impl Writer {
    fn open(&mut self) -> Result<(), PluginError> {
        let path = &self.config.path;
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
            PluginError::new(format!("cannot open event log {}: {e}", path.display()))
        })?;
        self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
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
        let out = self.out.as_mut().ok_or_else(|| PluginError::new("event log is not open"))?;
        self.line.clear();
        serde_json::to_writer(&mut self.line, line).map_err(|e| PluginError::new(e.to_string()))?;
        self.line.push(b'\n');
        out.write_all(&self.line).map_err(|e| PluginError::new(format!("event log: {e}")))?;
        self.written += self.line.len() as u64;
        Ok(())
    }

    fn write_batch(&mut self, b: &Batch) -> PluginResult {
        for r in &b.records {
            self.write(&Line {
                t: r.t,
                key: b.get(r.key),
                from: r.from,
                to: r.to,
                worker: b.get(r.worker),
                duration_us: r.duration_us,
                error: b.get(r.error),
                topic: b.get(r.topic),
            })?;
        }
        Ok(())
    }

    fn run(
        mut self,
        batches: mpsc::Receiver<Batch>,
        recycle: mpsc::Sender<Batch>,
        failure: Arc<Mutex<Option<String>>>,
    ) {
        let fail = |e: PluginError| {
            tracing::error!(error = %e.message, "event log write failed");
            if let Ok(mut f) = failure.lock() {
                *f = Some(e.message);
            }
        };
        for mut b in batches {
            if let Err(e) = self.write_batch(&b) {
                fail(e);
            }
            b.text.clear();
            b.records.clear();
            let _ = recycle.send(b);
        }
        if let Some(Err(e)) = self.out.as_mut().map(|o| o.flush()) {
            fail(PluginError::new(format!("event log: {e}")));
        }
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
        let mut writer =
            Writer { config: self.config.clone(), out: None, written: 0, line: Vec::new() };
        // Opened here, so a bad path rejects the registration.
        writer.open()?;
        let (batches, batch_rx) = mpsc::channel();
        let (recycle, recycled) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        let thread = std::thread::Builder::new()
            .name("rudask-event-log".into())
            .spawn(move || writer.run(batch_rx, recycle, f))
            .map_err(|e| PluginError::new(format!("cannot start the event log writer: {e}")))?;
        let recycled = Mutex::new(recycled);
        self.writer = Some(Background { batches, recycled, failure, thread });
        Ok(())
    }

    fn close(&mut self) -> PluginResult {
        if self.writer.is_none() {
            return Ok(());
        }
        let sent = self.send();
        let Some(Background { batches, failure, thread, .. }) = self.writer.take() else {
            return sent;
        };
        drop(batches);
        if thread.join().is_err() {
            return Err(PluginError::new("event log writer panicked"));
        }
        sent?;
        let late = failure.lock().ok().and_then(|mut f| f.take());
        late.map_or(Ok(()), |e| Err(PluginError::new(e)))
    }

    fn transition(
        &mut self,
        key: &str,
        from: TaskState,
        to: TaskState,
        ctx: &TransitionCtx<'_>,
    ) -> PluginResult {
        let record = Record {
            t: now(),
            key: self.batch.span(Some(key)),
            from: Some(crate::state_name(from)),
            to: Some(crate::state_name(to)),
            worker: self.batch.span(ctx.worker),
            duration_us: ctx.duration_us,
            error: self.batch.span(ctx.error.map(|e| e.message.as_str())),
            topic: None,
        };
        self.push(record)
    }

    fn log_event(&mut self, topic: &str, time: f64) -> PluginResult {
        let record = Record {
            t: time,
            key: None,
            from: None,
            to: None,
            worker: None,
            duration_us: None,
            error: None,
            topic: self.batch.span(Some(topic)),
        };
        self.push(record)
    }
}

fn make(config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
    Ok(Box::new(EventLog::new(crate::config("event-log", config)?)))
}
rudask::register_scheduler_plugin!("event-log", make);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_reach_the_file_in_order_once_closed() {
        let dir = std::env::temp_dir().join(format!("rudask-event-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("unit.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut log =
            EventLog::new(EventLogConfig { path: path.clone(), max_bytes: 1 << 30, keep: 1 });
        log.start().unwrap();
        let n = 2 * BATCH + 5;
        for i in 0..n {
            let ctx = TransitionCtx {
                func: None,
                worker: Some("w0"),
                duration_us: Some(i as u64),
                error: None,
            };
            let key = format!("k{i}");
            log.transition(&key, TaskState::Processing, TaskState::Memory, &ctx).unwrap();
        }
        log.log_event("datasets", 1.5).unwrap();
        log.close().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), n + 1);
        for (i, l) in lines[..n].iter().enumerate() {
            assert_eq!(l["key"], format!("k{i}"));
            assert_eq!(l["worker"], "w0");
            assert_eq!(l["duration_us"], i as u64);
            assert_eq!(l["to"], "memory");
        }
        assert_eq!(lines[n]["topic"], "datasets");
    }
}
