//! The workload benchmark: the same workloads, names and fields as
//! `shared/anchors/dask_bench.py`, one JSON line each.
//!
//! `cargo run --release -p rudask-benches --bin workloads -- [--processes] [--workers 2] [--only a,b]`

use clap::Parser;
use rudask::{Client, LocalCluster, TaskExt};
// Links the plugins that `--plugins` registers by name.
use rudask_plugins as _;
use serde_json::{json, Value};
use std::time::Instant;

#[rudask::task]
fn inc(x: i64) -> i64 {
    x + 1
}

#[rudask::task]
fn add(x: i64, y: i64) -> i64 {
    x + y
}

#[derive(Parser, Debug)]
struct Args {
    /// Workers as separate processes over TCP (default: in-process workers).
    #[arg(long)]
    processes: bool,
    /// Number of workers.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Task slots per worker.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Size of the large task workloads.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Comma-separated workload names to run (default: all).
    #[arg(long, default_value = "")]
    only: String,
    /// Register the `task-stats` and `event-log` scheduler plugins (the log
    /// goes to a file in the temporary directory) before running.
    #[arg(long)]
    plugins: bool,
}

fn out(name: &str, fields: Value) {
    let mut line = json!({ "workload": name });
    if let (Some(o), Value::Object(f)) = (line.as_object_mut(), fields) {
        o.extend(f);
    }
    println!("{line}");
}

#[rudask::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let only: Vec<&str> = args.only.split(',').filter(|s| !s.is_empty()).collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);

    let t = Instant::now();
    let builder = LocalCluster::builder().workers(args.workers).threads_per_worker(args.threads);
    let cluster =
        if args.processes { builder.processes().await? } else { builder.threads().await? };
    let client = cluster.client().await?;
    if args.plugins {
        let log = std::env::temp_dir().join(format!("rudask-bench-{}.jsonl", std::process::id()));
        client.register_scheduler_plugin("task-stats", "{}").await?;
        client.register_scheduler_plugin("event-log", &json!({ "path": log }).to_string()).await?;
    }
    out("startup", json!({ "seconds": t.elapsed().as_secs_f64(), "processes": args.processes }));

    if want("map_gather_tiny") {
        for n in [1000, args.n] {
            map_gather_tiny(&client, n).await?;
        }
    }
    if want("roundtrip_latency") {
        roundtrip_latency(&client).await?;
    }
    if want("tree_reduce") {
        tree_reduce(&client, args.n / 2).await?;
    }
    if want("scatter_gather_200MB") {
        scatter_gather(&client).await?;
    }
    if want("as_completed") {
        as_completed(&client).await?;
    }
    Ok(())
}

async fn map_gather_tiny(client: &Client, n: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let futs = client.map(inc.pure(false), (0..n as i64).map(|i| (i,)))?;
    let res = client.gather(&futs).await?;
    let dt = t.elapsed().as_secs_f64();
    anyhow::ensure!(res.last() == Some(&(n as i64)), "wrong result");
    out("map_gather_tiny", json!({ "tasks": n, "seconds": dt, "tasks_per_s": n as f64 / dt }));
    Ok(())
}

async fn roundtrip_latency(client: &Client) -> anyhow::Result<()> {
    let mut lat = Vec::with_capacity(300);
    for i in 0..300 {
        let t = Instant::now();
        client.submit(inc.pure(false), (i,))?.await?;
        lat.push(t.elapsed().as_secs_f64());
    }
    lat.sort_by(f64::total_cmp);
    out(
        "roundtrip_latency",
        json!({ "p50_us": lat[lat.len() / 2] * 1e6, "p99_us": lat[lat.len() * 99 / 100] * 1e6 }),
    );
    Ok(())
}

async fn tree_reduce(client: &Client, n: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut layer = client.map(inc.pure(false), (0..n as i64).map(|i| (i,)))?;
    let mut total = n;
    while layer.len() > 1 {
        let mut next = Vec::with_capacity(layer.len() / 2 + 1);
        for pair in layer.chunks(2) {
            match pair {
                [a, b] => next.push(client.submit(add.pure(false), (a, b))?),
                [a] => next.push(a.clone()),
                _ => unreachable!("chunks(2) yields one or two"),
            }
        }
        // Counted like dask_bench.py: every entry of the next layer, including
        // a carried-over odd one.
        total += next.len();
        layer = next;
    }
    let r = layer[0].result().await?;
    let dt = t.elapsed().as_secs_f64();
    anyhow::ensure!(r == (1..=n as i64).sum::<i64>(), "wrong result {r}");
    out("tree_reduce", json!({ "tasks": total, "seconds": dt, "tasks_per_s": total as f64 / dt }));
    Ok(())
}

async fn scatter_gather(client: &Client) -> anyhow::Result<()> {
    let x: Vec<f64> = (0..25_000_000).map(|i| i as f64 * 0.5).collect();
    let nbytes = (x.len() * 8) as f64;
    let t = Instant::now();
    let fx = client.scatter([x]).await?;
    let dt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let y = fx[0].result().await?;
    let dt_g = t.elapsed().as_secs_f64();
    anyhow::ensure!(y.len() == 25_000_000, "wrong length");
    out(
        "scatter_gather_200MB",
        json!({ "scatter_MBps": nbytes / dt_s / 1e6, "gather_MBps": nbytes / dt_g / 1e6 }),
    );
    Ok(())
}

async fn as_completed(client: &Client) -> anyhow::Result<()> {
    use futures::StreamExt;
    let t = Instant::now();
    let mut done = rudask::as_completed(client.map(inc.pure(false), (0..5000).map(|i| (i,)))?);
    let mut cnt = 0usize;
    while done.next().await.is_some() {
        cnt += 1;
    }
    let dt = t.elapsed().as_secs_f64();
    anyhow::ensure!(cnt == 5000, "as_completed yielded {cnt} futures, not 5000");
    out("as_completed", json!({ "tasks": cnt, "tasks_per_s": cnt as f64 / dt }));
    Ok(())
}
