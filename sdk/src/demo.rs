//! `rudask demo`: a local cluster running a small, real workload.

use crate::{Client, LocalCluster, Result};
use std::time::Instant;

/// Adds one.
#[crate::task]
fn demo_inc(x: i64) -> i64 {
    x + 1
}

/// Adds two numbers.
#[crate::task]
async fn demo_add(x: i64, y: i64) -> i64 {
    x + y
}

/// Mean and maximum of a vector.
#[crate::task]
fn demo_stats(v: Vec<f64>) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (mean, v.iter().copied().fold(f64::MIN, f64::max))
}

/// Fails for negative input, to show error reporting.
#[crate::task]
fn demo_checked_sqrt(x: f64) -> Result<f64, String> {
    if x < 0.0 {
        Err(format!("cannot take the square root of {x}"))
    } else {
        Ok(x.sqrt())
    }
}

pub(crate) async fn run(processes: bool, workers: usize) -> Result<()> {
    let t = Instant::now();
    let builder = LocalCluster::builder().workers(workers);
    let cluster = if processes { builder.processes().await? } else { builder.threads().await? };
    let client = cluster.client().await?;
    let mode = if processes { "worker processes over TCP" } else { "in-process workers" };
    println!(
        "local cluster with {workers} {mode} up in {:?} (scheduler {})",
        t.elapsed(),
        cluster.scheduler_address()
    );
    workload(&client).await?;
    Ok(())
}

async fn workload(client: &Client) -> Result<()> {
    let t = Instant::now();
    let n = 10_000;
    let incs = client.map(demo_inc, (0..n).map(|i| (i,)))?;
    let mut layer = incs.clone();
    while layer.len() > 1 {
        let mut next = Vec::with_capacity(layer.len() / 2 + 1);
        for pair in layer.chunks(2) {
            next.push(match pair {
                [a, b] => client.submit(demo_add, (a, b))?,
                [a] => a.clone(),
                _ => unreachable!("chunks(2) yields one or two"),
            });
        }
        layer = next;
    }
    let total = layer[0].result().await?;
    println!(
        "sum of inc(0..{n}) by tree reduction = {total} (expected {}) in {:?}",
        n * (n + 1) / 2,
        t.elapsed()
    );

    let gathered = client.gather(&incs[..5]).await?;
    println!("first results gathered: {gathered:?}");

    let data: Vec<f64> = (0..1_000_000).map(|i| (i % 1000) as f64).collect();
    let t = Instant::now();
    let scattered = client.scatter([data]).await?;
    let stats = client.submit(demo_stats, (&scattered[0],))?.result().await?;
    println!(
        "scattered 8 MB and computed (mean, max) = {stats:?} on a worker in {:?}",
        t.elapsed()
    );

    let bad = client.submit(demo_checked_sqrt, (-4.0,))?;
    match bad.result().await {
        Err(e) => println!("a failing task reports its error: {e}"),
        Ok(v) => println!("unexpected success: {v}"),
    }
    Ok(())
}
