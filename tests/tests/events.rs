//! Events over TCP: clients log values on topics, other clients subscribe
//! and read the history, on a cluster with a worker process.

mod common;

use common::{within, Cluster};
use rudask::Error;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Progress {
    step: u32,
    note: String,
}

fn progress(step: u32) -> Progress {
    Progress { step, note: format!("step {step}") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_new_events_and_history_is_kept() {
    let (cluster, a) = Cluster::start(1, 1).await;
    let b = cluster.client().await;
    let start = SystemTime::now() - Duration::from_secs(1);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let sub = within(b.subscribe_topic("progress", move |e| {
        let _ = tx.send((e.topic.clone(), e.time, e.decode::<Progress>()));
    }))
    .await
    .unwrap();
    assert_eq!(sub.topic(), "progress");

    for step in 0..3 {
        within(a.log_event("progress", progress(step))).await.unwrap();
    }
    within(a.log_event("elsewhere", 99u32)).await.unwrap();
    within(b.log_event("progress", progress(3))).await.unwrap();
    for step in 0..4 {
        let (topic, time, value) = within(rx.recv()).await.expect("an event");
        assert_eq!(topic, "progress");
        assert!(time >= start && time <= SystemTime::now(), "{time:?}");
        assert_eq!(
            value.unwrap(),
            progress(step),
            "events arrive in order, other topics not at all"
        );
    }

    // History, typed; a wrong type is a clear error.
    let history = within(a.get_events::<Progress>("progress")).await.unwrap();
    assert_eq!(history.iter().map(|(_, p)| p.step).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(history.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(within(b.get_events::<u32>("elsewhere")).await.unwrap()[0].1, 99);
    assert!(within(a.get_events::<u32>("never")).await.unwrap().is_empty());
    within(a.log_event("floats", vec![1.5f64, 2.5])).await.unwrap();
    assert_eq!(within(b.get_events::<Vec<f64>>("floats")).await.unwrap()[0].1, vec![1.5, 2.5]);
    assert!(matches!(within(a.get_events::<u32>("progress")).await, Err(Error::Serialization(_))));

    // Dropping the subscription removes the handler.
    drop(sub);
    assert!(within(rx.recv()).await.is_none(), "the handler outlived its subscription");
    within(a.log_event("progress", progress(4))).await.unwrap();

    // Two handlers of one topic both run; unsubscribe_topic removes both.
    let (tx1, mut rx1) = mpsc::unbounded_channel();
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    let s1 = within(b.subscribe_topic("t", move |e| {
        let _ = tx1.send(e.decode::<String>().unwrap());
    }))
    .await
    .unwrap();
    let s2 = within(b.subscribe_topic("t", move |e| {
        let _ = tx2.send(e.decode::<String>().unwrap());
    }))
    .await
    .unwrap();
    within(a.log_event("t", "hello")).await.unwrap();
    assert_eq!(within(rx1.recv()).await.unwrap(), "hello");
    assert_eq!(within(rx2.recv()).await.unwrap(), "hello");
    within(b.unsubscribe_topic("t")).await.unwrap();
    assert!(within(rx1.recv()).await.is_none());
    assert!(within(rx2.recv()).await.is_none());
    drop((s1, s2));
    assert_eq!(within(a.get_events::<String>("t")).await.unwrap().len(), 1);
}
