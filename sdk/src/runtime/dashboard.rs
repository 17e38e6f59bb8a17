//! The scheduler's web dashboard and `/metrics`, and a worker's `/metrics`.
//!
//! The pages are rendered on the server (no script, no build step) and
//! reload themselves every two seconds; `/api/*.json` serve the same data to
//! programs. Every request takes one snapshot of the scheduler's state the
//! way clients' `scheduler_info` does: a message into the scheduler's event
//! loop answered over a oneshot channel, so the state stays in its one owner
//! without locks.

use super::dashboard_html as html;
use super::scheduler::SchedEvent;
use crate::error::{Error, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rudask_core::scheduler::Observation;
use tokio::sync::{mpsc, oneshot};

/// How many finished tasks the task stream shows.
const STREAM_SHOWN: usize = 1_000;

/// A bound listener for the dashboard, not serving yet.
#[derive(Debug)]
pub(crate) struct Dashboard {
    listener: std::net::TcpListener,
    url: String,
}

/// Binds `addr` (`host:port`, port 0 for any free one); `what` names the
/// setting in errors.
fn bind(addr: &str, what: &str) -> Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::Io(format!("could not serve {what} on {addr:?}: {e}; pick another address (HOST:PORT, port 0 for any free one) or turn it off"))
    })?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}/", listener.local_addr()?);
    Ok((listener, url))
}

impl Dashboard {
    /// Binds the dashboard's address, so a taken port fails the scheduler's start.
    pub(crate) fn bind(addr: &str) -> Result<Dashboard> {
        let (listener, url) = bind(addr, "the dashboard (--dashboard-address)")?;
        Ok(Dashboard { listener, url })
    }

    /// `http://host:port/`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Serves until the scheduler's event loop stops.
    pub(crate) async fn serve(self, inbox: mpsc::UnboundedSender<SchedEvent>) {
        let metrics = super::metrics::install();
        let stopped = inbox.clone();
        let app = App { inbox, metrics };
        let router = Router::new()
            .route("/", get(|State(a): State<App>| a.page(Page::Overview)))
            .route("/workers", get(|State(a): State<App>| a.page(Page::Workers)))
            .route("/stream", get(|State(a): State<App>| a.page(Page::Stream)))
            .route("/progress", get(|State(a): State<App>| a.page(Page::Progress)))
            .route("/datasets", get(|State(a): State<App>| a.page(Page::Datasets)))
            .route("/metrics", get(|State(a): State<App>| a.metrics()))
            .route("/api/overview.json", get(|State(a): State<App>| a.json(Page::Overview)))
            .route("/api/workers.json", get(|State(a): State<App>| a.json(Page::Workers)))
            .route("/api/stream.json", get(|State(a): State<App>| a.json(Page::Stream)))
            .route("/api/progress.json", get(|State(a): State<App>| a.json(Page::Progress)))
            .route("/api/datasets.json", get(|State(a): State<App>| a.json(Page::Datasets)))
            .with_state(app);
        serve(self.listener, router, async move { stopped.closed().await }).await;
    }
}

async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the HTTP server could not use its listener");
            return;
        }
    };
    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(until).await {
        tracing::error!(error = %e, "the HTTP server failed");
    }
}

/// Serves this process's `/metrics` on `addr` for a worker; returns its URL
/// and the server's task, which runs until aborted.
pub(crate) fn serve_worker_metrics(addr: &str) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let (listener, url) = bind(addr, "the worker's metrics (--metrics-address)")?;
    let handle = super::metrics::install();
    let router = Router::new().route("/metrics", get(move || async move { prometheus(handle) }));
    let task = tokio::spawn(serve(listener, router, std::future::pending()));
    Ok((format!("{url}metrics"), task))
}

fn prometheus(handle: &metrics_exporter_prometheus::PrometheusHandle) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
        .into_response()
}

/// The parts of the dashboard, each a page and a JSON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Page {
    Overview,
    Workers,
    Stream,
    Progress,
    Datasets,
}

#[derive(Clone, Debug)]
struct App {
    inbox: mpsc::UnboundedSender<SchedEvent>,
    metrics: &'static metrics_exporter_prometheus::PrometheusHandle,
}

type Answer = std::result::Result<Response, (StatusCode, &'static str)>;

impl App {
    async fn observe(&self) -> std::result::Result<Observation, (StatusCode, &'static str)> {
        let gone = (StatusCode::SERVICE_UNAVAILABLE, "the scheduler has stopped");
        let (reply, rx) = oneshot::channel();
        self.inbox.send(SchedEvent::Observe { stream: STREAM_SHOWN, reply }).map_err(|_| gone)?;
        rx.await.map_err(|_| gone)
    }

    async fn page(self, page: Page) -> Answer {
        let o = self.observe().await?;
        Ok(Html(html::render(page, &o)).into_response())
    }

    async fn json(self, page: Page) -> Answer {
        let o = self.observe().await?;
        let body = match page {
            Page::Overview => serde_json::to_value(&o),
            Page::Workers => serde_json::to_value(serde_json::json!({ "workers": o.workers })),
            Page::Stream => {
                serde_json::to_value(serde_json::json!({ "now_us": o.now_us, "stream": o.stream }))
            }
            Page::Progress => serde_json::to_value(
                serde_json::json!({ "tasks": o.tasks, "transitions": o.transitions, "functions": o.functions }),
            ),
            Page::Datasets => serde_json::to_value(serde_json::json!({ "datasets": o.datasets })),
        };
        let body = body.map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "could not encode"))?;
        Ok(Json(body).into_response())
    }

    async fn metrics(self) -> Answer {
        let o = self.observe().await?;
        super::metrics::scheduler_scrape(&o);
        Ok(prometheus(self.metrics))
    }
}
