//! The future API end to end: result, timeouts, status, exceptions,
//! tracebacks, cancelling (also from another client), done-callbacks,
//! retry, as_completed, wait, fire-and-forget and progress, against a
//! scheduler and workers running as separate processes.

mod common;

use common::{eventually, key_states, within, Cluster};
use futures::StreamExt;
use rudask::{as_completed, wait, AsCompleted, Error, Return, Status, TaskExt};
use rudask_tests::{fail, inc, needs_file, panics, slow, write_marker};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A path in the temporary directory that no other test (or run) uses.
fn marker(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    std::env::temp_dir().join(format!("rudask-{name}-{}-{nanos}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_status_done_exception_and_traceback() {
    let (_cluster, client) = Cluster::start(1, 1).await;

    let f = client.submit(slow.pure(false), (300, 5)).unwrap();
    assert_eq!(f.status(), Status::Pending);
    assert!(!f.done());
    assert_eq!(within(f.result()).await.unwrap(), 5);
    assert_eq!(f.status(), Status::Finished);
    assert!(f.done());
    assert!(within(f.exception()).await.is_none());
    assert!(within(f.traceback()).await.is_none());

    let e = client.submit(fail, ("no luck".to_string(),)).unwrap();
    match within(e.result()).await {
        Err(Error::Task { failure, .. }) => assert_eq!(failure.message, "no luck"),
        other => panic!("expected a task error, got {other:?}"),
    }
    assert_eq!(e.status(), Status::Error);
    assert!(e.done());
    assert!(matches!(within(e.exception()).await, Some(Error::Task { .. })));

    let p = client.submit(panics, ("kaboom".to_string(),)).unwrap();
    let tb = within(p.traceback()).await.expect("a panicking task has a traceback");
    assert!(!tb.is_empty());
    assert!(within(p.exception()).await.unwrap().to_string().contains("kaboom"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_timeout_expires_then_succeeds() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let f = client.submit(slow.pure(false), (1500, 3)).unwrap();
    let short = Duration::from_millis(100);
    match f.result_timeout(short).await {
        Err(Error::Timeout(d)) => assert_eq!(d, short),
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    assert_eq!(f.status(), Status::Pending, "a timeout does not cancel the task");
    assert_eq!(f.result_timeout(Duration::from_secs(30)).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_future_cancelled() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let f = client.submit(slow.pure(false), (5000, 1)).unwrap();
    f.cancel();
    assert!(matches!(within(f.result()).await, Err(Error::Cancelled { .. })));
    assert_eq!(f.status(), Status::Cancelled);
    assert!(f.done());
    assert!(matches!(within(f.exception()).await, Some(Error::Cancelled { .. })));
    let key = f.key().to_string();
    eventually("the scheduler forgets the cancelled key", || async {
        (key_states(&client, &[&key]).await == vec![None]).then_some(())
    })
    .await;
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_another_client_cancels_for_every_client() {
    let (cluster, a) = Cluster::start(1, 1).await;
    let b = cluster.client().await;
    let fa = a.submit(slow, (5000, 42)).unwrap();
    // B must submit after the scheduler has A's submission, or B's cancel
    // could come first and A's submit make the task anew.
    let key = fa.key().to_string();
    eventually("the scheduler has A's task", || async {
        (key_states(&a, &[&key]).await != vec![None]).then_some(())
    })
    .await;
    let fb = b.submit(slow, (5000, 42)).unwrap();
    assert_eq!(fa.key(), fb.key(), "a pure call is one key");
    fb.cancel();
    assert!(matches!(within(&fa).await, Err(Error::Cancelled { .. })));
    assert!(matches!(within(&fb).await, Err(Error::Cancelled { .. })));
    assert_eq!(fa.status(), Status::Cancelled);
    assert_eq!(fb.status(), Status::Cancelled);
    eventually("the scheduler forgets the cancelled key", || async {
        (key_states(&a, &[&key]).await == vec![None]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_callbacks_run_once_on_success_failure_and_when_already_done() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let calls = Arc::new(AtomicUsize::new(0));

    let f = client.submit(slow.pure(false), (200, 1)).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let n = calls.clone();
    f.add_done_callback(move |f| {
        n.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send((f.key().to_string(), f.status()));
    });
    let (key, status) = within(rx).await.unwrap();
    assert_eq!((key.as_str(), status), (f.key(), Status::Finished));

    // Already done: runs at once, on this thread.
    let n = calls.clone();
    f.add_done_callback(move |_| {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let e = client.submit(fail, ("x".to_string(),)).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    e.add_done_callback(move |f| {
        let _ = tx.send(f.status());
    });
    assert_eq!(within(rx).await.unwrap(), Status::Error);

    // The callback keeps the key wanted: dropping every handle does not
    // cancel the task, and the callback still gets the finished future.
    let g = client.submit(slow.pure(false), (200, 9)).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    g.add_done_callback(move |f| {
        let _ = tx.send(f.status());
    });
    drop(g);
    assert_eq!(within(rx).await.unwrap(), Status::Finished);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "each callback ran exactly once");

    // A panicking callback does not break the client's connection.
    let h = client.submit(slow.pure(false), (100, 4)).unwrap();
    h.add_done_callback(|_| panic!("callback panics on purpose"));
    assert_eq!(within(&h).await.unwrap(), 4);
    assert_eq!(within(client.submit(inc, (41,)).unwrap()).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_recomputes_a_failed_future_and_its_failed_dependencies() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let path = marker("retry");
    let p = path.to_string_lossy().to_string();

    let x = client.submit(needs_file.pure(false), (p.clone(), 10)).unwrap();
    let y = client.submit(inc.pure(false), (&x,)).unwrap();
    assert!(matches!(within(&y).await, Err(Error::Task { .. })));
    assert_eq!(x.status(), Status::Error);

    std::fs::write(&path, "now it exists").unwrap();
    y.retry().unwrap();
    assert_eq!(y.status(), Status::Pending);
    assert_eq!(within(&y).await.unwrap(), 11);
    // x was recomputed as y's failed dependency; this client's x future
    // hears of it too.
    assert_eq!(within(&x).await.unwrap(), 10);
    assert!(y.retry().is_ok(), "retrying a finished future does nothing");
    assert_eq!(within(&y).await.unwrap(), 11);

    let c = client.submit(slow.pure(false), (5000, 1)).unwrap();
    c.cancel();
    let _ = within(&c).await;
    assert!(matches!(c.retry(), Err(Error::InvalidArgument(_))));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_completed_yields_in_completion_order_including_failures_and_cancels() {
    let (_cluster, client) = Cluster::start(3, 1).await;
    let slowest = client.submit(slow.pure(false), (1500, 1)).unwrap();
    let middle = client.submit(slow.pure(false), (700, 2)).unwrap();
    let fastest = client.submit(slow.pure(false), (50, 3)).unwrap();
    let mut ac = as_completed([slowest.clone(), middle.clone(), fastest.clone()]);
    assert_eq!(AsCompleted::count(&ac), 3);
    let mut order = Vec::new();
    while let Some(f) = within(ac.next()).await {
        order.push(within(&f).await.unwrap());
    }
    assert_eq!(order, vec![3, 2, 1]);
    assert!(ac.is_empty());

    let ok = client.submit(inc, (1,)).unwrap();
    let bad = client.submit(fail, ("bad".to_string(),)).unwrap();
    let cancelled = client.submit(slow.pure(false), (5000, 0)).unwrap();
    let mut ac = as_completed([ok.clone(), bad.clone(), cancelled.clone()]);
    cancelled.cancel();
    let mut seen = HashSet::new();
    while let Some(f) = within(ac.next()).await {
        assert!(seen.insert((f.key().to_string(), f.status())), "yielded twice");
    }
    let want: HashSet<_> = [
        (ok.key().to_string(), Status::Finished),
        (bad.key().to_string(), Status::Error),
        (cancelled.key().to_string(), Status::Cancelled),
    ]
    .into();
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_completed_add_while_iterating_with_results_and_batches() {
    let (_cluster, client) = Cluster::start(2, 1).await;

    // A chain grown from inside the loop.
    let mut ac = as_completed([client.submit(inc, (0,)).unwrap()]);
    let mut last = 0;
    while let Some(f) = within(ac.next()).await {
        last = within(&f).await.unwrap();
        if last < 5 {
            ac.add(client.submit(inc, (last,)).unwrap());
            assert_eq!(AsCompleted::count(&ac), 1);
        }
    }
    assert_eq!(last, 5);

    let futs = client.map(inc.pure(false), (0..200).map(|i| (i,))).unwrap();
    let results: Vec<_> =
        within(as_completed(futs.clone()).with_results().collect::<Vec<_>>()).await;
    assert_eq!(results.len(), 200);
    let mut values: Vec<i64> = results.into_iter().map(|(_, r)| r.unwrap()).collect();
    values.sort();
    assert_eq!(values, (1..=200).collect::<Vec<_>>());

    let futs = client.map(inc.pure(false), (0..500).map(|i| (i,))).unwrap();
    let batches: Vec<_> = within(as_completed(futs).batches().collect::<Vec<_>>()).await;
    assert!(batches.iter().all(|b| !b.is_empty()));
    let keys: HashSet<String> = batches.iter().flatten().map(|f| f.key().to_string()).collect();
    assert_eq!(keys.len(), 500);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_completed_yields_each_of_5000_futures_once() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let futs = client.map(inc.pure(false), (0..5000).map(|i| (i,))).unwrap();
    let mut ac = as_completed(futs);
    let mut keys = HashSet::new();
    while let Some(f) = within(ac.next()).await {
        assert!(f.done());
        assert!(keys.insert(f.key().to_string()));
    }
    assert_eq!(keys.len(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_all_first_and_timeout() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let futs = client.map(inc.pure(false), (0..20).map(|i| (i,))).unwrap();
    let (done, not_done) = within(wait(futs, Return::AllCompleted, None)).await.unwrap();
    assert_eq!((done.len(), not_done.len()), (20, 0));

    let quick = client.submit(slow.pure(false), (50, 1)).unwrap();
    let long = client.submit(slow.pure(false), (5000, 2)).unwrap();
    let (done, not_done) =
        within(wait([long.clone(), quick.clone()], Return::FirstCompleted, None)).await.unwrap();
    assert_eq!(done.iter().map(|f| f.key()).collect::<Vec<_>>(), vec![quick.key()]);
    assert_eq!(not_done.iter().map(|f| f.key()).collect::<Vec<_>>(), vec![long.key()]);

    let limit = Duration::from_millis(200);
    match within(wait([long.clone()], Return::AllCompleted, Some(limit))).await {
        Err(Error::Timeout(d)) => assert_eq!(d, limit),
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    long.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_and_forget_task_runs_after_its_client_is_gone() {
    let (cluster, watcher) = Cluster::start(1, 1).await;
    let path = marker("fire-and-forget");
    let p = path.to_string_lossy().to_string();
    {
        let client = cluster.client().await;
        // The writer waits on a slow dependency, so it cannot have started
        // before the client lets go: only fire-and-forget keeps it alive.
        let before = client.submit(slow.pure(false), (500, 1)).unwrap();
        let writer = client.submit(write_marker.pure(false), (p.clone(), &before, 7)).unwrap();
        rudask::fire_and_forget(&writer).unwrap();
        let other = client.submit(inc, (1,)).unwrap();
        drop((before, writer));
        client.close();
        assert!(matches!(rudask::fire_and_forget(&other), Err(Error::Disconnected(_))));
    }
    let text = eventually("the fire-and-forget task wrote its file", || async {
        std::fs::read_to_string(&path).ok()
    })
    .await;
    assert_eq!(text, "1 7");
    eventually("the scheduler forgets every task afterwards", || async {
        (within(watcher.scheduler_info(&[])).await.unwrap().tasks == 0).then_some(())
    })
    .await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_returns_once_everything_is_done() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let mut futs = client.map(slow.pure(false), (0..6).map(|i| (100, i))).unwrap();
    futs.push(client.submit(fail, ("counted as done".to_string(),)).unwrap());
    within(rudask::progress(&futs)).await;
    assert!(futs.iter().all(|f| f.done()));
    rudask::progress::<i64>(&[]).await;
}
