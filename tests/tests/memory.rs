//! Workers under memory pressure, as real processes over TCP: results beyond
//! the memory limit spill to disk and come back intact (to clients, peers and
//! dependent tasks); a worker whose process memory passes the pause threshold
//! takes no new task until it falls back; one past the terminate threshold is
//! restarted by its nanny and its results are recomputed.

mod common;

use common::{eventually, key_states, wait_for_workers, within, Cluster};
use rudask::{Client, Error, Return, TaskExt, WorkerInfo};
use rudask_tests::inc;
use rudask_tests::memory_tasks::{block, checksum, hold_memory, mem_block, mem_checksum};

const MIB: usize = 1 << 20;

async fn worker_info(client: &Client, name: &str) -> WorkerInfo {
    let info = within(client.scheduler_info(&[])).await.expect("scheduler_info");
    info.workers.into_iter().find(|w| w.name == name).unwrap_or_else(|| panic!("no worker {name}"))
}

/// Files in the spill directories of the worker process `pid`.
fn spill_files(pid: u32) -> usize {
    let prefix = "rudask-worker-s-";
    let marker = format!("-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.contains(&marker)
        })
        .filter_map(|e| std::fs::read_dir(e.path().join("spill")).ok())
        .map(|d| d.count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_a_worker_beyond_its_memory_limit_it_spills_keeps_answering_and_returns_every_result_intact(
) {
    let mut cluster = Cluster::scheduler().await;
    // Only the managed-memory threshold (60% of 16 MiB): what spills then
    // does not depend on how the allocator returns memory to the system.
    cluster.spawn_worker_with(
        "s",
        2,
        &["--memory-limit", "16MiB", "--memory-spill", "off", "--memory-pause", "off"],
    );
    cluster.spawn_worker("t", 1);
    let client = cluster.client().await;
    wait_for_workers(&client, 2).await;

    let n = 40u64;
    let size = 2 * MIB;
    let expected: Vec<u64> = (0..n).map(|i| checksum(&block(i, size))).collect();
    let blocks: Vec<_> = (0..n)
        .map(|i| client.submit(mem_block.workers(["s"]), (i, size)).expect("submit"))
        .collect();
    let (done, _) =
        within(rudask::wait(blocks.clone(), Return::AllCompleted, None)).await.expect("wait");
    assert_eq!(done.len(), n as usize);

    // 80 MiB of results on a 16 MiB worker: most are on disk, and the
    // scheduler shows it.
    let info = eventually("the worker reports its spilled results", || {
        let client = client.clone();
        async move {
            let w = worker_info(&client, "s").await;
            // At most 4 of 40 fit under the 60% target; reports come with heartbeats.
            (w.spilled_keys >= n - 5 && w.managed_in_memory <= 16 * MIB as u64 * 6 / 10)
                .then_some(w)
        }
    })
    .await;
    assert_eq!(info.memory_limit, 16 * MIB as u64);
    assert!(info.spilled_bytes >= (n - 5) * size as u64, "spilled: {info:?}");
    assert!(info.managed_bytes >= n * size as u64, "the scheduler counts every result: {info:?}");
    assert!(spill_files(cluster.worker_pid("s")) > 0, "spill files exist");

    // A dependent task on the same worker reads its spilled inputs back.
    let sums: Vec<_> = blocks
        .iter()
        .map(|b| client.submit(mem_checksum.workers(["s"]), (b,)).expect("submit"))
        .collect();
    for (i, s) in sums.iter().enumerate() {
        let got = within(s).await.expect("checksum on s");
        assert_eq!(got, expected[i], "checksum of block {i} on s");
    }

    // A peer fetches spilled results.
    for i in [0usize, 7, 21] {
        let on_t = client.submit(mem_checksum.workers(["t"]), (&blocks[i],)).expect("submit");
        assert_eq!(within(on_t).await.expect("checksum on t"), expected[i]);
    }

    // The client gathers every result, intact.
    for (i, b) in blocks.iter().enumerate() {
        let got = within(b).await.expect("gathering a block");
        assert_eq!(got.len(), size);
        assert_eq!(checksum(&got), expected[i], "block {i} came back different");
    }

    // Released results leave no files behind.
    drop((blocks, done, sums));
    eventually("released results leave the spill directory empty", || async {
        (spill_files(cluster.worker_pid("s")) == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_past_its_pause_threshold_takes_no_task_until_memory_falls() {
    let mut cluster = Cluster::scheduler().await;
    // Pause at 80% of 256 MiB; a 240 MiB allocation passes it.
    cluster.spawn_worker_with("p", 2, &["--memory-limit", "256MiB"]);
    let client = cluster.client().await;
    wait_for_workers(&client, 1).await;

    // A result held on the worker (too large to travel with the scheduler's
    // notice), computed but not fetched yet.
    let early = client.submit(mem_block, (3, MIB)).expect("submit");
    within(rudask::wait([early.clone()], Return::AllCompleted, None)).await.expect("wait");

    let hog = client.submit(hold_memory, ("pause".to_string(), 240 * MIB)).expect("submit");
    let holding = rudask::coord::Event::new(&client, "pause-holding");
    assert!(within(holding.wait(None)).await.expect("event"));
    let info = eventually("the worker pauses", || {
        let client = client.clone();
        async move { Some(worker_info(&client, "p").await).filter(|w| w.paused) }
    })
    .await;
    assert!(info.memory > 200 * MIB as u64, "process memory: {info:?}");
    assert!(info.unmanaged_memory() > 200 * MIB as u64, "the hog's memory is unmanaged: {info:?}");

    // A paused worker takes no new task, but still serves its data.
    let later = client.submit(inc, (41,)).expect("submit");
    assert_eq!(key_states(&client, &[later.key()]).await, vec![Some("queued".to_string())]);
    let got = within(&early).await.expect("gather from a paused worker");
    assert!(got == block(3, MIB), "the result came back different");

    rudask::coord::Event::new(&client, "pause-release").set().await.expect("release");
    assert_eq!(within(&hog).await.expect("the hog"), 240 * MIB);
    assert_eq!(within(&later).await.expect("the task that waited"), 42);
    eventually("the worker resumes", || {
        let client = client.clone();
        async move { Some(worker_info(&client, "p").await).filter(|w| !w.paused) }
    })
    .await;

    // Released, the spilled result leaves no file behind.
    drop(early);
    eventually("the spilled result is deleted", || {
        let client = client.clone();
        async move { Some(worker_info(&client, "p").await).filter(|w| w.spilled_keys == 0) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_past_its_terminate_threshold_is_restarted_and_its_results_recomputed() {
    let mut cluster = Cluster::scheduler().await;
    cluster.spawn_worker_with_nanny("a", 1, &["--memory-limit", "192MiB"]);
    cluster.spawn_worker("b", 1);
    let client = cluster.client().await;
    wait_for_workers(&client, 2).await;
    let first = worker_info(&client, "a").await;

    // Results held only by a.
    let kept: Vec<_> = (0..4u64)
        .map(|i| {
            client
                .submit(mem_block.workers(["a"]).allow_other_workers(true), (i, MIB))
                .expect("submit")
        })
        .collect();
    within(rudask::wait(kept.clone(), Return::AllCompleted, None)).await.expect("wait");

    // A task on a that goes past 95% of its limit: the nanny restarts a each
    // time, and after the allowed failures the task fails as KilledWorker.
    let hog = client
        .submit(hold_memory.workers(["a"]), ("terminate".to_string(), 200 * MIB))
        .expect("submit");
    match within(&hog).await {
        Err(Error::KilledWorker { worker, message, .. }) => {
            assert_eq!(worker, "a");
            assert!(message.contains("workers that died"), "{message}");
        }
        other => panic!("the hog: expected a KilledWorker failure, got {other:?}"),
    }

    // The nanny is alive and its fresh worker joined again.
    assert!(cluster.worker_alive("a"), "the nanny keeps running");
    let again = eventually("a rejoins", || {
        let client = client.clone();
        async move {
            let info = within(client.scheduler_info(&[])).await.expect("scheduler_info");
            info.workers.into_iter().find(|w| w.name == "a")
        }
    })
    .await;
    assert_ne!(again.id, first.id, "a fresh worker");

    // a's results were recomputed (elsewhere or on the fresh a), intact.
    for (i, k) in kept.iter().enumerate() {
        let got = within(k).await.expect("a recomputed result");
        assert!(got == block(i as u64, MIB), "block {i} came back different");
    }

    // A cluster restart replaces the worker in place under its nanny.
    wait_for_workers(&client, 2).await;
    within(client.restart()).await.expect("restart");
    let info = wait_for_workers(&client, 2).await;
    assert!(info.workers.iter().any(|w| w.name == "a"));
    assert!(cluster.worker_alive("a"), "the nanny is still there");

    // Killing the nanny takes its worker with it.
    cluster.kill_worker("a").await;
    wait_for_workers(&client, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_workers_spill_the_values_they_hold_and_read_them_back() {
    // In-process results are held as values, not bytes: spilling encodes them.
    let limit = rudask::MemoryLimit::Bytes(16 * MIB as u64);
    let cluster = within(rudask::LocalCluster::builder().workers(1).memory_limit(limit).threads())
        .await
        .expect("a local cluster");
    let client = within(cluster.client()).await.expect("a client");
    let size = 2 * MIB;
    let blocks: Vec<_> =
        (0..10u64).map(|i| client.submit(mem_block, (i, size)).expect("submit")).collect();
    within(rudask::wait(blocks.clone(), Return::AllCompleted, None)).await.expect("wait");
    let info = eventually("the in-process worker spills", || {
        let client = client.clone();
        async move {
            let info = within(client.scheduler_info(&[])).await.expect("scheduler_info");
            info.workers.into_iter().find(|w| w.spilled_keys > 0)
        }
    })
    .await;
    assert_eq!(info.memory_limit, 16 * MIB as u64);
    let sums: Vec<_> =
        blocks.iter().map(|b| client.submit(mem_checksum, (b,)).expect("submit")).collect();
    for (i, (b, s)) in blocks.iter().zip(&sums).enumerate() {
        let expected = checksum(&block(i as u64, size));
        assert_eq!(within(s).await.expect("checksum"), expected);
        assert_eq!(checksum(&within(b).await.expect("gather")), expected, "block {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_memory_options_are_refused_with_the_reason() {
    let cluster = Cluster::scheduler().await;
    for (args, says) in [
        (&["--memory-limit", "lots"][..], "--memory-limit: memory limit \"lots\""),
        (&["--memory-limit", "150%"][..], "--memory-limit"),
        (&["--memory-pause", "2"][..], "--memory-pause: memory threshold \"2\""),
        (&["--memory-target", "x", "--no-nanny"][..], "--memory-target"),
    ] {
        let (ok, stderr) = cluster.run_worker_to_exit(args).await;
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
