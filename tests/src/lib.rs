//! Test tasks for rudask's end-to-end tests. The `rudask-test-worker` binary
//! links them, so workers started from it can run them.

use std::time::Duration;

/// Adds one.
#[rudask::task]
pub fn inc(x: i64) -> i64 {
    x + 1
}

/// Adds two numbers (async, to exercise async tasks too).
#[rudask::task]
pub async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Sleeps `ms` milliseconds, then returns `x`.
#[rudask::task]
pub fn slow(ms: u64, x: i64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

/// Busy-waits `us` microseconds (no sleep, so the duration is not rounded
/// up by the timer), then returns `us`.
#[rudask::task]
pub fn spin(us: u64) -> u64 {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
    us
}

/// Sums a vector of floats.
#[rudask::task]
pub fn sum(xs: Vec<f64>) -> f64 {
    xs.iter().sum()
}

/// Describes a labelled vector: `"label: n=<len> sum=<sum>"`.
#[rudask::task]
pub fn describe(label: String, xs: Vec<f64>) -> String {
    format!("{label}: n={} sum={}", xs.len(), xs.iter().sum::<f64>())
}

/// Returns the id of the process that ran it, after looking at `xs` (so a
/// test can see where a dependency made it run).
#[rudask::task]
pub fn pid_with(xs: Vec<f64>) -> (u32, usize) {
    (std::process::id(), xs.len())
}

/// Sleeps 100 ms, then returns the id of its process and a number that is
/// different on every run: two equal results mean one run.
#[rudask::task]
pub fn fingerprint(x: i64) -> (u32, u64, i64) {
    std::thread::sleep(Duration::from_millis(100));
    (std::process::id(), unique_number(), x)
}

/// Fails with `Err(message)`.
#[rudask::task]
pub fn fail(message: String) -> Result<i64, String> {
    Err(message)
}

/// Sleeps `ms` milliseconds, then fails with `Err(message)`.
#[rudask::task]
pub fn fail_after(ms: u64, message: String) -> Result<i64, String> {
    std::thread::sleep(Duration::from_millis(ms));
    Err(message)
}

/// Panics with `message`.
#[rudask::task]
pub fn panics(message: String) -> i64 {
    panic!("{message}")
}

/// Kills its own process with `abort()`.
#[rudask::task]
pub fn abort_process(x: i64) -> i64 {
    if x >= 0 {
        std::process::abort();
    }
    x
}

/// A number that differs between calls and processes, without a random
/// number crate: the per-process random hash keys mixed with a counter and
/// the clock.
fn unique_number() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// How many times a [`Tracked`] value was encoded in this process.
pub static TRACKED_ENCODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A value that counts its own encodings, to check that in-process clusters
/// pass values without encoding them.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracked(pub Vec<u64>);

impl serde::Serialize for Tracked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TRACKED_ENCODES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Tracked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<u64>::deserialize(d).map(Tracked)
    }
}

/// A tracked vector `0..n`.
#[rudask::task]
pub fn make_tracked(n: u64) -> Tracked {
    Tracked((0..n).collect())
}

/// The sum of a tracked vector, as a new tracked value.
#[rudask::task]
pub fn sum_tracked(t: Tracked) -> Tracked {
    Tracked(vec![t.0.iter().sum()])
}

/// The name of the worker that ran it, with `x` (distinct `x`, distinct keys).
#[rudask::task]
pub fn where_am_i(x: i64) -> (String, i64) {
    (rudask::worker_name().unwrap_or_default(), x)
}

/// Start order of [`ticket`] calls in this process.
static TICKETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Takes a ticket (1, 2, ... in the order calls start in this process),
/// sleeps `ms` milliseconds, and returns the ticket with `label`.
#[rudask::task]
pub fn ticket(ms: u64, label: String) -> (u64, String) {
    let t = TICKETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    std::thread::sleep(Duration::from_millis(ms));
    (t, label)
}

/// [`gpu_job`] calls running now in this process.
static GPU_JOBS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Pretends to use a GPU for `ms` milliseconds. Returns its worker's name
/// and how many calls ran in this process at once when it started (the
/// largest of these over many calls is the peak concurrency).
#[rudask::task]
pub fn gpu_job(ms: u64, x: i64) -> (String, usize) {
    use std::sync::atomic::Ordering;
    let running = GPU_JOBS.fetch_add(1, Ordering::SeqCst) + 1;
    std::thread::sleep(Duration::from_millis(ms));
    GPU_JOBS.fetch_sub(1, Ordering::SeqCst);
    let _ = x;
    (rudask::worker_name().unwrap_or_default(), running)
}

/// Counts its runs in the file at `path`; fails the first `fails` runs,
/// then returns how many runs it took.
#[rudask::task]
pub fn flaky(path: String, fails: u32) -> Result<u32, String> {
    let runs =
        std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0u32) + 1;
    std::fs::write(&path, runs.to_string()).map_err(|e| format!("cannot write {path}: {e}"))?;
    if runs <= fails {
        Err(format!("flaky failure on run {runs}"))
    } else {
        Ok(runs)
    }
}
