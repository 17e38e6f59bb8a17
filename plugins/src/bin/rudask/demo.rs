//! `rudask demo`: the published-dataset story, end to end, in one command.
//!
//! A local cluster with a durable dataset store; a CSV of accounts written on
//! the fly; `read_csv` → filter `balance < 0` → persist → publish as
//! `negative_accounts`; a second client lists the datasets, gets this one and
//! prints its head; the first client leaves and the data is still there; the
//! cluster (scheduler included) is shut down and started again over the same
//! store, and the dataset is still there.

use futures::future::BoxFuture;
use rudask::{Client, LocalCluster, Result};
use rudask_collections::dataframe::col;
use rudask_collections::DataFrame;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Rows per CSV file; one file is one partition.
const ROWS_PER_FILE: usize = 250_000;
const FILES: usize = 4;
const NAME: &str = "negative_accounts";

pub(crate) fn run(processes: bool, workers: usize) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let dir = std::env::temp_dir().join(format!("rudask-demo-{}", std::process::id()));
        let result = story(&dir, processes, workers).await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

async fn story(dir: &Path, processes: bool, workers: usize) -> Result<()> {
    let store = dir.join("store");
    let t = Instant::now();
    let pattern = write_accounts(&dir.join("csv"))?;
    println!(
        "1. wrote {} accounts as {FILES} CSV files in {:?} ({pattern})",
        ROWS_PER_FILE * FILES,
        t.elapsed()
    );

    let cluster = start(&store, processes, workers).await?;
    let first = cluster.client().await?;
    let t = Instant::now();
    let negative = DataFrame::read_csv(&pattern)?.filter(col("balance").lt(0))?;
    let negative = first.persist(&negative)?;
    first.wait_collection(&negative).await?;
    first.publish_dataset(NAME, &negative).await?;
    println!(
        "2. read_csv -> filter(balance < 0) -> persist -> publish_dataset({NAME:?}) in {:?}",
        t.elapsed()
    );

    let second = cluster.client().await?;
    list(&second, "3. a second client lists the datasets").await?;
    let got: DataFrame = second.get_dataset(NAME).await?;
    let head = second.compute(&got.head(5))?.await?;
    println!("   and prints the head of {NAME}:\n{}", pretty(&head)?);

    drop(negative);
    first.close();
    let rows = second.compute(&got.len())?.await?;
    println!("4. the first client left; {NAME} still has {rows} rows in the cluster's memory");
    drop(got);
    second.close();

    wait_on_disk(&cluster).await?;
    let scheduler = cluster.scheduler().clone();
    drop(cluster);
    scheduler.stopped().await;
    println!("5. the whole cluster, scheduler included, is shut down");

    let cluster = start(&store, processes, workers).await?;
    let third = cluster.client().await?;
    list(&third, "6. a new scheduler over the same store lists").await?;
    let t = Instant::now();
    let again: DataFrame = third.get_dataset(NAME).await?;
    let rows_again = third.compute(&again.len())?.await?;
    println!(
        "   get_dataset loaded it back from disk onto the workers: {rows_again} rows in {:?}",
        t.elapsed()
    );
    let head = third.compute(&again.head(3))?.await?;
    println!("{}", pretty(&head)?);
    if rows_again != rows {
        return Err(rudask::Error::Scheduler(format!(
            "the dataset came back with {rows_again} rows instead of {rows}"
        )));
    }
    third.unpublish_dataset(NAME).await?;
    println!("7. unpublished; its files are deleted. Done.");
    Ok(())
}

async fn start(store: &Path, processes: bool, workers: usize) -> Result<LocalCluster> {
    let t = Instant::now();
    let builder = LocalCluster::builder().workers(workers).dataset_store(store);
    let cluster = if processes { builder.processes().await? } else { builder.threads().await? };
    let mode = if processes { "worker processes over TCP" } else { "in-process workers" };
    println!(
        "   local cluster with {workers} {mode} and dataset store {} up in {:?}",
        store.display(),
        t.elapsed()
    );
    Ok(cluster)
}

async fn list(client: &Client, what: &str) -> Result<()> {
    println!("{what}:");
    for d in client.list_datasets().await? {
        let place = match (d.in_memory, d.on_disk) {
            (true, true) => "in memory and on disk",
            (true, false) => "in memory",
            (false, true) => "on disk only",
            (false, false) => "being computed",
        };
        println!(
            "   {:20} {:18} {:>3} partitions {:>10} bytes  {place}",
            d.name, d.type_tag, d.partitions, d.nbytes
        );
    }
    Ok(())
}

/// Waits until the dataset is written to the store (the workers write it in
/// the background after publishing).
async fn wait_on_disk(cluster: &LocalCluster) -> Result<()> {
    let client = cluster.client().await?;
    for _ in 0..500 {
        if client.list_datasets().await?.iter().all(|d| d.on_disk) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(rudask::Error::Timeout(Duration::from_secs(5)))
}

/// Writes `FILES` CSV files of accounts (`id,name,balance`), deterministic.
fn write_accounts(dir: &PathBuf) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for f in 0..FILES {
        let file = std::fs::File::create(dir.join(format!("accounts-{f}.csv")))?;
        let mut out = std::io::BufWriter::new(file);
        writeln!(out, "id,name,balance")?;
        for i in 0..ROWS_PER_FILE {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let balance = (seed % 2000) as i64 - 1000;
            writeln!(out, "{},name-{},{balance}", f * ROWS_PER_FILE + i, seed % 1000)?;
        }
        out.flush()?;
    }
    Ok(dir.join("accounts-*.csv").display().to_string())
}

fn pretty(table: &rudask_collections::Table) -> Result<String> {
    arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&**table))
        .map(|t| t.to_string())
        .map_err(|e| rudask::Error::Io(e.to_string()))
}
