//! Prometheus metrics of this process, through the `metrics` facade.
//!
//! Nothing here runs per task. Connections count the bytes they move with
//! one atomic add per write or frame on a handle taken when they start;
//! gauges are set from points that exist anyway: the worker's heartbeat, and
//! on the scheduler each scrape of `/metrics` (from one snapshot of its state).
//! Until [`install`] runs (a scheduler with a dashboard, a worker serving
//! `/metrics`) the handles are no-ops.
//! Memory limits, spilling and pauses reach the scheduler with each
//! heartbeat's memory report, so the scheduler's `/metrics` carries them per
//! worker (`rudask_worker_spilled_bytes`, `rudask_worker_paused`).

use metrics::{counter, gauge, Counter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use rudask_core::scheduler::Observation;
use std::sync::OnceLock;
use std::time::Duration;

/// Series not updated for this long are dropped from `/metrics`: those of
/// workers that left.
const STALE_AFTER: Duration = Duration::from_secs(30);

/// Installs the process's Prometheus recorder (once) and returns the handle
/// that renders it.
pub(crate) fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::GAUGE, Some(STALE_AFTER))
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed in this process; /metrics shows only what the scheduler and worker set directly"
            );
        }
        handle
    })
}

/// Counter of bytes this process wrote to rudask connections.
pub(crate) fn bytes_sent() -> Counter {
    counter!("rudask_network_sent_bytes_total")
}

/// Counter of bytes this process read from rudask connections.
pub(crate) fn bytes_received() -> Counter {
    counter!("rudask_network_received_bytes_total")
}

/// Counts a failed worker plugin hook.
pub(crate) fn worker_plugin_failed() {
    counter!("rudask_worker_plugin_hook_errors_total").increment(1);
}

/// Sets a worker's gauges, once per heartbeat.
pub(crate) fn worker_heartbeat(worker: &rudask_core::worker::Worker, rss: u64) {
    gauge!("rudask_worker_tasks", "state" => "assigned").set(worker.task_count() as f64);
    gauge!("rudask_worker_tasks", "state" => "executing").set(worker.executing() as f64);
    gauge!("rudask_worker_managed_bytes").set(worker.nbytes() as f64);
    gauge!("rudask_process_resident_bytes").set(rss as f64);
}

/// Sets the scheduler's gauges and counters from a snapshot of its state,
/// right before `/metrics` renders them.
pub(crate) fn scheduler_scrape(o: &Observation) {
    for (state, n) in o.tasks.by_name() {
        gauge!("rudask_tasks", "state" => state).set(n as f64);
    }
    counter!("rudask_transitions_total").absolute(o.transitions);
    counter!("rudask_scheduler_plugin_hook_errors_total").absolute(o.plugin_failures);
    gauge!("rudask_clients").set(o.clients as f64);
    gauge!("rudask_workers").set(o.workers.len() as f64);
    for w in &o.workers {
        let name = w.name.clone();
        gauge!("rudask_worker_slots", "worker" => name.clone()).set(f64::from(w.nthreads));
        gauge!("rudask_worker_processing", "worker" => name.clone()).set(w.processing as f64);
        gauge!("rudask_worker_memory_bytes", "worker" => name.clone()).set(w.memory as f64);
        gauge!("rudask_worker_managed_bytes", "worker" => name.clone()).set(w.managed_bytes as f64);
        gauge!("rudask_worker_spilled_bytes", "worker" => name.clone()).set(w.spilled_bytes as f64);
        gauge!("rudask_worker_paused", "worker" => name).set(if w.paused { 1.0 } else { 0.0 });
    }
    for f in &o.functions {
        counter!("rudask_tasks_done_total", "function" => f.function.clone()).absolute(f.done);
    }
    gauge!("rudask_datasets").set(o.datasets.len() as f64);
    gauge!("rudask_process_resident_bytes").set(super::memory::process_rss() as f64);
}
