//! Tasks that submit tasks: the worker's shared client inside tasks,
//! seceding so that waiting tasks do not hold the slots their children need,
//! and the blocking client, from tasks and from plain synchronous code.

mod common;

use common::{on_plain_thread, within, Cluster};
use rudask::{Error, LocalCluster, TaskExt};
use rudask_tests::{
    fib_async, fib_sync, inc, inc_from_task, nested_unless_zero, seceded_sleep, slow, spin,
    wait_on_spin, worker_client_in_async_task,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_submits_through_the_workers_client() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    // One slot: the inner task can only run because the outer one seceded.
    assert_eq!(within(client.submit(inc_from_task, (41,)).unwrap()).await.unwrap(), 42);
    let many = client.map(inc_from_task, (0..10).map(|i| (i,))).unwrap();
    assert_eq!(within(client.gather(&many)).await.unwrap(), (1..=10).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fibonacci_by_nested_submits_on_one_worker_with_two_threads() {
    let (_cluster, client) = Cluster::start(1, 2).await;
    assert_eq!(within(client.submit(fib_async, (20,)).unwrap()).await.unwrap(), 6765);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fibonacci_by_nested_submits_on_two_workers_with_one_thread() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    assert_eq!(within(client.submit(fib_async, (20,)).unwrap()).await.unwrap(), 6765);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fibonacci_through_worker_client_on_one_worker_with_two_threads() {
    let (_cluster, client) = Cluster::start(1, 2).await;
    assert_eq!(within(client.submit(fib_sync, (20,)).unwrap()).await.unwrap(), 6765);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fibonacci_through_worker_client_on_two_workers_with_one_thread() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    assert_eq!(within(client.submit(fib_sync, (20,)).unwrap()).await.unwrap(), 6765);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seceded_task_lets_another_task_run_in_its_slot() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let long = client.submit(seceded_sleep, (3_000,)).unwrap();
    // Once `long` seceded, the single slot is free: this runs and finishes
    // while `long` still sleeps.
    let short = client.submit(slow, (10, 5)).unwrap();
    assert_eq!(within(&short).await.unwrap(), 5);
    assert!(!long.done(), "the short task waited for the long one's slot");
    within(&long).await.unwrap();
}

#[tokio::test]
async fn worker_functions_outside_a_task_err() {
    match rudask::get_client().await {
        Err(Error::Context(m)) => assert!(m.contains("inside a task"), "{m}"),
        other => panic!("expected a context error, got {other:?}"),
    }
    assert!(matches!(rudask::secede(), Err(Error::Context(_))));
    assert!(matches!(rudask::rejoin(), Err(Error::Context(_))));
    assert!(matches!(rudask::worker_client(), Err(Error::Context(_))));
    assert!(matches!(rudask::blocking::get_client(), Err(Error::Context(_))));
}

#[tokio::test]
async fn blocking_calls_inside_async_code_err_instead_of_panicking() {
    match rudask::blocking::Client::connect("tcp://127.0.0.1:1") {
        Err(Error::Context(m)) => assert!(m.contains("async"), "{m}"),
        other => panic!("expected a context error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_client_in_an_async_task_errs_with_a_hint() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let message = within(client.submit(worker_client_in_async_task, ()).unwrap()).await.unwrap();
    assert!(message.contains("get_client().await"), "{message}");
}

#[test]
fn blocking_client_from_plain_synchronous_code() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime for the harness");
    let (cluster, _async_client) = rt.block_on(Cluster::start(2, 1));
    let addr = cluster.addr.clone();
    let creds = cluster.credentials();
    on_plain_thread(move || {
        let t = Duration::from_secs(20);
        let client = rudask::blocking::Client::connect_with(&addr, creds).expect("connects");
        assert_eq!(client.workers().len(), 2);
        let x = client.submit(inc, (1,)).unwrap();
        let y = client.submit(inc, (&x,)).unwrap();
        assert_eq!(y.result_timeout(t).unwrap(), 3);
        assert!(x.done());
        assert_eq!(x.status(), rudask::Status::Finished);

        let many = client.map(inc, (0..100).map(|i| (i,))).unwrap();
        assert_eq!(client.gather(&many).unwrap().iter().sum::<i64>(), 5050);

        let parts = client.scatter(vec![10i64, 20]).unwrap();
        let sum = client.submit(rudask_tests::add, (&parts[0], &parts[1])).unwrap();
        assert_eq!(sum.result_timeout(t).unwrap(), 30);

        let info = client.scheduler_info(&[x.key()]).unwrap();
        assert_eq!(info.workers.len(), 2);
        assert_eq!(info.key_states, vec![Some("memory".to_string())]);

        let long = client.submit(slow, (2_000, 1)).unwrap();
        client.cancel(std::slice::from_ref(&long));
        assert!(matches!(long.result_timeout(t), Err(Error::Cancelled { .. })));

        let never = client.submit(slow.pure(false), (2_000, 2)).unwrap();
        assert!(matches!(never.result_timeout(Duration::from_millis(50)), Err(Error::Timeout(_))));

        // Nested submits from inside a task, waited on from here.
        assert_eq!(client.submit(fib_sync, (12,)).unwrap().result_timeout(t).unwrap(), 144);

        client.close();
        assert!(matches!(client.submit(inc, (5,)), Err(Error::Disconnected(_))));
    });
    let _guard = rt.enter();
    drop(cluster);
}

#[tokio::test]
async fn nested_submits_on_an_in_process_cluster() {
    // A current-thread runtime: scheduler, workers and the test share one
    // thread, so a task must never block it.
    let cluster = LocalCluster::builder().workers(1).threads_per_worker(2).threads().await.unwrap();
    let client = cluster.client().await.unwrap();
    assert_eq!(within(client.submit(fib_async, (15,)).unwrap()).await.unwrap(), 610);
    assert_eq!(within(client.submit(fib_sync, (15,)).unwrap()).await.unwrap(), 610);
    assert_eq!(within(client.submit(inc_from_task, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test]
async fn nested_submits_on_a_one_slot_in_process_cluster() {
    let cluster = LocalCluster::builder().workers(1).threads_per_worker(1).threads().await.unwrap();
    let client = cluster.client().await.unwrap();
    assert_eq!(within(client.submit(fib_async, (12,)).unwrap()).await.unwrap(), 144);
    assert_eq!(within(client.submit(fib_sync, (12,)).unwrap()).await.unwrap(), 144);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_run_inline_that_blocks_errs_then_runs_on_task_threads() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    // Many tiny calls: the worker starts running this function inline.
    let fast = client.map(nested_unless_zero.pure(false), (0..200).map(|_| (0,))).unwrap();
    within(client.gather(&fast)).await.unwrap();
    let inline = client.submit(nested_unless_zero.pure(false), (1,)).unwrap();
    match within(&inline).await {
        Err(Error::Task { failure, .. }) => {
            assert!(failure.message.contains("inline"), "{}", failure.message)
        }
        other => panic!("expected the inline run to fail, got {other:?}"),
    }
    // From now on it runs on a task thread, where it may wait.
    let f = client.submit(nested_unless_zero.pure(false), (1,)).unwrap();
    assert_eq!(within(f).await.unwrap(), 2);
    let retried = client.submit(nested_unless_zero.pure(false).retries(1), (5,)).unwrap();
    assert_eq!(within(retried).await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seceding_task_can_wait_on_a_task_its_thread_just_finished() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    // Short tasks make the worker queue several per slot, and its task thread
    // run them back to back, reporting them together.
    let warm = client.map(spin.pure(false), (0..300).map(|_| (150,))).unwrap();
    within(client.gather(&warm)).await.unwrap();
    for round in 0..5 {
        // `waiter` may run right after `spun` on the same thread, before
        // `spun` is reported; it waits on `spun`'s key.
        let us = 150 + round;
        let spun = client.submit(spin, (us,)).unwrap();
        let waiter = client.submit(wait_on_spin, (us,)).unwrap();
        assert_eq!(within(&waiter).await.unwrap(), us);
        assert_eq!(within(&spun).await.unwrap(), us);
    }
}
