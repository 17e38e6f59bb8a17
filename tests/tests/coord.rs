//! Coordination primitives end to end: a scheduler and worker processes
//! over TCP, primitives used from clients, async tasks and sync tasks.

mod common;

use common::{eventually, within, Cluster};
use futures::StreamExt;
use rudask::coord::{Event, Lock, Pub, Queue, Semaphore, Sub, Variable};
use rudask::{Error, Future, TaskExt};
use rudask_tests::{
    hold_expiring_lease, hold_lease, inc, limited_by_semaphore, locked_increments, publish_numbers,
    wait_event,
};
use std::time::Duration;

const SHORT: Option<Duration> = Some(Duration::from_millis(50));
const ZERO: Option<Duration> = Some(Duration::ZERO);

async fn waiters(client: &rudask::Client, kind: &str, name: &str) -> u64 {
    let info = within(client.scheduler_info(&[])).await.unwrap();
    info.primitives.iter().find(|p| p.kind == kind && p.name == name).map_or(0, |p| p.waiters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_excludes_tasks_across_worker_processes() {
    let (_cluster, client) = Cluster::start(2, 2).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            client
                .submit(locked_increments.pure(false), ("l".to_string(), "n".to_string(), 250u32))
                .unwrap()
        })
        .collect();
    let pids = within(client.gather(&tasks)).await.unwrap();
    let counter: Variable<i64> = Variable::new(&client, "n");
    assert_eq!(within(counter.get(ZERO)).await.unwrap(), 1000, "lost updates (pids {pids:?})");
    let lock = Lock::new(&client, "l");
    assert!(!within(lock.locked()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_limits_concurrency_seen_from_tasks() {
    let (_cluster, client) = Cluster::start(2, 3).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            client
                .submit(limited_by_semaphore.pure(false), ("s".to_string(), 2u32, 200u64))
                .unwrap()
        })
        .collect();
    let seen = within(client.gather(&tasks)).await.unwrap();
    assert!(seen.iter().all(|&n| (1..=2).contains(&n)), "more than 2 holders: {seen:?}");
    assert!(seen.contains(&2), "never 2 at once with 6 slots: {seen:?}");
    let sem = Semaphore::new(&client, "s", 2);
    assert_eq!(within(sem.get_value()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_of_a_killed_worker_is_freed() {
    let (mut cluster, client) = Cluster::start(1, 1).await;
    let _task = client.submit(hold_lease, ("k".to_string(),)).unwrap();
    let held = Event::new(&client, "k-held");
    assert!(within(held.wait(None)).await.unwrap());
    let sem = Semaphore::new(&client, "k", 1);
    assert_eq!(within(sem.holders()).await.unwrap().len(), 1);
    assert!(!within(sem.acquire(ZERO)).await.unwrap(), "lease given twice");
    cluster.kill_worker("w0").await;
    assert!(within(sem.acquire(Some(Duration::from_secs(20)))).await.unwrap());
    let me = within(sem.holders()).await.unwrap();
    assert_eq!(me.len(), 1);
    sem.release().await.unwrap();
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_of_a_frozen_worker_expires_unless_refreshed() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let _task = client.submit(hold_expiring_lease, ("x".to_string(), 1000u64)).unwrap();
    assert!(within(Event::new(&client, "x-held").wait(None)).await.unwrap());
    let sem = Semaphore::with_lease_timeout(&client, "x", 1, Duration::from_secs(1));
    // Three lease timeouts (and ticks) pass: the running holder refreshes it.
    assert!(
        !within(sem.acquire(Some(Duration::from_secs(3)))).await.unwrap(),
        "refreshed lease expired"
    );
    let pid = cluster.worker_pid("w0");
    signal(pid, "-STOP");
    let got = within(sem.acquire(Some(Duration::from_secs(20)))).await;
    signal(pid, "-CONT");
    assert!(got.unwrap(), "the lease of a frozen holder was not freed");
    assert_eq!(within(sem.holders()).await.unwrap().len(), 1);
    sem.release().await.unwrap();
    assert_eq!(within(sem.get_value()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_wakes_every_waiter() {
    let (_cluster, client) = Cluster::start(2, 2).await;
    let tasks: Vec<_> = (0..3)
        .map(|_| client.submit(wait_event.pure(false), ("go".to_string(),)).unwrap())
        .collect();
    let event = Event::new(&client, "go");
    assert!(!within(event.wait(SHORT)).await.unwrap());
    eventually("three tasks wait on the event", || async {
        // The client's own timed-out wait is gone; only the tasks remain.
        (waiters(&client, "event", "go").await == 3).then_some(())
    })
    .await;
    within(event.set()).await.unwrap();
    assert_eq!(within(client.gather(&tasks)).await.unwrap(), vec![true; 3]);
    assert!(within(event.is_set()).await.unwrap());
    within(event.clear()).await.unwrap();
    assert!(!within(event.wait(ZERO)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_futures_outlive_their_producer() {
    let (cluster, consumer) = Cluster::start(1, 1).await;
    let producer = cluster.client().await;
    let q: Queue<Future<i64>> = Queue::new(&producer, "futs", 0);
    for i in 0..3 {
        let f = producer.submit(inc, (i,)).unwrap();
        within(q.put(f, None)).await.unwrap();
    }
    producer.close();
    drop(q);
    drop(producer);
    // Give the scheduler time to process the producer's leaving.
    eventually("the producer is gone", || async {
        (within(consumer.scheduler_info(&[])).await.unwrap().clients == 1).then_some(())
    })
    .await;
    let q: Queue<Future<i64>> = Queue::new(&consumer, "futs", 0);
    assert_eq!(within(q.qsize()).await.unwrap(), 3);
    let mut got = Vec::new();
    for _ in 0..3 {
        let f = within(q.get(None)).await.unwrap();
        got.push(within(f).await.unwrap());
    }
    assert_eq!(got, vec![1, 2, 3]);
    // A variable holding a future keeps it too.
    let v: Variable<Future<i64>> = Variable::new(&consumer, "fut");
    within(v.set(consumer.submit(inc, (10,)).unwrap())).await.unwrap();
    assert_eq!(within(within(v.get(None)).await.unwrap()).await.unwrap(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_fans_out_in_order_to_three_subscribers() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let other = cluster.client().await;
    let mut subs: Vec<Sub<u32>> = vec![
        within(Sub::new(&client, "nums")).await.unwrap(),
        within(Sub::new(&client, "nums")).await.unwrap(),
        within(Sub::new(&other, "nums")).await.unwrap(),
    ];
    within(client.submit(publish_numbers, ("nums".to_string(), 200u32)).unwrap()).await.unwrap();
    for sub in &mut subs {
        let got: Vec<u32> =
            within(sub.by_ref().take(200).map(|m| m.unwrap()).collect::<Vec<_>>()).await;
        assert_eq!(got, (0..200).collect::<Vec<_>>());
        assert!(matches!(sub.get(SHORT).await, Err(Error::Timeout(_))));
    }
    // A slow subscriber with a small buffer is told how many it missed.
    let mut slow: Sub<u32> = within(Sub::with_buffer(&other, "nums", 2)).await.unwrap();
    let publisher = Pub::new(&client, "nums");
    for i in 0..10u32 {
        publisher.put(i).unwrap();
    }
    for i in 0..10 {
        assert_eq!(within(subs[2].get(None)).await.unwrap(), i);
    }
    // A marker on another topic, published after the numbers, arrives on
    // the same connection after every one of them: once it is here, the slow
    // subscriber has seen all ten.
    let mut marker: Sub<u32> = within(Sub::new(&other, "nums-marker")).await.unwrap();
    Pub::new(&client, "nums-marker").put(0u32).unwrap();
    within(marker.get(None)).await.unwrap();
    match within(slow.get(None)).await {
        Err(Error::Lagged { missed: 8, topic }) => assert_eq!(topic, "nums"),
        other => panic!("expected a lag notice, got {other:?}"),
    }
    assert_eq!(within(slow.get(None)).await.unwrap(), 8);
    assert_eq!(within(slow.get(None)).await.unwrap(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timeout_path_and_try_once() {
    let (cluster, client) = Cluster::start(0, 1).await;
    let q: Queue<i64> = Queue::new(&client, "t-q", 1);
    assert!(matches!(q.get(SHORT).await, Err(Error::Timeout(_))));
    assert!(matches!(q.get(ZERO).await, Err(Error::Timeout(_))));
    q.put(1, ZERO).await.unwrap();
    assert!(matches!(q.put(2, SHORT).await, Err(Error::Timeout(_))));
    assert!(matches!(q.put(2, ZERO).await, Err(Error::Timeout(_))));
    assert_eq!(q.get_batch(5).await.unwrap(), vec![1], "a timed-out put left its item");
    let v: Variable<i64> = Variable::new(&client, "t-v");
    assert!(matches!(v.get(SHORT).await, Err(Error::Timeout(_))));
    let other = cluster.client().await;
    let (a, b) = (Lock::new(&client, "t-l"), Lock::new(&other, "t-l"));
    assert!(a.acquire(ZERO).await.unwrap());
    assert!(!b.acquire(SHORT).await.unwrap());
    assert!(!b.acquire(ZERO).await.unwrap());
    assert!(matches!(b.release().await, Err(Error::InvalidArgument(_))));
    assert!(a.holder().await.unwrap().is_some());
    // A wait abandoned by dropping its future is cancelled too.
    assert!(tokio::time::timeout(Duration::from_millis(50), b.acquire(None)).await.is_err());
    a.release().await.unwrap();
    assert!(b.acquire(ZERO).await.unwrap(), "a timed-out or dropped waiter kept the lock");
    b.release().await.unwrap();
    let s = Semaphore::new(&client, "t-s", 1);
    assert!(s.acquire(None).await.unwrap());
    assert!(!Semaphore::new(&other, "t-s", 1).acquire(SHORT).await.unwrap());
    s.release().await.unwrap();
    let e = s.release().await.unwrap_err().to_string();
    assert!(e.contains("released too often"), "{e}");
    assert!(!Event::new(&client, "t-e").wait(SHORT).await.unwrap());
    let mut sub: Sub<i64> = Sub::new(&client, "t-t").await.unwrap();
    assert!(matches!(sub.get(SHORT).await, Err(Error::Timeout(_))));
    drop(sub);
    eventually("timed-out waits and released primitives leave nothing behind", || async {
        within(client.scheduler_info(&[])).await.unwrap().primitives.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_type_closed_client_and_cleanup_on_leave() {
    let (cluster, client) = Cluster::start(0, 1).await;
    let ints: Queue<i64> = Queue::new(&client, "typed", 0);
    ints.put(5, None).await.unwrap();
    let strings: Queue<String> = Queue::new(&client, "typed", 0);
    match strings.get(None).await {
        Err(Error::Type { expected, found, .. }) => {
            assert!(expected.contains("String") && found == "i64", "{expected} / {found}");
        }
        other => panic!("expected a type error, got {other:?}"),
    }
    let v: Variable<i64> = Variable::new(&client, "typed-v");
    v.set(1).await.unwrap();
    let e = Variable::<String>::new(&client, "typed-v").get(None).await.unwrap_err().to_string();
    assert!(e.contains("i64") && e.contains("String"), "{e}");

    // A client that leaves holding a lock and waiting on a queue leaves nothing.
    let leaving = cluster.client().await;
    let lock = Lock::new(&leaving, "left");
    assert!(lock.acquire(None).await.unwrap());
    let q: Queue<i64> = Queue::new(&leaving, "left-q", 0);
    let waiting = tokio::spawn(async move { q.get(None).await });
    eventually("the get waits", || async {
        (waiters(&client, "queue", "left-q").await == 1).then_some(())
    })
    .await;
    let info = within(client.scheduler_info(&[])).await.unwrap();
    let kinds: Vec<&str> = info.primitives.iter().map(|p| p.kind.as_str()).collect();
    assert!(kinds.contains(&"lock") && kinds.contains(&"queue") && kinds.contains(&"variable"));
    leaving.close();
    let after = Lock::new(&leaving, "other").acquire(ZERO).await;
    assert!(matches!(after, Err(Error::Disconnected(_))), "{after:?}");
    assert!(matches!(Event::new(&leaving, "e").set().await, Err(Error::Disconnected(_))));
    assert!(within(waiting).await.unwrap().is_err());
    eventually("the leaving client's lock and waiter are gone", || async {
        let info = within(client.scheduler_info(&[])).await.unwrap();
        let names: Vec<String> = info.primitives.iter().map(|p| p.name.clone()).collect();
        (names == ["typed-v"] || names == ["typed", "typed-v"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_uses_the_primitives() {
    let (cluster, client) = Cluster::start(0, 1).await;
    let addr = cluster.addr.clone();
    let creds = cluster.credentials();
    // A thread of its own: blocking calls refuse to run on a runtime's threads.
    let n = std::thread::spawn(move || {
        use rudask::coord::blocking as b;
        let bc = rudask::blocking::Client::connect_with(&addr, creds)?;
        let q: b::Queue<i64> = b::Queue::new(&bc, "bq", 0);
        q.put(41, None)?;
        let lock = b::Lock::new(&bc, "bl");
        assert!(lock.acquire(None)?);
        lock.release()?;
        let sem = b::Semaphore::with_lease_timeout(&bc, "bs", 1, Duration::from_millis(300));
        assert!(sem.acquire(None)?);
        // Refreshed between blocking calls: still held after several timeouts and ticks.
        let other = b::Semaphore::new(&bc, "bs", 1);
        assert!(!other.acquire(Some(Duration::from_millis(2500)))?);
        sem.release()?;
        let v: b::Variable<i64> = b::Variable::new(&bc, "bv");
        v.set(q.get(None)? + 1)?;
        v.get(None)
    });
    let n = within(tokio::task::spawn_blocking(move || n.join().unwrap())).await.unwrap();
    assert_eq!(n.unwrap(), 42);
    assert_eq!(Variable::<i64>::new(&client, "bv").get(ZERO).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_futures_are_held_until_read_or_dropped() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let other = cluster.client().await;
    let mut all: Sub<Future<i64>> = within(Sub::new(&other, "fut-topic")).await.unwrap();
    let mut slow: Sub<Future<i64>> =
        within(Sub::with_buffer(&other, "fut-topic", 1)).await.unwrap();
    let publisher = Pub::new(&client, "fut-topic");
    let futs: Vec<Future<i64>> = (0..3).map(|i| client.submit(inc, (i,)).unwrap()).collect();
    within(client.gather(&futs)).await.unwrap();
    let keys: Vec<String> = futs.iter().map(|f| f.key().to_string()).collect();
    for f in futs {
        publisher.put(f).unwrap();
    }
    for i in 0..3 {
        let f = within(all.get(None)).await.unwrap();
        assert_eq!(within(f).await.unwrap(), i + 1);
    }
    drop(all);
    assert!(matches!(within(slow.get(None)).await, Err(Error::Lagged { missed: 2, .. })));
    assert_eq!(within(within(slow.get(None)).await.unwrap()).await.unwrap(), 3);
    drop(slow);
    eventually("every published future is let go", || async {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let info = within(client.scheduler_info(&keys)).await.unwrap();
        info.key_states.iter().all(Option::is_none).then_some(())
    })
    .await;
}
