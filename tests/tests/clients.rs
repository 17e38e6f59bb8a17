//! Clients and connections: two clients on one scheduler, bad addresses and
//! peers that are not rudask, malformed bytes and messages sent to the
//! scheduler, and work submitted before any worker exists.

mod common;

use common::{eventually, key_states, wait_for_workers, within, Cluster};
use rudask::core::graph::{Arg, Key, TaskOptions, TaskSpec};
use rudask::core::protocol::codec::{decode, EncodeBuffer, DEFAULT_MAX_FRAME};
use rudask::core::protocol::{
    ClientMsg, Hello, HelloReply, Role, ScatteredKey, ToClient, WorkerHello, MAGIC,
    PROTOCOL_VERSION,
};
use rudask::core::{FailureKind, Payload, TaskFailure};
use rudask::{Client, Error, Status, Task};
use rudask_tests::{inc, slow};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_pure_keys_and_survive_each_other() {
    let (cluster, a) = Cluster::start(2, 1).await;
    let b = cluster.client().await;
    eventually("the scheduler counts two clients", || async {
        (within(a.scheduler_info(&[])).await.unwrap().clients == 2).then_some(())
    })
    .await;

    // The same pure call from both clients: one key, both get the value.
    let fa = a.submit(slow, (200, 7)).unwrap();
    let fb = b.submit(slow, (200, 7)).unwrap();
    assert_eq!(fa.key(), fb.key());
    assert_eq!(within(&fa).await.unwrap(), 7);
    assert_eq!(within(&fb).await.unwrap(), 7);

    // A key both want is still pending when A leaves: B still gets it.
    let shared_a = a.submit(slow, (300, 8)).unwrap();
    let shared_b = b.submit(slow, (300, 8)).unwrap();
    let only_a = a.submit(inc, (100,)).unwrap();
    a.close();
    assert!(matches!(within(&shared_a).await, Err(Error::Disconnected(_))));
    assert!(matches!(a.submit(inc, (1,)), Err(Error::Disconnected(_))));
    drop(only_a);
    assert_eq!(within(&shared_b).await.unwrap(), 8);
    assert_eq!(within(&fb).await.unwrap(), 7, "B's finished result is gone after A left");
    assert_eq!(within(b.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
    eventually("the scheduler counts one client after A closed", || async {
        (within(b.scheduler_info(&[])).await.unwrap().clients == 1).then_some(())
    })
    .await;

    // B dropping its client value entirely does not disturb a third client.
    drop((fa, fb, shared_a, shared_b));
    drop(b);
    drop(a);
    let c = cluster.client().await;
    assert_eq!(within(c.submit(inc, (2,)).unwrap()).await.unwrap(), 3);
    eventually("the scheduler counts only the last client", || async {
        (within(c.scheduler_info(&[])).await.unwrap().clients == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_fails_quickly() {
    match common::within_for(Duration::from_secs(10), Client::connect("tcp://127.0.0.1:1")).await {
        Err(Error::Connect { addr, message }) => {
            assert!(addr.contains("127.0.0.1:1"), "{addr}");
            assert!(!message.is_empty());
        }
        other => panic!("connecting to a closed port: expected Error::Connect, got {other:?}"),
    }
    assert!(Client::connect("not an address").await.is_err());
}

/// A listener that answers every connection with `reply`, then closes it.
async fn fake_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(reply).await;
            let _ = s.shutdown().await;
        }
    });
    addr
}

fn is_connection_error(r: &Result<Client, Error>) -> bool {
    matches!(
        r,
        Err(Error::Connect { .. } | Error::Refused { .. } | Error::Protocol(_) | Error::Io(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_something_else_fails() {
    for reply in [
        b"HTTP/1.1 200 OK\r\n\r\n".as_slice(),
        b"\x00\x00\x00\x04\x01\x02\x03\x04".as_slice(),
        b"\x00\x00\x00\x10\x00\x00\x00\x04\x00\x00\x00\x00\xc1\xc1\xc1\xc1\x00\x00\x00\x00"
            .as_slice(),
        b"".as_slice(),
    ] {
        let addr = fake_server(reply).await;
        let r = within(Client::connect(&addr)).await;
        assert!(
            is_connection_error(&r),
            "a server answering {reply:?}: expected a connection error, got {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let r = within(Client::connect(&addr)).await;
    assert!(
        is_connection_error(&r),
        "a server that never answers: expected a connection error, got {r:?}"
    );
    server.abort();
}

/// A hand-driven protocol connection, for sending what a client never would.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let stream =
            within(TcpStream::connect(addr.strip_prefix("tcp://").unwrap())).await.unwrap();
        Raw { stream }
    }

    async fn send<M: Serialize>(&mut self, msg: &M) {
        let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
        buf.push(msg).unwrap();
        for chunk in buf.take_chunks() {
            self.stream.write_all(&chunk).await.unwrap();
        }
    }

    /// Writes bytes; the peer may already have closed, which is fine.
    async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next message, or `None` at the end of the stream.
    async fn recv<M: DeserializeOwned>(&mut self) -> Option<M> {
        let len = within(self.stream.read_u32()).await.ok()?;
        let mut body = vec![0; len as usize];
        within(self.stream.read_exact(&mut body)).await.ok()?;
        Some(decode(body.into()).expect("the scheduler sent a malformed message"))
    }

    /// Reads until the peer closes the connection (fails the test if it never does).
    async fn expect_closed(&mut self) {
        let mut sink = Vec::new();
        let _ = within(self.stream.read_to_end(&mut sink)).await;
    }

    async fn hello(&mut self, magic: &str, protocol: u32, role: Role) -> Option<HelloReply> {
        let hello =
            Hello { magic: magic.into(), protocol, build: "raw-test".into(), role, token: None };
        self.send(&hello).await;
        self.recv().await
    }
}

fn client_role() -> Role {
    Role::Client { name: "raw".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bytes_do_not_take_the_scheduler_down() {
    let (mut cluster, client) = Cluster::start_insecure(1, 1).await;
    let addr = cluster.addr.clone();

    // Connect and leave at once.
    drop(Raw::connect(&addr).await);

    // Bytes that are not frames of the protocol, before any handshake.
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
        b"\xff\xff\xff\xff".as_slice(),
        b"\x00\x00\x00\x05hello".as_slice(),
        b"\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x00\x00\xc1".as_slice(),
        b"\x00\x00\x00\x0c\xff\xff\xff\xff\x00\x00\x00\x00abcd".as_slice(),
        b"\x00\x00\x00\x10\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"
            .as_slice(),
    ] {
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(garbage).await;
        raw.expect_closed().await;
    }

    // A frame cut short by the connection closing.
    let mut raw = Raw::connect(&addr).await;
    raw.send_bytes(b"\x00\x00\x01\x00\x00\x00").await;
    drop(raw);

    // Well-formed handshakes that must be refused.
    let mut raw = Raw::connect(&addr).await;
    match raw.hello("not-rudask", PROTOCOL_VERSION, client_role()).await {
        Some(HelloReply::Refused { reason }) => assert!(reason.contains("rudask"), "{reason}"),
        other => panic!("wrong magic: expected a refusal, got {other:?}"),
    }
    let mut raw = Raw::connect(&addr).await;
    match raw.hello(MAGIC, PROTOCOL_VERSION + 100, client_role()).await {
        Some(HelloReply::Refused { reason }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("wrong protocol version: expected a refusal, got {other:?}"),
    }
    let mut raw = Raw::connect(&addr).await;
    match raw.hello(MAGIC, PROTOCOL_VERSION, Role::Peer).await {
        Some(HelloReply::Refused { .. }) => {}
        other => panic!("a data request to the scheduler: expected a refusal, got {other:?}"),
    }
    let duplicate = WorkerHello {
        name: "w0".into(),
        data_addr: "tcp://127.0.0.1:9".into(),
        nthreads: 1,
        catalog: vec![],
        resources: vec![],
    };
    let mut raw = Raw::connect(&addr).await;
    match raw.hello(MAGIC, PROTOCOL_VERSION, Role::Worker(duplicate)).await {
        Some(HelloReply::Refused { reason }) => assert!(reason.contains("w0"), "{reason}"),
        other => panic!("a second worker named w0: expected a refusal, got {other:?}"),
    }

    // Garbage after a successful handshake: the scheduler drops that connection.
    for garbage in [
        b"\x00\x00\x00\x03abc".as_slice(),
        b"\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x00\x00\xc1".as_slice(),
    ] {
        let mut raw = Raw::connect(&addr).await;
        assert!(matches!(
            raw.hello(MAGIC, PROTOCOL_VERSION, client_role()).await,
            Some(HelloReply::Welcome(_))
        ));
        raw.send_bytes(garbage).await;
        raw.expect_closed().await;
    }

    // The scheduler is alive, and forgot the broken clients.
    assert!(cluster.scheduler_alive(), "the scheduler process died");
    assert_eq!(within(client.submit(inc, (10,)).unwrap()).await.unwrap(), 11);
    eventually("the scheduler counts only the real client", || async {
        (within(client.scheduler_info(&[])).await.unwrap().clients == 1).then_some(())
    })
    .await;
    let other = cluster.client().await;
    assert_eq!(within(other.submit(inc, (11,)).unwrap()).await.unwrap(), 12);
    assert_eq!(within(client.scheduler_info(&[])).await.unwrap().workers.len(), 1);
}

fn spec(key: &str, func: &str, args: Vec<Arg>) -> TaskSpec {
    TaskSpec { key: Key::from(key), func: func.into(), args, options: TaskOptions::default() }
}

/// Reads messages until every key in `keys` erred; returns their failures.
async fn failures_of(raw: &mut Raw, keys: &[&str]) -> HashMap<String, TaskFailure> {
    let mut failures = HashMap::new();
    while keys.iter().any(|k| !failures.contains_key(*k)) {
        match raw.recv::<ToClient>().await {
            Some(ToClient::KeyErred { key, failure }) => {
                failures.insert(key.as_str().to_string(), failure);
            }
            Some(ToClient::KeyInMemory { key, .. }) => {
                panic!("{} should have failed", key.as_str())
            }
            Some(_) => {}
            None => panic!("the scheduler closed the connection; failures so far: {failures:?}"),
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_graphs_fail_their_keys_not_the_cluster() {
    let (mut cluster, client) = Cluster::start_insecure(1, 1).await;
    let mut raw = Raw::connect(&cluster.addr).await;
    assert!(matches!(
        raw.hello(MAGIC, PROTOCOL_VERSION, client_role()).await,
        Some(HelloReply::Welcome(_))
    ));

    let bad_msgpack = Arg::Value(Payload::from(vec![0xc1]));
    let a_string = Arg::Value(Payload::from(vec![0xa3, b'a', b'b', b'c']));
    let tasks = vec![
        // A function no worker has.
        spec("raw-unknown", "nobody::knows_this", vec![]),
        // Arguments the worker cannot decode, and the wrong number of them.
        spec("raw-bad-bytes", inc.id(), vec![bad_msgpack]),
        spec("raw-wrong-type", inc.id(), vec![a_string]),
        spec("raw-no-args", inc.id(), vec![]),
        // A dependency nobody submitted.
        spec("raw-missing-dep", inc.id(), vec![Arg::Dep(Key::from("never-submitted"))]),
    ];
    let keys: Vec<Key> = tasks.iter().map(|t| t.key.clone()).collect();
    raw.send(&ClientMsg::UpdateGraph { tasks, wanted: keys }).await;
    // Wanting, releasing and cancelling keys that do not exist.
    raw.send(&ClientMsg::Want { keys: vec![Key::from("raw-nothing")] }).await;
    raw.send(&ClientMsg::Release { keys: vec![Key::from("raw-nothing-2")] }).await;
    raw.send(&ClientMsg::Cancel { keys: vec![Key::from("raw-nothing-3")] }).await;

    let failures = failures_of(
        &mut raw,
        &[
            "raw-unknown",
            "raw-bad-bytes",
            "raw-wrong-type",
            "raw-no-args",
            "raw-missing-dep",
            "raw-nothing",
        ],
    )
    .await;
    let kind = |k: &str| failures[k].kind.clone();
    assert_eq!(kind("raw-unknown"), FailureKind::NoWorker);
    assert_eq!(kind("raw-bad-bytes"), FailureKind::BadArgument);
    assert_eq!(kind("raw-wrong-type"), FailureKind::BadArgument);
    assert_eq!(kind("raw-no-args"), FailureKind::BadArgument);
    assert_eq!(kind("raw-missing-dep"), FailureKind::MissingDependency);
    assert_eq!(kind("raw-nothing"), FailureKind::MissingDependency);

    // A dependency cycle must not hang the scheduler.
    let cycle = vec![
        spec("raw-cycle-a", inc.id(), vec![Arg::Dep(Key::from("raw-cycle-b"))]),
        spec("raw-cycle-b", inc.id(), vec![Arg::Dep(Key::from("raw-cycle-a"))]),
        spec("raw-self", inc.id(), vec![Arg::Dep(Key::from("raw-self"))]),
    ];
    let keys: Vec<Key> = cycle.iter().map(|t| t.key.clone()).collect();
    raw.send(&ClientMsg::UpdateGraph { tasks: cycle, wanted: keys }).await;
    raw.send(&ClientMsg::Close).await;
    drop(raw);
    // The cycle errs instead of waiting forever, so it is forgotten once its
    // client has left.
    eventually("the scheduler forgets the cyclic tasks", || {
        let client = &client;
        async move {
            let info = within(client.scheduler_info(&["raw-cycle-a", "raw-cycle-b", "raw-self"]))
                .await
                .unwrap();
            info.key_states.iter().all(Option::is_none).then_some(())
        }
    })
    .await;

    assert!(cluster.scheduler_alive(), "the scheduler process died");
    assert!(cluster.worker_alive("w0"), "the worker process died");
    assert_eq!(within(client.submit(inc, (41,)).unwrap()).await.unwrap(), 42);
    assert_eq!(within(client.scheduler_info(&[])).await.unwrap().workers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_waits_for_the_first_worker() {
    let mut cluster = Cluster::scheduler().await;
    let client = cluster.client().await;
    assert!(within(client.scheduler_info(&[])).await.unwrap().workers.is_empty());

    let x = client.submit(inc, (5,)).unwrap();
    let y = client.submit(inc, (&x,)).unwrap();
    let (kx, ky) = (x.key().to_string(), y.key().to_string());
    eventually("the task waits for a worker", || {
        let (client, kx, ky) = (&client, kx.as_str(), ky.as_str());
        async move {
            let states = key_states(client, &[kx, ky]).await;
            (states[0].as_deref() == Some("noworker") && states[1].as_deref() == Some("waiting"))
                .then_some(())
        }
    })
    .await;
    assert_eq!(x.status(), Status::Pending);
    assert_eq!(y.status(), Status::Pending);

    cluster.spawn_worker("late", 1);
    wait_for_workers(&client, 1).await;
    assert_eq!(within(&y).await.unwrap(), 7);
    assert_eq!(within(&x).await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_registered_on_gone_workers_fails_the_key_not_the_scheduler() {
    let (mut cluster, client) = Cluster::start_insecure(1, 1).await;
    let mut raw = Raw::connect(&cluster.addr).await;
    assert!(matches!(
        raw.hello(MAGIC, PROTOCOL_VERSION, client_role()).await,
        Some(HelloReply::Welcome(_))
    ));
    // What a client sends when the workers it scattered to died before the
    // scheduler heard of the data.
    let ghost =
        ScatteredKey { key: Key::from("raw-ghost-data"), nbytes: 8, workers: vec![u64::MAX] };
    raw.send(&ClientMsg::UpdateData { items: vec![ghost] }).await;
    let failures = failures_of(&mut raw, &["raw-ghost-data"]).await;
    assert_eq!(failures["raw-ghost-data"].kind, FailureKind::DataLost);
    drop(raw);

    assert!(cluster.scheduler_alive(), "the scheduler process died");
    assert_eq!(within(client.submit(inc, (1,)).unwrap()).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_dependency_names_the_dependency() {
    let (cluster, _client) = Cluster::start_insecure(1, 1).await;
    let mut raw = Raw::connect(&cluster.addr).await;
    assert!(matches!(
        raw.hello(MAGIC, PROTOCOL_VERSION, client_role()).await,
        Some(HelloReply::Welcome(_))
    ));
    let task = spec("raw-missing-dep", inc.id(), vec![Arg::Dep(Key::from("never-submitted"))]);
    raw.send(&ClientMsg::UpdateGraph {
        tasks: vec![task],
        wanted: vec![Key::from("raw-missing-dep")],
    })
    .await;
    let failures = failures_of(&mut raw, &["raw-missing-dep"]).await;
    let f = &failures["raw-missing-dep"];
    assert_eq!(f.kind, FailureKind::MissingDependency);
    assert!(
        f.message.contains("never-submitted"),
        "the failure does not name the missing dependency: {:?}",
        f.message
    );
}
