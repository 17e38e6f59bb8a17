//! Fuzz-style robustness: thousands of random, truncated and oversized
//! frames and wrong handshakes, from a seeded generator, sent to a scheduler
//! and to a worker's data port (plain, and a share over TLS). Nothing may
//! panic, memory must stay bounded (an oversized length prefix is refused
//! before anything is allocated for it), and a normal client keeps working.

mod common;

use common::raw::Raw;
use common::{within, Cluster};
use futures::StreamExt;
use rudask::core::protocol::codec::{EncodeBuffer, DEFAULT_MAX_FRAME};
use rudask::core::protocol::{Hello, HelloReply, Role, MAGIC, PROTOCOL_VERSION};
use rudask::Client;
use rudask_tests::inc;

/// Connections made at once.
const CONCURRENCY: usize = 16;

/// Bytes of one frame carrying `msg`.
fn frame<M: serde::Serialize>(msg: &M) -> Vec<u8> {
    let mut buf = EncodeBuffer::new(DEFAULT_MAX_FRAME);
    buf.push(msg).expect("encoding");
    buf.take_chunks().concat()
}

fn hello(role: Role) -> Hello {
    Hello {
        magic: MAGIC.into(),
        protocol: PROTOCOL_VERSION,
        build: "fuzz".into(),
        role,
        token: None,
    }
}

fn random_bytes(rng: &mut fastrand::Rng, max: usize) -> Vec<u8> {
    let n = rng.usize(..=max);
    (0..n).map(|_| rng.u8(..)).collect()
}

/// A length prefix far beyond any limit, or beyond the pre-handshake limit.
fn oversized_prefix(rng: &mut fastrand::Rng) -> Vec<u8> {
    let len: u32 = match rng.u8(..4) {
        0 => u32::MAX,
        1 => (DEFAULT_MAX_FRAME as u32).saturating_add(rng.u32(1..1000)),
        2 => rng.u32(2 << 20..DEFAULT_MAX_FRAME as u32),
        _ => rng.u32(64 << 20..u32::MAX),
    };
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend(random_bytes(rng, 64));
    bytes
}

/// One hostile opening of a connection: what to send before any handshake.
fn hostile_opening(rng: &mut fastrand::Rng, role: &Role) -> Vec<u8> {
    match rng.u8(..6) {
        // Random bytes.
        0 => random_bytes(rng, 2048),
        // A well-sized frame of random contents.
        1 => {
            let body = random_bytes(rng, 512);
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend(body);
            bytes
        }
        // A frame cut short.
        2 => {
            let mut bytes = frame(&hello(role.clone()));
            let keep = rng.usize(..bytes.len());
            bytes.truncate(keep);
            bytes
        }
        3 => oversized_prefix(rng),
        // A handshake with bytes flipped.
        4 => {
            let mut bytes = frame(&hello(role.clone()));
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(4..bytes.len());
                bytes[i] = rng.u8(..);
            }
            bytes
        }
        // Well-formed handshakes that must be refused.
        _ => {
            let mut h = hello(role.clone());
            match rng.u8(..3) {
                0 => h.magic = String::from_utf8_lossy(&random_bytes(rng, 12)).into_owned(),
                1 => h.protocol = rng.u32(..).max(PROTOCOL_VERSION + 1),
                _ => h.build = "x".repeat(rng.usize(..4096)),
            }
            if h.magic == MAGIC && h.protocol == PROTOCOL_VERSION {
                h.protocol += 1;
            }
            frame(&h)
        }
    }
}

/// Random, truncated and oversized frames after an accepted handshake.
fn hostile_after_handshake(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..3) {
        0 => {
            let body = random_bytes(rng, 1024);
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend(body);
            bytes
        }
        1 => {
            let mut bytes = (u32::MAX).to_be_bytes().to_vec();
            bytes.extend(random_bytes(rng, 16));
            bytes
        }
        _ => {
            let mut bytes = rng.u32(16..4096).to_be_bytes().to_vec();
            bytes.extend(random_bytes(rng, 8));
            bytes
        }
    }
}

/// Sends `count` hostile connections to `addr` (over TLS with `tls_ca`);
/// every `accepted_every`-th one first completes a real handshake as
/// `role` with `token` (when it is accepted), then sends garbage.
async fn barrage(
    addr: &str,
    role: Role,
    tls_ca: Option<&str>,
    token: Option<&str>,
    seed: u64,
    count: usize,
) {
    let rng = std::sync::Mutex::new(fastrand::Rng::with_seed(seed));
    futures::stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY, |i| {
            let (opening, after) = {
                let mut rng = rng.lock().unwrap();
                (hostile_opening(&mut rng, &role), hostile_after_handshake(&mut rng))
            };
            let role = role.clone();
            async move {
                let mut raw = match tls_ca {
                    Some(ca) => Raw::tls(addr, ca).await,
                    None => Raw::plain(addr).await,
                };
                if i % 8 == 0 {
                    if let Some(HelloReply::Welcome(_)) = raw.hello(role, token).await {
                        raw.send_bytes(&after).await;
                        raw.finish().await;
                    }
                } else {
                    raw.send_bytes(&opening).await;
                }
            }
        })
        .await;
}

/// A field of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in the process status"));
    kb * 1024
}

/// Peak resident memory of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM:")
}

/// Peak address space of process `pid` (what it ever reserved), in bytes.
fn peak_virtual(pid: u32) -> u64 {
    status_bytes(pid, "VmPeak:")
}

/// Connections held open at once, each announcing a frame of almost the
/// largest size a peer may send after its handshake.
const HELD: usize = 32;

/// Opens [`HELD`] connections that each announce a huge first frame and
/// send a little of it, and waits until the server has closed every one:
/// a server that reserved room for those frames would wait for the rest
/// instead (and reserve 32 GiB).
async fn hold_huge_announcements(addr: &str, tls_ca: Option<&str>, pid: u32) {
    let before = peak_virtual(pid);
    let mut held = Vec::new();
    for _ in 0..HELD {
        let mut raw = match tls_ca {
            Some(ca) => Raw::tls(addr, ca).await,
            None => Raw::plain(addr).await,
        };
        let mut bytes = (DEFAULT_MAX_FRAME as u32 - 1).to_be_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(0u8, 4096));
        raw.send_bytes(&bytes).await;
        held.push(raw);
    }
    for raw in &mut held {
        raw.expect_closed().await;
    }
    let growth = peak_virtual(pid).saturating_sub(before);
    assert!(growth < 1 << 30, "announced frames made the server reserve {growth} bytes");
}

/// At most this much more peak memory after a barrage than before.
const MAX_GROWTH: u64 = 128 << 20;

async fn still_works(client: &Client) {
    let futs = client.map(inc, (0..100).map(|i| (i,))).unwrap();
    assert_eq!(within(client.gather(&futs)).await.unwrap().iter().sum::<i64>(), 5050);
    let fresh = client.scatter(vec![7i64]).await.unwrap();
    assert_eq!(within(client.gather(&fresh)).await.unwrap(), vec![7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_do_not_hurt_an_insecure_scheduler_or_worker() {
    let (mut cluster, client) = Cluster::start_insecure(1, 1).await;
    still_works(&client).await;
    let (sched_pid, worker_pid) = (cluster.scheduler_pid(), cluster.worker_pid("w0"));
    let (sched_before, worker_before) = (peak_rss(sched_pid), peak_rss(worker_pid));
    let data_addr = client.workers()[0].data_addr.clone();

    hold_huge_announcements(&cluster.addr, None, sched_pid).await;
    hold_huge_announcements(&data_addr, None, worker_pid).await;
    barrage(&cluster.addr, Role::Client { name: "fuzz".into() }, None, None, 1, 1500).await;
    barrage(&data_addr, Role::Peer, None, None, 2, 1500).await;

    assert!(cluster.scheduler_alive(), "the scheduler died");
    assert!(cluster.worker_alive("w0"), "the worker died");
    still_works(&client).await;
    let other = cluster.client().await;
    still_works(&other).await;
    let (sched_growth, worker_growth) = (
        peak_rss(sched_pid).saturating_sub(sched_before),
        peak_rss(worker_pid).saturating_sub(worker_before),
    );
    assert!(sched_growth < MAX_GROWTH, "the scheduler's peak memory grew by {sched_growth} bytes");
    assert!(worker_growth < MAX_GROWTH, "the worker's peak memory grew by {worker_growth} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_over_tls_do_not_hurt_a_secured_cluster() {
    let (mut cluster, client) = Cluster::start(1, 1).await;
    let file = rudask::ConnectionFile::read(cluster.connection_file.as_ref().unwrap()).unwrap();
    let (ca, token) = (file.tls_ca.unwrap(), file.token.unwrap());
    let sched_pid = cluster.scheduler_pid();
    let before = peak_rss(sched_pid);
    let data_addr = client.workers()[0].data_addr.clone();

    // Inside TLS, without the token: refused before frames may grow.
    hold_huge_announcements(&cluster.addr, Some(&ca), sched_pid).await;
    hold_huge_announcements(&data_addr, Some(&ca), cluster.worker_pid("w0")).await;
    barrage(&cluster.addr, Role::Client { name: "fuzz".into() }, Some(&ca), None, 3, 300).await;
    barrage(&data_addr, Role::Peer, Some(&ca), None, 4, 300).await;
    // Inside TLS, with the token: garbage after an accepted handshake.
    barrage(&cluster.addr, Role::Client { name: "fuzz".into() }, Some(&ca), Some(&token), 5, 200)
        .await;
    // Plain bytes at the TLS ports.
    barrage(&cluster.addr, Role::Client { name: "fuzz".into() }, None, None, 6, 300).await;
    barrage(&data_addr, Role::Peer, None, None, 7, 300).await;

    assert!(cluster.scheduler_alive(), "the scheduler died");
    assert!(cluster.worker_alive("w0"), "the worker died");
    still_works(&client).await;
    let growth = peak_rss(sched_pid).saturating_sub(before);
    assert!(growth < MAX_GROWTH, "the scheduler's peak memory grew by {growth} bytes");
}
