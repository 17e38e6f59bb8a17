//! The scheduler's web dashboard and `/metrics`, and a worker's `/metrics`,
//! over plain HTTP against real scheduler and worker processes: every route
//! answers, with the right content type, showing the cluster's state.
//!
//! `RUDASK_BROWSER_TESTS=1` also runs a headless Chromium (Debian's
//! `chromium` package, `/usr/bin/chromium`) that screenshots the overview;
//! without it that test returns at once.

mod common;

use common::{eventually, wait_for_workers, within, Cluster};
use rudask::Client;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// An HTTP response: status, content type, body.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: String,
    body: String,
}

/// `GET url` over a fresh connection, as HTTP/1.0 so the body simply runs
/// to the end of the connection.
async fn get(url: &str) -> Response {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) =
        rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = within(tokio::net::TcpStream::connect(host)).await.expect("connecting");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sending the request");
    let mut raw = Vec::new();
    within(stream.read_to_end(&mut raw)).await.expect("reading the response");
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type").then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Response { status, content_type, body: body.to_string() }
}

/// `GET url`, checking it answers 200 with a content type starting `kind`.
async fn get_ok(url: &str, kind: &str) -> String {
    let r = get(url).await;
    assert_eq!(r.status, 200, "GET {url}: {r:?}");
    assert!(r.content_type.starts_with(kind), "GET {url}: content type {:?}", r.content_type);
    r.body
}

async fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&get_ok(url, "application/json").await).expect("valid JSON")
}

/// The id of the test binary's `inc` task, as the scheduler names functions.
fn inc_id() -> &'static str {
    use rudask::Task;
    rudask_tests::inc.id()
}

/// A scheduler with its dashboard on a free port, one worker `dash-w0`, and
/// eight `inc` tasks in memory, the last one published as `dash-ds`.
async fn busy_cluster() -> (Cluster, Client, String, Vec<rudask::Future<i64>>) {
    let mut cluster = Cluster::scheduler_with(&["--dashboard-address", "127.0.0.1:0"]).await;
    let url = cluster.dashboard.clone().expect("the dashboard's URL");
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{url}");
    cluster.spawn_worker("dash-w0", 1);
    let client = cluster.client().await;
    wait_for_workers(&client, 1).await;
    let mut futures = client.map(rudask_tests::inc, (0..7).map(|i| (i,))).unwrap();
    futures.push(client.submit(rudask_tests::inc, (100,)).unwrap());
    let values = within(client.gather(&futures)).await.unwrap();
    assert_eq!(values.iter().sum::<i64>(), (1..=7).sum::<i64>() + 101);
    within(client.publish_dataset("dash-ds", &futures[7])).await.unwrap();
    (cluster, client, url, futures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_page_shows_the_cluster() {
    let (_cluster, _client, url, _futures) = busy_cluster().await;
    let inc = inc_id();

    let overview = get_ok(&url, "text/html").await;
    for part in ["dash-w0", inc, "dash-ds", "Task stream", "<rect"] {
        assert!(overview.contains(part), "the overview lacks {part:?}:\n{overview}");
    }
    let workers = get_ok(&format!("{url}workers"), "text/html").await;
    assert!(workers.contains("<td>dash-w0</td>") && !workers.contains("Published datasets"));
    let stream = get_ok(&format!("{url}stream"), "text/html").await;
    assert!(stream.contains("dash-w0") && stream.matches("<rect").count() == 8, "{stream}");
    let progress = get_ok(&format!("{url}progress"), "text/html").await;
    let row = format!("<td>{inc}</td>");
    assert!(progress.contains(&row), "{progress}");
    let done = progress.split(&row).nth(1).expect("the function's row");
    assert!(done.contains("<td class=\"num\">8</td>"), "8 done in {done}");
    let datasets = get_ok(&format!("{url}datasets"), "text/html").await;
    assert!(datasets.contains("<td>dash-ds</td>"), "{datasets}");

    let missing = get(&format!("{url}nope")).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_endpoint_serves_the_cluster_state() {
    let (_cluster, _client, url, _futures) = busy_cluster().await;
    let inc = inc_id();

    let all = get_json(&format!("{url}api/overview.json")).await;
    assert_eq!(all["tasks"]["memory"], 8, "{all}");
    assert!(all["transitions"].as_u64().unwrap() >= 16, "{all}");
    assert_eq!(all["clients"], 1);

    let workers = get_json(&format!("{url}api/workers.json")).await;
    let w = &workers["workers"][0];
    assert_eq!(
        (w["name"].as_str(), w["nthreads"].as_u64(), w["keys"].as_u64()),
        (Some("dash-w0"), Some(1), Some(8))
    );
    assert!(w["managed_bytes"].as_u64().unwrap() > 0, "{w}");

    let stream = get_json(&format!("{url}api/stream.json")).await;
    let records = stream["stream"].as_array().expect("a list");
    assert_eq!(records.len(), 8);
    for r in records {
        assert_eq!((r["function"].as_str(), r["worker"].as_str()), (Some(inc), Some("dash-w0")));
        assert!(r["start_us"].as_u64() <= r["stop_us"].as_u64(), "{r}");
    }

    let progress = get_json(&format!("{url}api/progress.json")).await;
    let f = progress["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == inc)
        .expect("inc");
    assert_eq!((f["done"].as_u64(), f["states"]["memory"].as_u64()), (Some(8), Some(8)), "{f}");

    let datasets = get_json(&format!("{url}api/datasets.json")).await;
    let d = &datasets["datasets"][0];
    assert_eq!((d["name"].as_str(), d["partitions"].as_u64()), (Some("dash-ds"), Some(1)), "{d}");
    assert!(d["nbytes"].as_u64().unwrap() > 0, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_serves_prometheus_metrics() {
    let (_cluster, _client, url, _futures) = busy_cluster().await;
    let text = get_ok(&format!("{url}metrics"), "text/plain").await;
    for line in [
        "rudask_tasks{state=\"memory\"} 8".to_string(),
        "rudask_tasks{state=\"erred\"} 0".to_string(),
        "rudask_workers 1".to_string(),
        "rudask_worker_slots{worker=\"dash-w0\"} 1".to_string(),
        format!("rudask_tasks_done_total{{function=\"{}\"}} 8", inc_id()),
        "rudask_datasets 1".to_string(),
        "rudask_scheduler_plugin_hook_errors_total 0".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "/metrics lacks {line:?}:\n{text}");
    }
    for counter in [
        "rudask_transitions_total",
        "rudask_network_received_bytes_total",
        "rudask_network_sent_bytes_total",
    ] {
        assert!(metric(&text, counter) > 0.0, "{counter} in\n{text}");
    }
    assert!(metric(&text, "rudask_process_resident_bytes") > 0.0, "{text}");
}

/// The value of the unlabelled series `name` in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_its_own_metrics() {
    let cluster = Cluster::scheduler().await;
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_rudask-test-worker"))
        .args(["worker", &cluster.addr, "--nthreads", "1", "--name", "metered"])
        .args(["--metrics-address", "127.0.0.1:0", "--connection-file"])
        .arg(cluster.connection_file.as_ref().expect("a TLS cluster"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting a worker");
    let mut lines = BufReader::new(worker.stdout.take().unwrap()).lines();
    let line =
        within(lines.next_line()).await.unwrap().expect("the worker printed its metrics URL");
    let url = line
        .strip_prefix("rudask worker metrics at ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let client = cluster.client().await;
    wait_for_workers(&client, 1).await;
    let futures = client.map(rudask_tests::inc, (0..5).map(|i| (i,))).unwrap();
    within(client.gather(&futures)).await.unwrap();
    // Gauges follow the heartbeat.
    let text = eventually("the worker's gauges show its 5 results", || {
        let url = url.clone();
        async move {
            let text = get_ok(&url, "text/plain").await;
            text.lines()
                .any(|l| l == "rudask_worker_tasks{state=\"executing\"} 0")
                .then_some(text)
                .filter(|t| metric(t, "rudask_worker_managed_bytes") > 0.0)
        }
    })
    .await;
    assert!(metric(&text, "rudask_process_resident_bytes") > 0.0, "{text}");
    assert!(metric(&text, "rudask_network_received_bytes_total") > 0.0, "{text}");
    assert!(metric(&text, "rudask_network_sent_bytes_total") > 0.0, "{text}");
    let other = get(&url.replace("/metrics", "/")).await;
    assert_eq!(other.status, 404, "a worker serves only /metrics");
}

/// Opt-in (`RUDASK_BROWSER_TESTS=1`): headless Chromium renders the
/// overview to a PNG that is not blank.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_dashboard() {
    if std::env::var_os("RUDASK_BROWSER_TESTS").is_none() {
        return;
    }
    let (_cluster, _client, url, _futures) = busy_cluster().await;
    let dir = std::env::temp_dir().join(format!("rudask-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("dashboard.png");
    let status = tokio::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status =
        within(status).await.expect("running /usr/bin/chromium (apt-get install chromium)");
    assert!(status.success(), "chromium failed: {status}");
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank page compresses to a few kilobytes; tables, bars and text do not.
    assert!(
        png.len() > 20_000,
        "the screenshot looks empty: {} bytes at {}",
        png.len(),
        shot.display()
    );
    if std::env::var_os("RUDASK_KEEP_SCREENSHOT").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
