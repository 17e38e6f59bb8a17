//! The workload benchmark: the same workloads, names and fields as
//! `shared/anchors/dask_bench.py`, one JSON line each.
//!
//! `cargo run --release -p rudask-benches --bin workloads -- [--processes] [--workers 2] [--only a,b] [--insecure]`

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringBuilder};
use clap::Parser;
use rudask::{Client, LocalCluster, TaskExt};
use rudask_collections::dataframe::col;
use rudask_collections::DataFrame;
// Links the plugins that `--plugins` registers by name.
use rudask_plugins as _;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

#[rudask::task]
fn inc(x: i64) -> i64 {
    x + 1
}

#[rudask::task]
fn add(x: i64, y: i64) -> i64 {
    x + y
}

/// The actor of the `actor_call` workload.
#[rudask::actor]
struct BenchCounter {
    n: u64,
}

#[rudask::actor]
impl BenchCounter {
    pub(crate) fn new() -> Self {
        BenchCounter { n: 0 }
    }

    pub(crate) fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
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
    /// Run the cluster without TLS and token (default: TLS with a generated
    /// CA and token on every TCP connection, as `LocalCluster` does).
    #[arg(long)]
    insecure: bool,
}

impl Args {
    fn security(&self) -> rudask::SchedulerSecurity {
        if self.insecure {
            rudask::SchedulerSecurity::Insecure
        } else {
            rudask::SchedulerSecurity::Generate
        }
    }
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
    let builder = LocalCluster::builder()
        .workers(args.workers)
        .threads_per_worker(args.threads)
        .security(args.security());
    let cluster =
        if args.processes { builder.processes().await? } else { builder.threads().await? };
    let client = cluster.client().await?;
    if args.plugins {
        let log = std::env::temp_dir().join(format!("rudask-bench-{}.jsonl", std::process::id()));
        client.register_scheduler_plugin("task-stats", "{}").await?;
        client.register_scheduler_plugin("event-log", &json!({ "path": log }).to_string()).await?;
    }
    out(
        "startup",
        json!({
            "seconds": t.elapsed().as_secs_f64(),
            "processes": args.processes,
            "tls": !args.insecure,
        }),
    );

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
    coordination(&client, &want).await?;
    if want("actor_call") {
        actor_call(&client).await?;
    }
    if want("persist_publish_dataframe") {
        persist_publish_dataframe(&cluster, &client).await?;
        persist_publish_durable(&args).await?;
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

/// Ops each coordination workload times, sequential and pipelined.
const COORD_OPS: usize = 20_000;
/// Ops in flight in the pipelined runs.
const IN_FLIGHT: usize = 64;

/// `ops` operations made by `op(i)`, `IN_FLIGHT` at a time from one client;
/// ops per second.
async fn pipelined<F, Fut>(ops: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = rudask::Result<()>>,
{
    use futures::StreamExt;
    let t = Instant::now();
    let mut results = futures::stream::iter((0..ops).map(op)).buffer_unordered(IN_FLIGHT);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(ops as f64 / t.elapsed().as_secs_f64())
}

/// The primitives' workloads of dask_bench.py (each op waits for its answer),
/// plus the same ops pipelined (`pipelined_ops_per_s`).
async fn coordination(client: &Client, want: &(dyn Fn(&str) -> bool + Sync)) -> anyhow::Result<()> {
    use rudask::coord::{Lock, Queue, Semaphore, Variable};
    let n = COORD_OPS;
    if want("lock_acquire_release") {
        let lock = Lock::new(client, "bench-lock");
        let t = Instant::now();
        for _ in 0..n {
            lock.acquire(None).await?;
            lock.release().await?;
        }
        let seq = n as f64 / t.elapsed().as_secs_f64();
        // Pipelined: many handles, each acquiring and releasing in turn.
        let locks: Vec<Lock> =
            (0..n).map(|i| Lock::new(client, &format!("bench-lock-{}", i % IN_FLIGHT))).collect();
        let piped = pipelined(n, |i| {
            let lock = &locks[i];
            async move {
                lock.acquire(None).await?;
                lock.release().await
            }
        })
        .await?;
        out("lock_acquire_release", json!({ "ops_per_s": seq, "pipelined_ops_per_s": piped }));
    }
    if want("queue_put_get") {
        let q: Queue<i64> = Queue::new(client, "bench-q", 0);
        let t = Instant::now();
        for i in 0..n as i64 {
            q.put(i, None).await?;
        }
        for i in 0..n as i64 {
            anyhow::ensure!(q.get(None).await? == i, "queue out of order");
        }
        let seq = 2.0 * n as f64 / t.elapsed().as_secs_f64();
        let piped = pipelined(2 * n, |i| {
            let q = &q;
            async move {
                if i % 2 == 0 {
                    q.put(i as i64, None).await
                } else {
                    q.get(None).await.map(drop)
                }
            }
        })
        .await?;
        out("queue_put_get", json!({ "ops_per_s": seq, "pipelined_ops_per_s": piped }));
    }
    if want("variable_set_get") {
        let v: Variable<i64> = Variable::new(client, "bench-v");
        let t = Instant::now();
        for i in 0..n as i64 {
            v.set(i).await?;
            anyhow::ensure!(v.get(None).await? == i, "variable lost a set");
        }
        let seq = 2.0 * n as f64 / t.elapsed().as_secs_f64();
        let piped = pipelined(2 * n, |i| {
            let v = &v;
            async move {
                if i % 2 == 0 {
                    v.set(i as i64).await
                } else {
                    v.get(None).await.map(drop)
                }
            }
        })
        .await?;
        out("variable_set_get", json!({ "ops_per_s": seq, "pipelined_ops_per_s": piped }));
    }
    if want("semaphore_acquire_release") {
        let sem = Semaphore::new(client, "bench-sem", 2);
        let t = Instant::now();
        for _ in 0..n {
            sem.acquire(None).await?;
            sem.release().await?;
        }
        let seq = n as f64 / t.elapsed().as_secs_f64();
        let sems: Vec<Semaphore> = (0..IN_FLIGHT)
            .map(|_| Semaphore::new(client, "bench-sem-piped", IN_FLIGHT as u32))
            .collect();
        let piped = pipelined(n, |i| {
            let sem = &sems[i % IN_FLIGHT];
            async move {
                sem.acquire(None).await?;
                sem.release().await
            }
        })
        .await?;
        out("semaphore_acquire_release", json!({ "ops_per_s": seq, "pipelined_ops_per_s": piped }));
    }
    Ok(())
}

async fn actor_call(client: &Client) -> anyhow::Result<()> {
    let counter = client.submit_actor(BenchCounter::new, ()).await?;
    // The first call opens the connection to the actor's worker.
    counter.increment().await?;
    let t = Instant::now();
    for _ in 0..300 {
        counter.increment().await?;
    }
    let sequential = 300.0 / t.elapsed().as_secs_f64();

    const CALLS: usize = 50_000;
    const IN_FLIGHT: usize = 64;
    let t = Instant::now();
    let mut window = std::collections::VecDeque::with_capacity(IN_FLIGHT);
    let mut last = 0;
    for _ in 0..CALLS {
        if window.len() == IN_FLIGHT {
            last = window.pop_front().expect("a full window").await?;
        }
        window.push_back(counter.increment());
    }
    for f in window {
        last = f.await?;
    }
    let pipelined = CALLS as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(last == 301 + CALLS as u64, "wrong count {last}");
    out(
        "actor_call",
        json!({ "calls": 300, "calls_per_s": sequential, "pipelined_calls_per_s": pipelined }),
    );
    Ok(())
}

/// dask_bench.py's accounts: 4M rows, `name` one of 1,000 strings, `balance`
/// in -1000..1000 (made outside the timed part, as there).
fn accounts() -> RecordBatch {
    const ROWS: usize = 4_000_000;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut names = StringBuilder::with_capacity(ROWS, ROWS * 3);
    let mut balances = Vec::with_capacity(ROWS);
    for _ in 0..ROWS {
        names.append_value((next() % 1000).to_string());
        balances.push((next() % 2000) as i64 - 1000);
    }
    RecordBatch::try_from_iter([
        ("name", Arc::new(names.finish()) as ArrayRef),
        ("balance", Arc::new(Int64Array::from(balances)) as ArrayRef),
    ])
    .expect("two columns of equal length")
}

/// from_batches(16) -> filter(balance < 0) -> persist -> publish; a second
/// client gets it and takes its length; then groupby(name).sum(balance).
async fn persist_publish_dataframe(cluster: &LocalCluster, client: &Client) -> anyhow::Result<()> {
    let batch = accounts();
    let rows = batch.num_rows();
    let t = Instant::now();
    let negative = DataFrame::from_batches([batch], 16)?.filter(col("balance").lt(0))?;
    let negative = client.persist(&negative)?;
    client.wait_collection(&negative).await?;
    client.publish_dataset("negative_accounts", &negative).await?;
    let persist_publish = t.elapsed().as_secs_f64();

    let second = cluster.client().await?;
    let t = Instant::now();
    let got: DataFrame = second.get_dataset("negative_accounts").await?;
    let negative_rows = second.compute(&got.len())?.await?;
    let get_len = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let sums = second.compute(&got.groupby(["name"])?.sum("balance")?)?.await?;
    let groupby_sum = t.elapsed().as_secs_f64();
    anyhow::ensure!(sums.num_rows() == 1000, "{} groups, not 1000", sums.num_rows());
    out(
        "persist_publish_dataframe",
        json!({
            "rows": rows,
            "persist_publish_s": persist_publish,
            "get_len_s": get_len,
            "groupby_sum_s": groupby_sum,
            "negative_rows": negative_rows,
        }),
    );
    client.unpublish_dataset("negative_accounts").await?;
    Ok(())
}

/// The same persist + publish on a cluster with a durable dataset store:
/// until publish returns, and until every partition is written.
async fn persist_publish_durable(args: &Args) -> anyhow::Result<()> {
    let store = std::env::temp_dir().join(format!("rudask-bench-store-{}", std::process::id()));
    let builder = LocalCluster::builder()
        .workers(args.workers)
        .dataset_store(&store)
        .security(args.security());
    let cluster =
        if args.processes { builder.processes().await? } else { builder.threads().await? };
    let client = cluster.client().await?;
    let batch = accounts();
    let t = Instant::now();
    let negative = DataFrame::from_batches([batch], 16)?.filter(col("balance").lt(0))?;
    let negative = client.persist(&negative)?;
    client.wait_collection(&negative).await?;
    client.publish_dataset("negative_accounts", &negative).await?;
    let published = t.elapsed().as_secs_f64();
    while !client.list_datasets().await?.iter().all(|d| d.on_disk) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let durable = t.elapsed().as_secs_f64();
    let bytes: u64 = client.list_datasets().await?.iter().map(|d| d.nbytes).sum();
    out(
        "persist_publish_dataframe_durable",
        json!({ "persist_publish_s": published, "on_disk_s": durable, "bytes_on_disk": bytes }),
    );
    client.unpublish_dataset("negative_accounts").await?;
    drop(cluster);
    let _ = std::fs::remove_dir_all(&store);
    Ok(())
}
