mod common;
use common::*;
use rudask_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    for round in 0..5 {
        let (_cluster, client) = Cluster::start(2, 2).await;
        let one = client.submit(inc, (41,)).unwrap();
        one.result().await.unwrap();
        let futures = client.map(inc, (0..1000).map(|i| (i,))).unwrap();
        let r =
            tokio::time::timeout(std::time::Duration::from_secs(5), client.gather(&futures)).await;
        if r.is_ok() {
            eprintln!("round {round} ok");
            continue;
        }
        let keys: Vec<&str> = futures.iter().map(|f| f.key()).collect();
        let info = client.scheduler_info(&keys).await.unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for s in &info.key_states {
            *counts.entry(s.clone()).or_insert(0) += 1;
        }
        eprintln!("round {round} HUNG: {counts:?}");
        let pending: Vec<usize> = futures
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.done())
            .map(|(i, _)| i)
            .collect();
        eprintln!(
            "client pending: {} e.g. {:?}",
            pending.len(),
            &pending[..pending.len().min(10)]
        );
        let stuck: Vec<(usize, &Option<String>)> = info
            .key_states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_deref() != Some("memory"))
            .collect();
        eprintln!("sched not memory: {:?}", &stuck[..stuck.len().min(10)]);
        break;
    }
}
