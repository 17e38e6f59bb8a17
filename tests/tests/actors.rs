//! Actors over TCP between real processes: calls go from the client to the
//! actor's worker process directly.

mod common;

use common::{eventually, within, Cluster};
use futures::StreamExt;
use rudask::{Error, Return, TaskExt};
use rudask_tests::{
    call_actor_after_go, increment_actor, tracked_drops, DropTracked, Meeting, SerialMeeting,
    TestCounter,
};

#[tokio::test]
async fn counter_is_exact_under_sequential_and_concurrent_calls() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (0, "c".to_string()))).await.unwrap();
    for i in 1..=1000u64 {
        assert_eq!(within(c.increment()).await.unwrap(), i);
    }
    // 1,000 calls in flight at once: each sees a distinct count, in call order.
    let calls: Vec<_> = (0..1000).map(|_| c.increment()).collect();
    let counts = within(client.gather(&calls)).await.unwrap();
    assert_eq!(counts, (1001..=2000).collect::<Vec<u64>>());
    // Two clients, concurrently: nothing lost.
    let other = _cluster.client().await;
    let c2: rudask::Actor<TestCounter> = rudask::Actor::clone(&c);
    let a = (0..500).map(|_| c.increment()).collect::<Vec<_>>();
    let b = (0..500).map(|_| c2.increment()).collect::<Vec<_>>();
    within(client.gather(&a)).await.unwrap();
    within(other.gather(&b)).await.unwrap();
    assert_eq!(within(c.attr_n()).await.unwrap(), 3000);
}

#[tokio::test]
async fn attributes_and_async_methods() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (5, "five".to_string()))).await.unwrap();
    assert_eq!(within(c.attr_n()).await.unwrap(), 5);
    assert_eq!(within(c.attr_label()).await.unwrap(), "five");
    // Async methods hold the actor while they run: no lost update.
    let adds: Vec<_> = (0..50).map(|_| c.add_async(2)).collect();
    let results = within(client.gather(&adds)).await.unwrap();
    assert_eq!(results, (1..=50).map(|i| 5 + 2 * i).collect::<Vec<u64>>());
    assert_eq!(within(c.increment()).await.unwrap(), 106);
    assert!(c.worker() == "w0" && c.key().starts_with("actor-"), "{c:?}");
}

#[tokio::test]
async fn actor_futures_work_with_wait_and_as_completed() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (0, String::new()))).await.unwrap();
    let calls: Vec<_> = (0..20).map(|_| c.increment()).collect();
    let (done, not_done) = within(rudask::wait(calls, Return::AllCompleted, None)).await.unwrap();
    assert_eq!((done.len(), not_done.len()), (20, 0));
    let mut seen: Vec<u64> = Vec::new();
    let mut stream = rudask::as_completed((0..20).map(|_| c.increment())).with_results();
    while let Some((_, r)) = within(stream.next()).await {
        seen.push(r.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (21..=40).collect::<Vec<u64>>());
}

#[tokio::test]
async fn actor_handles_work_inside_tasks() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (0, String::new()))).await.unwrap();
    let runs: Vec<_> =
        (0..4).map(|_| client.submit(increment_actor.pure(false), (&c, 25)).unwrap()).collect();
    within(client.gather(&runs)).await.unwrap();
    assert_eq!(within(c.attr_n()).await.unwrap(), 100);
}

#[tokio::test]
async fn a_panicking_or_failing_method_errs_that_call_only() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (0, String::new()))).await.unwrap();
    assert_eq!(within(c.increment()).await.unwrap(), 1);
    match within(c.boom("kaboom".into())).await {
        Err(Error::Task { failure, .. }) => {
            assert_eq!(failure.kind, rudask::core::FailureKind::Panic);
            assert!(failure.message.contains("kaboom"), "{failure:?}");
        }
        other => panic!("expected a panic failure, got {other:?}"),
    }
    let failed = c.check("nope".into());
    match within(&failed).await {
        Err(Error::Task { failure, .. }) => assert!(failure.message.contains("nope")),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(within(c.increment()).await.unwrap(), 2, "the actor survives");
    assert_eq!(within(c.check(String::new())).await.unwrap(), 2);
    let err = failed.retry().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[tokio::test]
async fn killing_the_actors_worker_loses_it() {
    let (mut cluster, client) = Cluster::start(2, 1).await;
    let c = within(client.submit_actor(TestCounter::new, (0, String::new()))).await.unwrap();
    assert_eq!(within(c.increment()).await.unwrap(), 1);
    let host = c.worker().to_string();
    let pid = within(c.pid()).await.unwrap();
    assert_eq!(pid, cluster.worker_pid(&host));
    let slow: Vec<_> = (0..100).map(|_| c.add_async(1)).collect();
    cluster.kill_worker(&host).await;
    for f in slow {
        match within(f).await {
            Ok(_) => {}
            Err(Error::ActorLost { actor, worker }) => {
                assert_eq!((actor.as_str(), worker.as_str()), (c.key(), host.as_str()))
            }
            Err(e) => panic!("expected ActorLost, got {e}"),
        }
    }
    match within(c.increment()).await {
        Err(Error::ActorLost { worker, .. }) => assert_eq!(worker, host),
        other => panic!("expected ActorLost, got {other:?}"),
    }
    let msg = within(c.attr_n()).await.unwrap_err().to_string();
    assert!(msg.contains("lost") && msg.contains(&host), "{msg}");
    // The scheduler counts the actor as lost data, not something to
    // recompute on the surviving worker.
    eventually("the actor's key is erred", || async {
        let states = common::key_states(&client, &[c.key()]).await;
        (states[0].as_deref() == Some("erred")).then_some(())
    })
    .await;
    let survivor = cluster.workers[0].name.clone();
    let other = within(client.submit_actor(TestCounter::new, (0, String::new()))).await.unwrap();
    assert_eq!(other.worker(), survivor);
    assert_eq!(within(other.increment()).await.unwrap(), 1);
}

#[tokio::test]
async fn dropping_the_last_handle_frees_the_actor() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let before = drops_on_workers(&client).await;
    let a = within(client.submit_actor(DropTracked::create, ())).await.unwrap();
    let b = a.clone();
    within(a.pid()).await.unwrap();
    drop(a);
    within(b.pid()).await.unwrap();
    assert_eq!(drops_on_workers(&client).await, before, "a handle is left");
    drop(b);
    eventually("the worker drops the actor", || {
        let client = client.clone();
        async move { (drops_on_workers(&client).await == before + 1).then_some(()) }
    })
    .await;
}

async fn drops_on_workers(client: &rudask::Client) -> u64 {
    within(client.run(tracked_drops, ())).await.unwrap().into_values().map(|r| r.unwrap()).sum()
}

#[tokio::test]
async fn bad_constructor_and_argument_errors_are_clear() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    fn not_a_constructor(_: u64, _: String) -> TestCounter {
        TestCounter { n: 0, label: String::new() }
    }
    let err = within(client.submit_actor(not_a_constructor, (1, String::new()))).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("not an actor constructor")),
        "{err}"
    );
}

#[tokio::test]
async fn async_self_methods_of_an_interleaving_actor_overlap() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let m = within(client.submit_actor(Meeting::new, ())).await.unwrap();
    // Each call waits until the other is inside: they only return `true` if
    // they ran at the same time.
    let calls = vec![m.meet(2, 30_000), m.meet(2, 30_000)];
    assert_eq!(within(client.gather(&calls)).await.unwrap(), vec![(true, 0), (true, 0)]);
}

#[tokio::test]
async fn without_interleave_async_methods_do_not_overlap() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let m = within(client.submit_actor(SerialMeeting::new, ())).await.unwrap();
    // The first call holds the actor until its patience runs out, alone.
    let calls = vec![m.meet(2, 300), m.meet(2, 300)];
    assert_eq!(within(client.gather(&calls)).await.unwrap(), vec![false, false]);
}

#[tokio::test]
async fn a_mut_self_call_of_an_interleaving_actor_is_exclusive() {
    let (_cluster, client) = Cluster::start(1, 1).await;
    let m = within(client.submit_actor(Meeting::new, ())).await.unwrap();
    // Two shared calls wait (in vain) for a third; the write arrives next and
    // waits for both to end; the calls after it see the write and run
    // together again.
    let first = vec![m.meet(3, 300), m.meet(3, 300)];
    let write = m.write();
    let after = vec![m.meet(2, 30_000), m.meet(2, 30_000)];
    assert_eq!(within(write).await.unwrap(), (2, 0));
    assert_eq!(within(client.gather(&first)).await.unwrap(), vec![(false, 0), (false, 0)]);
    assert_eq!(within(client.gather(&after)).await.unwrap(), vec![(true, 1), (true, 1)]);
    // Attribute reads are exclusive calls too.
    assert_eq!(within(m.attr_writes()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_handle_passed_to_a_task_keeps_the_actor_alive() {
    let (cluster, client) = Cluster::start(2, 1).await;
    let before = drops_on_workers(&client).await;
    let actor = within(client.submit_actor(DropTracked::create, ())).await.unwrap();
    let host = actor.worker().to_string();
    let other = cluster.workers.iter().map(|w| w.name.clone()).find(|n| *n != host).unwrap();
    // One task on the actor's own worker (in-process calls), one on the
    // other worker (calls over TCP).
    let runs: Vec<_> = [(&host, "local"), (&other, "remote")]
        .into_iter()
        .map(|(worker, name)| {
            let task = call_actor_after_go.workers([worker.as_str()]);
            (name, client.submit(task, (&actor, name.to_string(), 200)).unwrap())
        })
        .collect();
    for (name, _) in &runs {
        let started = rudask::coord::Event::new(&client, &format!("{name}-started"));
        assert!(within(started.wait(None)).await.unwrap());
    }
    drop(actor);
    // A round trip through the scheduler to every worker: a free of the
    // actor sent on the client's release would have arrived by its end.
    assert_eq!(drops_on_workers(&client).await, before, "the tasks' handles keep the actor");
    for (name, _) in &runs {
        within(rudask::coord::Event::new(&client, &format!("{name}-go")).set()).await.unwrap();
    }
    let pid = cluster.worker_pid(&host);
    for (name, run) in runs {
        assert_eq!(within(run).await.unwrap(), pid, "task {name}");
    }
    eventually("the worker drops the actor once the tasks' handles are gone", || {
        let client = client.clone();
        async move { (drops_on_workers(&client).await == before + 1).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_in_a_task_not_yet_started_keeps_the_actor_alive() {
    let (_cluster, client) = Cluster::start(2, 1).await;
    let before = drops_on_workers(&client).await;
    let actor = within(client.submit_actor(DropTracked::create, ())).await.unwrap();
    // The task waits on a dependency, so it decodes the handle only after
    // the client dropped its own.
    let ready = client.submit(rudask_tests::wait_event, ("pending-go".to_string(),)).unwrap();
    let run = client.submit(rudask_tests::actor_pid_when_ready, (&actor, &ready)).unwrap();
    drop(actor);
    assert_eq!(drops_on_workers(&client).await, before, "the submitted task keeps the actor");
    within(rudask::coord::Event::new(&client, "pending-go").set()).await.unwrap();
    within(run).await.expect("the task reaches the actor");
    eventually("the actor is freed once the task is done", || {
        let client = client.clone();
        async move { (drops_on_workers(&client).await == before + 1).then_some(()) }
    })
    .await;
}
