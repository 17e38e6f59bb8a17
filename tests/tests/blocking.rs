//! The blocking client's operations beyond submit and gather, from plain
//! synchronous code against worker processes: completion helpers, data
//! placement, graphs, administration and events.

mod common;

use common::{on_plain_thread, Cluster, LIMIT};
use rudask::blocking::{self, Client};
use rudask::{Error, GraphBuilder, Return, Status, TaskExt};
use rudask_tests::{getenv, inc, needs_file, process_identity, read_local_file, slow};
use std::time::Duration;

/// Runs `body` with a blocking client of a fresh `n`-worker cluster, on a
/// plain thread (no runtime), failing if it takes longer than [`LIMIT`].
fn with_client(n: usize, body: impl FnOnce(Client) + Send + 'static) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime for the harness");
    let (cluster, _async_client) = rt.block_on(Cluster::start(n, 1));
    let addr = cluster.addr.clone();
    let creds = cluster.credentials();
    on_plain_thread(move || body(Client::connect_with(&addr, creds).expect("connects")));
    let _guard = rt.enter();
    drop(cluster);
}

#[test]
fn completion_helpers() {
    with_client(2, |client| {
        let futs = client.map(inc.pure(false), (0..200).map(|i| (i,))).unwrap();
        let mut seen: Vec<i64> =
            blocking::as_completed(futs.clone()).unwrap().map(|f| f.result().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (1..=200).collect::<Vec<_>>());

        let mut chain = blocking::as_completed([client.submit(inc, (0,)).unwrap()]).unwrap();
        let mut last = 0;
        while let Some(f) = chain.next() {
            last = f.result().unwrap();
            if last < 5 {
                chain.add(client.submit(inc, (last,)).unwrap());
            }
        }
        assert_eq!((last, chain.remaining(), chain.is_empty()), (5, 0, true));

        let quick = client.submit(inc, (100,)).unwrap();
        let long = client.submit(slow.pure(false), (5_000, 1)).unwrap();
        let (done, not_done) =
            blocking::wait([quick.clone(), long.clone()], Return::FirstCompleted, None).unwrap();
        assert_eq!((done.len(), not_done.len()), (1, 1));
        assert!(matches!(
            blocking::wait([long.clone()], Return::AllCompleted, Some(Duration::from_millis(50))),
            Err(Error::Timeout(_))
        ));
        long.cancel();
        blocking::progress(&futs).unwrap();

        let (tx, rx) = std::sync::mpsc::channel();
        quick.add_done_callback(move |f| tx.send(f.status()).unwrap());
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), Status::Finished);

        let marker = std::env::temp_dir().join(format!("rudask-blocking-{}", std::process::id()));
        let path = marker.to_string_lossy().to_string();
        let flaky = client.submit(needs_file, (path.clone(), 7)).unwrap();
        assert!(flaky.result().is_err());
        std::fs::write(&marker, b"").unwrap();
        flaky.retry().unwrap();
        assert_eq!(flaky.result().unwrap(), 7);
        let _ = std::fs::remove_file(&marker);

        blocking::fire_and_forget(&client.submit(inc, (9,)).unwrap()).unwrap();
    });
}

#[test]
fn data_placement_graphs_and_profile() {
    with_client(2, |client| {
        let parts = client.scatter(vec![1i64, 2, 3, 4]).unwrap();
        client.replicate(&parts[..1], 5).unwrap();
        assert_eq!(client.who_has(&parts[..1]).unwrap()[parts[0].key()].len(), 2);
        client.rebalance(&parts).unwrap();
        client.rebalance_all().unwrap();
        let held: usize = client.has_what().unwrap().values().map(Vec::len).sum();
        assert!(held >= 5, "four keys, one of them twice: {held}");

        let mut g = GraphBuilder::new();
        let a = g.add(inc, (1,)).unwrap();
        let b = g.add(inc, (&a,)).unwrap();
        assert_eq!(client.get(&g, &[&b]).unwrap(), vec![3]);
        assert_eq!(client.submit_graph(&g, &[&a]).unwrap()[0].result().unwrap(), 2);
        let urgent = client.get_executor(rudask::SubmitOptions::new().priority(5).pure(false));
        assert_eq!(urgent.submit(inc, (1,)).unwrap().result().unwrap(), 2);
        assert_eq!(urgent.map(inc, [(1,), (2,)]).unwrap().len(), 2);
        assert_eq!(client.nthreads().unwrap().values().sum::<u32>(), 2);
        assert_eq!(client.ncores().unwrap(), client.nthreads().unwrap());
        let profile = client.profile().unwrap();
        assert!(profile.functions.iter().any(|f| f.function.ends_with("::inc")));
    });
}

#[test]
fn administration_and_events() {
    with_client(2, |client| {
        client.wait_for_workers(2, Some(LIMIT)).unwrap();
        let pids = client.run(process_identity, ()).unwrap();
        assert_eq!(pids.len(), 2);
        let first = pids.keys().next().unwrap().clone();
        assert_eq!(client.run_on(&[first.as_str()], process_identity, ()).unwrap().len(), 1);
        let scheduler = client.run_on_scheduler(process_identity, ()).unwrap();
        assert!(pids.values().all(|p| p.as_ref().unwrap().0 != scheduler.0));

        let file = std::env::temp_dir().join(format!("rudask-upload-{}.txt", std::process::id()));
        std::fs::write(&file, "hello").unwrap();
        client.upload_file(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let read = client.run(read_local_file, (name,)).unwrap();
        assert!(read.values().all(|r| r.as_ref().unwrap().as_deref() == Some("hello")));
        let _ = std::fs::remove_file(&file);

        let (tx, rx) = std::sync::mpsc::channel();
        let sub = client
            .subscribe_topic("blocking", move |e| tx.send(e.decode::<u32>().unwrap()).unwrap())
            .unwrap();
        client.log_event("blocking", 5u32).unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), 5);
        drop(sub);
        client.unsubscribe_topic("blocking").unwrap();
        let events = client.get_events::<u32>("blocking").unwrap();
        assert_eq!(events.iter().map(|e| e.1).collect::<Vec<_>>(), vec![5]);

        client.register_scheduler_plugin("task-stats", "{}").unwrap();
        client.submit(inc.pure(false), (1,)).unwrap().result().unwrap();
        assert!(client.plugin_query("task-stats", "{}").unwrap().contains("inc"));
        client.unregister_scheduler_plugin("task-stats").unwrap();
        client.register_worker_plugin("environ", r#"{"vars":{"RUDASK_BLOCKING":"yes"}}"#).unwrap();
        let env = client.run(getenv, ("RUDASK_BLOCKING".to_string(),)).unwrap();
        assert!(env.values().all(|v| v.as_ref().unwrap().as_deref() == Some("yes")), "{env:?}");
        client.unregister_worker_plugin("environ").unwrap();

        let before = client.submit(slow.pure(false), (5_000, 1)).unwrap();
        client.restart().unwrap();
        assert!(matches!(before.result(), Err(Error::Restarted { .. })));
        assert_eq!(client.submit(inc, (1,)).unwrap().result().unwrap(), 2);

        client.shutdown().unwrap();
        assert!(matches!(client.submit(inc, (3,)), Err(Error::Disconnected(_))));
    });
}
