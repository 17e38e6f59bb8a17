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

/// Fails unless a file exists at `path`, then returns `x`: a test makes it
/// fail, creates the file and retries.
#[rudask::task]
pub fn needs_file(path: String, x: i64) -> Result<i64, String> {
    if std::path::Path::new(&path).exists() {
        Ok(x)
    } else {
        Err(format!("{path} does not exist yet"))
    }
}

/// Writes `x` to the file at `path` (after `after`, a dependency that orders
/// it), and returns `x`.
#[rudask::task]
pub fn write_marker(path: String, after: i64, x: i64) -> Result<i64, String> {
    std::fs::write(&path, format!("{after} {x}")).map_err(|e| format!("writing {path}: {e}"))?;
    Ok(x)
}

// --- Cluster administration (tests/tests/admin.rs, tests/tests/events.rs) ---

/// The id of the process that ran it and a number drawn once per process:
/// the same pid with another number means the process was replaced (exec).
#[rudask::task]
pub fn process_identity() -> (u32, u64) {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    (std::process::id(), *NONCE.get_or_init(unique_number))
}

/// Returns its process id, but panics with `message` in process `pid`.
#[rudask::task]
pub fn panic_in_pid(pid: u32, message: String) -> u32 {
    if std::process::id() == pid {
        panic!("{message}");
    }
    std::process::id()
}

/// Returns its process id, but kills its process with `abort()` in process
/// `pid` (after `ms` milliseconds, so the others answer first).
#[rudask::task]
pub fn abort_in_pid(pid: u32, ms: u64) -> u32 {
    if std::process::id() == pid {
        std::thread::sleep(Duration::from_millis(ms));
        std::process::abort();
    }
    std::process::id()
}

/// The contents of file `name` in the worker's local directory, if it is there.
#[rudask::task]
pub fn read_local_file(name: String) -> Option<String> {
    let dir = rudask::local_directory()?;
    std::fs::read_to_string(dir.join(name)).ok()
}

/// Whether it runs inside a worker (has a local directory), and its process id.
#[rudask::task]
pub async fn where_am_i() -> (bool, u32) {
    (rudask::local_directory().is_some(), std::process::id())
}

/// Submits `inc(x)` through the worker's shared client and returns its result.
#[rudask::task]
pub async fn inc_from_task(x: i64) -> rudask::Result<i64> {
    let client = rudask::get_client().await?;
    let f = client.submit(inc, (x,))?;
    rudask::secede()?;
    f.await
}

/// Fibonacci by nested submits from an async task: `fib(n-1)` and
/// `fib(n-2)` as pure keys, awaited after seceding.
#[rudask::task]
pub async fn fib_async(n: u64) -> rudask::Result<u64> {
    if n < 2 {
        return Ok(n);
    }
    let client = rudask::get_client().await?;
    let a = client.submit(fib_async, (n - 1,))?;
    let b = client.submit(fib_async, (n - 2,))?;
    rudask::secede()?;
    let total = a.await? + b.await?;
    rudask::rejoin()?;
    Ok(total)
}

/// Fibonacci by nested submits from a synchronous task, through
/// `worker_client` and the blocking client.
#[rudask::task]
pub fn fib_sync(n: u64) -> rudask::Result<u64> {
    if n < 2 {
        return Ok(n);
    }
    let client = rudask::worker_client()?;
    let a = client.submit(fib_sync, (n - 1,))?;
    let b = client.submit(fib_sync, (n - 2,))?;
    Ok(a.result()? + b.result()?)
}

/// What calling `worker_client` (which blocks) inside an async task gives.
#[rudask::task]
pub async fn worker_client_in_async_task() -> String {
    match rudask::worker_client() {
        Ok(_) => "no error".to_string(),
        Err(e) => e.to_string(),
    }
}

/// A synchronous task that secedes, waits `ms` milliseconds without its
/// slot, rejoins and returns its worker's process id.
#[rudask::task]
pub fn seceded_sleep(ms: u64) -> rudask::Result<u32> {
    rudask::secede()?;
    std::thread::sleep(Duration::from_millis(ms));
    rudask::rejoin()?;
    Ok(std::process::id())
}

/// Returns 0 at once for 0; otherwise waits on `inc(n)` through
/// `worker_client`: a function that usually runs inline, then blocks.
#[rudask::task]
pub fn nested_unless_zero(n: i64) -> rudask::Result<i64> {
    if n == 0 {
        return Ok(0);
    }
    let client = rudask::worker_client()?;
    client.submit(inc, (n,))?.result()
}

/// Waits, through `worker_client`, on `spin(us)` submitted under its pure key
/// (so on a task of that key submitted before, if there is one).
#[rudask::task]
pub fn wait_on_spin(us: u64) -> rudask::Result<u64> {
    let client = rudask::worker_client()?;
    client.submit(spin, (us,))?.result()
}

/// The name of the worker that ran it, with `x` (distinct `x`, distinct keys).
#[rudask::task]
pub fn worker_of(x: i64) -> (String, i64) {
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

/// Adds 1 to variable `counter` `n` times, each under lock `lock`, from the
/// worker's shared client; returns the worker's process id.
#[rudask::task]
pub async fn locked_increments(lock: String, counter: String, n: u32) -> rudask::Result<u32> {
    use rudask::coord::{Lock, Variable};
    let client = rudask::get_client().await?;
    let lock = Lock::new(&client, &lock);
    let counter: Variable<i64> = Variable::new(&client, &counter);
    for _ in 0..n {
        lock.acquire(None).await?;
        let v = match counter.get(Some(Duration::ZERO)).await {
            Ok(v) => v,
            Err(rudask::Error::Timeout(_)) => 0,
            Err(e) => return Err(e),
        };
        counter.set(v + 1).await?;
        lock.release().await?;
    }
    Ok(std::process::id())
}

/// Holds a lease of semaphore `name` (`max` leases) for `ms` milliseconds
/// and returns how many holders it saw at most meanwhile, counted in
/// variable `name`-active under lock `name`-lock.
#[rudask::task]
pub async fn limited_by_semaphore(name: String, max: u32, ms: u64) -> rudask::Result<i64> {
    use rudask::coord::{Lock, Semaphore, Variable};
    let client = rudask::get_client().await?;
    let sem = Semaphore::new(&client, &name, max);
    let lock = Lock::new(&client, &format!("{name}-lock"));
    let active: Variable<i64> = Variable::new(&client, &format!("{name}-active"));
    let bump = |d: i64| {
        let (lock, active) = (&lock, &active);
        async move {
            lock.acquire(None).await?;
            let v = active.get(Some(Duration::ZERO)).await.unwrap_or(0) + d;
            active.set(v).await?;
            lock.release().await?;
            Ok::<i64, rudask::Error>(v)
        }
    };
    sem.acquire(None).await?;
    let seen = bump(1).await?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    bump(-1).await?;
    sem.release().await?;
    Ok(seen)
}

/// Takes a lease of semaphore `name` (one lease), sets event `name`-held,
/// then sleeps for a minute holding it.
#[rudask::task]
pub async fn hold_lease(name: String) -> rudask::Result<()> {
    use rudask::coord::{Event, Semaphore};
    let client = rudask::get_client().await?;
    let sem = Semaphore::new(&client, &name, 1);
    sem.acquire(None).await?;
    Event::new(&client, &format!("{name}-held")).set().await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    sem.release().await
}

/// Waits up to 30 s for event `name` (a synchronous task, through the
/// blocking primitives); whether it was set.
#[rudask::task]
pub fn wait_event(name: String) -> rudask::Result<bool> {
    let client = rudask::worker_client()?;
    rudask::coord::blocking::Event::new(&client, &name).wait(Some(Duration::from_secs(30)))
}

/// Publishes `0..n` on `topic` from inside a task.
#[rudask::task]
pub async fn publish_numbers(topic: String, n: u32) -> rudask::Result<()> {
    let client = rudask::get_client().await?;
    let publisher = rudask::coord::Pub::new(&client, &topic);
    for i in 0..n {
        publisher.put(i)?;
    }
    Ok(())
}

/// A counter actor for the actor tests.
#[derive(Debug)]
#[rudask::actor]
pub struct TestCounter {
    /// The count.
    #[actor(attr)]
    pub n: u64,
    /// A name given at creation.
    #[actor(attr)]
    pub label: String,
}

#[rudask::actor]
impl TestCounter {
    /// A counter starting at `start`.
    pub fn new(start: u64, label: String) -> Self {
        TestCounter { n: start, label }
    }

    /// Adds one and returns the count.
    pub fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    /// Adds `x` after yielding once, and returns the count.
    pub async fn add_async(&mut self, x: u64) -> u64 {
        let before = self.n;
        yield_once().await;
        self.n = before + x;
        self.n
    }

    /// Panics with `message`.
    pub fn boom(&mut self, message: String) -> u64 {
        panic!("{message}")
    }

    /// Errs with `message` when it is not empty.
    pub fn check(&self, message: String) -> Result<u64, String> {
        if message.is_empty() {
            Ok(self.n)
        } else {
            Err(message)
        }
    }

    /// The process id of the actor's worker.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }
}

/// Suspends once, so an async actor method really awaits.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

static TRACKED_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An actor that counts its drops in its worker's process.
#[derive(Debug)]
#[rudask::actor]
pub struct DropTracked {}

impl Drop for DropTracked {
    fn drop(&mut self) {
        TRACKED_DROPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[rudask::actor]
impl DropTracked {
    /// A new tracked actor (a constructor taking no arguments).
    pub fn create() -> Self {
        DropTracked {}
    }

    /// The process id of the actor's worker.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }
}

/// How many `DropTracked` actors this process dropped.
#[rudask::task]
pub fn tracked_drops() -> u64 {
    TRACKED_DROPS.load(std::sync::atomic::Ordering::SeqCst)
}

/// Calls `counter.increment()` `times` times from inside a task and returns
/// the last count.
#[rudask::task]
pub async fn increment_actor(
    counter: rudask::Actor<TestCounter>,
    times: u64,
) -> rudask::Result<u64> {
    let mut last = 0;
    for _ in 0..times {
        last = counter.increment().await?;
    }
    Ok(last)
}

pub mod example_plugin;

/// The value of environment variable `name` in the worker running the task.
#[rudask::task]
pub fn getenv(name: String) -> Option<String> {
    std::env::var(name).ok()
}

/// Takes a lease of semaphore `name` (one lease) that expires unless
/// refreshed within `timeout_ms`, sets event `name`-held, then sleeps for a
/// minute holding it.
#[rudask::task]
pub async fn hold_expiring_lease(name: String, timeout_ms: u64) -> rudask::Result<()> {
    use rudask::coord::{Event, Semaphore};
    let client = rudask::get_client().await?;
    let sem = Semaphore::with_lease_timeout(&client, &name, 1, Duration::from_millis(timeout_ms));
    sem.acquire(None).await?;
    Event::new(&client, &format!("{name}-held")).set().await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    sem.release().await
}

/// An interleaving actor whose `meet` calls wait for each other.
#[derive(Debug, Default)]
#[rudask::actor]
pub struct Meeting {
    inside: std::sync::atomic::AtomicU64,
    meetings: std::sync::atomic::AtomicU64,
    left: std::sync::atomic::AtomicU64,
    arrived: tokio::sync::Notify,
    /// How many `write` calls ran.
    #[actor(attr)]
    pub writes: u64,
}

#[rudask::actor(interleave)]
impl Meeting {
    /// A new meeting.
    pub fn new() -> Self {
        Meeting::default()
    }

    /// Waits up to `patience_ms` for `n` calls (this one included) to be
    /// inside at once; returns whether they were, and the writes seen on entry.
    pub async fn meet(&self, n: u64, patience_ms: u64) -> (bool, u64) {
        let writes = self.writes;
        let met = meet([&self.inside, &self.meetings], &self.arrived, n, patience_ms).await;
        self.left.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (met, writes)
    }

    /// An exclusive call: counts a write, and returns how many `meet` calls
    /// had ended and how many are inside.
    pub async fn write(&mut self) -> (u64, u64) {
        self.writes += 1;
        yield_once().await;
        let left = self.left.load(std::sync::atomic::Ordering::SeqCst);
        (left, self.inside.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The same meeting without `interleave`: its calls run one at a time.
#[derive(Debug, Default)]
#[rudask::actor]
pub struct SerialMeeting {
    inside: std::sync::atomic::AtomicU64,
    meetings: std::sync::atomic::AtomicU64,
    arrived: tokio::sync::Notify,
}

#[rudask::actor]
impl SerialMeeting {
    /// A new meeting.
    pub fn new() -> Self {
        SerialMeeting::default()
    }

    /// As [`Meeting::meet`], without the writes.
    pub async fn meet(&self, n: u64, patience_ms: u64) -> bool {
        meet([&self.inside, &self.meetings], &self.arrived, n, patience_ms).await
    }
}

/// Enters; whoever sees `n` calls inside at once counts a meeting, which
/// every call inside then sees (the first to leave must not strand the
/// others).
async fn meet(
    [inside, meetings]: [&std::sync::atomic::AtomicU64; 2],
    arrived: &tokio::sync::Notify,
    n: u64,
    patience_ms: u64,
) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    let seen = meetings.load(SeqCst);
    inside.fetch_add(1, SeqCst);
    arrived.notify_waiters();
    let wait = async {
        loop {
            let notified = arrived.notified();
            if meetings.load(SeqCst) > seen {
                break;
            }
            if inside.load(SeqCst) >= n {
                meetings.fetch_add(1, SeqCst);
                arrived.notify_waiters();
                break;
            }
            notified.await;
        }
    };
    let met =
        tokio::time::timeout(std::time::Duration::from_millis(patience_ms), wait).await.is_ok();
    inside.fetch_sub(1, SeqCst);
    met
}
/// Calls `actor.pid()` once, sets event `name`-started, waits up to 30 s for
/// event `name`-go, then calls it `times` more times; returns the worker
/// process id the calls reached.
#[rudask::task]
pub async fn call_actor_after_go(
    actor: rudask::Actor<DropTracked>,
    name: String,
    times: u32,
) -> rudask::Result<u32> {
    use rudask::coord::Event;
    let pid = actor.pid().await?;
    let client = rudask::get_client().await?;
    Event::new(&client, &format!("{name}-started")).set().await?;
    let patience = Duration::from_secs(30);
    if !Event::new(&client, &format!("{name}-go")).wait(Some(patience)).await? {
        return Err(rudask::Error::Timeout(patience));
    }
    for _ in 0..times {
        assert_eq!(actor.pid().await?, pid);
    }
    Ok(pid)
}

/// The actor's worker's process id, asked once `_ready` (a dependency) is
/// computed: the task decodes the handle only then.
#[rudask::task]
pub async fn actor_pid_when_ready(
    actor: rudask::Actor<DropTracked>,
    _ready: bool,
) -> rudask::Result<u32> {
    actor.pid().await
}

pub mod dataframe_tasks;

pub mod array_tasks;

pub mod bag;

pub mod shards;

/// Tasks of the memory-limit tests.
pub mod memory_tasks;
