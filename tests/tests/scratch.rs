mod common;
use common::*;
use rudask::TaskExt;
use rudask_tests::*;

async fn show(client: &rudask::Client, keys: &[&str]) {
    let info = client.scheduler_info(keys).await.unwrap();
    eprintln!("{:?} tasks={}", info.key_states, info.tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let (_cluster, client) = Cluster::start(2, 2).await;
    let a = client.submit(fingerprint, (7,)).unwrap();
    let b = client.submit(fingerprint, (7,)).unwrap();
    eprintln!("a {:?}", a.result().await);
    eprintln!("b {:?}", b.result().await);
    let other = client.submit(fingerprint, (8,)).unwrap();
    let x = client.submit(fingerprint.pure(false), (7,)).unwrap();
    let y = client.submit(fingerprint.pure(false), (7,)).unwrap();
    eprintln!("x {:?}", x.result().await);
    eprintln!("y {:?}", y.result().await);
    let k = client.submit(inc.key("my-key"), (1,)).unwrap();
    for _ in 0..10 {
        show(&client, &["my-key", other.key(), x.key(), y.key(), a.key()]).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = tokio::time::timeout(std::time::Duration::from_secs(2), k.result()).await;
    eprintln!("{r:?}");
}
