//! Security over real processes: TLS and the cluster token on every
//! connection (client, worker, worker-to-worker), clear refusals for peers
//! without the right token or CA, plain peers on TLS ports and the other way
//! round, `--insecure` clusters, and the connection file and environment.

mod common;

use common::raw::Raw;
use common::{wait_for_workers, within, within_for, Cluster};
use rudask::core::protocol::{HelloReply, Role};
use rudask::{Client, ConnectionFile, Credentials, Error, TaskExt};
use rudask_tests::{inc, pid_with, sum};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rudask-test-worker");

fn connection_file(cluster: &Cluster) -> ConnectionFile {
    ConnectionFile::read(cluster.connection_file.as_ref().expect("a TLS cluster"))
        .expect("reading the connection file")
}

/// Work, a transfer from worker to worker and a gather from a worker's data
/// port, all over TLS.
async fn runs_work_across_workers(cluster: &Cluster, client: &Client) {
    let incs = client.map(inc, (0..50).map(|i| (i,))).unwrap();
    assert_eq!(within(client.gather(&incs)).await.unwrap().iter().sum::<i64>(), 1275);
    let data = within(client.scatter(vec![vec![2.0f64; 100_000]]).workers(["w0"]))
        .await
        .unwrap()
        .remove(0);
    let on_w1 = client.submit(pid_with.workers(["w1"]), (&data,)).unwrap();
    assert_eq!(within(on_w1).await.unwrap(), (cluster.worker_pid("w1"), 100_000));
    let total = client.submit(sum.workers(["w1"]), (&data,)).unwrap();
    assert_eq!(within(total).await.unwrap(), 200_000.0);
    let back = within(client.gather(&[data])).await.unwrap();
    assert_eq!(back[0].len(), 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_token_carry_work_between_workers() {
    let (cluster, client) = Cluster::start(2, 1).await;
    assert!(cluster.addr.starts_with("tls://"), "{}", cluster.addr);
    for w in client.workers() {
        assert!(w.data_addr.starts_with("tls://"), "data port without TLS: {}", w.data_addr);
    }
    let file = connection_file(&cluster);
    assert_eq!(file.address, cluster.addr);
    assert!(file.token.as_ref().is_some_and(|t| t.len() >= 32));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = cluster.connection_file.as_ref().unwrap();
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the connection file is readable by others");
    }
    runs_work_across_workers(&cluster, &client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_is_refused_and_others_keep_working() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let ca = connection_file(&cluster).tls_ca.expect("a CA");

    let wrong = Credentials::new().tls_ca_pem(ca.clone()).token("not-the-token");
    match within(Client::connect_with(&cluster.addr, wrong)).await {
        Err(Error::Refused { reason, .. }) => {
            assert!(reason.contains("token is wrong"), "{reason}");
            assert!(reason.contains("connection file"), "{reason}");
        }
        other => panic!("a wrong token: expected a refusal, got {other:?}"),
    }
    match within(Client::connect_with(&cluster.addr, Credentials::new().tls_ca_pem(ca))).await {
        Err(Error::Refused { reason, .. }) => {
            assert!(reason.contains("no token was given"), "{reason}");
            assert!(reason.contains("RUDASK_TOKEN"), "{reason}");
        }
        other => panic!("no token: expected a refusal, got {other:?}"),
    }

    // A worker with the wrong token is refused too, and says why.
    let (ok, stderr) = cluster.run_worker_to_exit(&["--token", "not-the-token"]).await;
    assert!(!ok, "a worker with a wrong token joined");
    assert!(stderr.contains("token"), "{stderr}");

    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
    let again = cluster.client().await;
    assert_eq!(within(again.submit(inc, (2,)).unwrap()).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_clients_of_a_tls_scheduler_are_told_to_use_tls() {
    let cluster = Cluster::scheduler().await;
    let plain = cluster.addr.replacen("tls://", "tcp://", 1);
    let bare = cluster.addr.trim_start_matches("tls://").to_string();
    for addr in [plain, bare] {
        match within(Client::connect_with(&addr, Credentials::new())).await {
            Err(Error::Refused { reason, .. }) => {
                assert!(reason.contains("requires TLS"), "{reason}")
            }
            other => {
                panic!("plain TCP to a TLS scheduler at {addr}: expected a refusal, got {other:?}")
            }
        }
    }
    // A tls:// address without a CA to check it with.
    match within(Client::connect_with(&cluster.addr, Credentials::new().token("t"))).await {
        Err(Error::Connect { message, .. }) => {
            assert!(message.contains("no cluster CA"), "{message}")
        }
        other => panic!("TLS without a CA: expected a connection error, got {other:?}"),
    }
    // The CA of another cluster.
    let other = Cluster::scheduler().await;
    let foreign = Credentials::new()
        .tls_ca_pem(connection_file(&other).tls_ca.unwrap())
        .token(connection_file(&cluster).token.unwrap());
    match within(Client::connect_with(&cluster.addr, foreign)).await {
        Err(Error::Connect { message, .. }) => {
            assert!(message.contains("not trusted"), "{message}")
        }
        other => panic!("another cluster's CA: expected a connection error, got {other:?}"),
    }
    let client = cluster.client().await;
    assert!(within(client.scheduler_info(&[])).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_of_an_insecure_scheduler_fail_quickly_and_clearly() {
    let insecure = Cluster::scheduler_with(&["--insecure"]).await;
    let secured = Cluster::scheduler().await;
    let addr = insecure.addr.replacen("tcp://", "tls://", 1);
    let creds = secured.credentials();
    match within_for(Duration::from_secs(15), Client::connect_with(&addr, creds)).await {
        Err(Error::Connect { message, .. }) => {
            assert!(message.contains("TLS handshake failed"), "{message}");
            assert!(message.contains("tcp://"), "{message}");
        }
        other => panic!("TLS to an insecure scheduler: expected a connection error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_cluster_runs_without_tls_or_token() {
    let (cluster, client) = Cluster::start_insecure(2, 1).await;
    assert!(cluster.addr.starts_with("tcp://"), "{}", cluster.addr);
    for w in client.workers() {
        assert!(w.data_addr.starts_with("tcp://"), "{}", w.data_addr);
    }
    runs_work_across_workers(&cluster, &client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_clients_join_from_the_connection_file_or_the_environment() {
    let cluster = Cluster::scheduler().await;
    let path = cluster.connection_file.clone().unwrap();
    let file = connection_file(&cluster);
    let spawn = |name: &str, address: Option<&str>, env: &[(&str, String)]| {
        Command::new(BIN)
            .args(["worker", "--nthreads", "1", "--name", name])
            .args(address)
            .env_remove("RUDASK_CONNECTION_FILE")
            .envs(env.iter().map(|(k, v)| (*k, v.clone())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting a worker")
    };
    // Address, token and CA all from the file named in the environment.
    let _w0 = spawn("w0", None, &[("RUDASK_CONNECTION_FILE", path.display().to_string())]);
    // Token and CA file from the environment, address on the command line.
    let ca_file = file.tls_ca_file.clone().expect("the CA's path");
    let _w1 = spawn(
        "w1",
        Some(&cluster.addr),
        &[
            ("RUDASK_TOKEN", file.token.clone().unwrap()),
            ("RUDASK_TLS_CA", ca_file.display().to_string()),
        ],
    );
    // The CA's PEM text itself works in the environment too.
    let _w2 = spawn(
        "w2",
        Some(&cluster.addr),
        &[
            ("RUDASK_TOKEN", file.token.clone().unwrap()),
            ("RUDASK_TLS_CA", file.tls_ca.clone().unwrap()),
        ],
    );

    let client = within(Client::from_connection_file(&path)).await.expect("joins from the file");
    wait_for_workers(&client, 3).await;
    for name in ["w0", "w1", "w2"] {
        let r = client.submit(inc.workers([name]).pure(false), (41,)).unwrap();
        assert_eq!(within(r).await.unwrap(), 42, "on {name}");
    }

    // `Client::connect` reads the connection file named in the environment.
    std::env::set_var("RUDASK_CONNECTION_FILE", &path);
    let from_env = within(Client::connect(&cluster.addr)).await;
    std::env::remove_var("RUDASK_CONNECTION_FILE");
    let from_env = from_env.expect("joins with the file from the environment");
    assert_eq!(within(from_env.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_ports_require_tls_and_the_token() {
    let (cluster, client) = Cluster::start(1, 1).await;
    let file = connection_file(&cluster);
    let (ca, token) = (file.tls_ca.unwrap(), file.token.unwrap());
    let data_addr = client.workers()[0].data_addr.clone();
    assert!(data_addr.starts_with("tls://"), "{data_addr}");

    let mut raw = Raw::tls(&data_addr, &ca).await;
    match raw.hello(Role::Peer, None).await {
        Some(HelloReply::Refused { reason }) => assert!(reason.contains("token"), "{reason}"),
        other => panic!("no token at a data port: expected a refusal, got {other:?}"),
    }
    let mut raw = Raw::tls(&data_addr, &ca).await;
    match raw.hello(Role::Peer, Some("wrong")).await {
        Some(HelloReply::Refused { reason }) => assert!(reason.contains("token"), "{reason}"),
        other => panic!("a wrong token at a data port: expected a refusal, got {other:?}"),
    }
    let mut raw = Raw::plain(&data_addr).await;
    match raw.hello(Role::Peer, Some(&token)).await {
        Some(HelloReply::Refused { reason }) => {
            assert!(reason.contains("requires TLS"), "{reason}")
        }
        other => panic!("plain TCP at a TLS data port: expected a refusal, got {other:?}"),
    }
    let mut raw = Raw::tls(&data_addr, &ca).await;
    assert!(matches!(raw.hello(Role::Peer, Some(&token)).await, Some(HelloReply::Welcome(_))));
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}
