//! The coordination primitives for synchronous code, over a
//! [`blocking::Client`](crate::blocking::Client): each method waits for its
//! async counterpart in [`crate::coord`], whose docs describe the semantics.
//!
//! ```no_run
//! use rudask::coord::blocking::{Lock, Variable};
//! # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
//! let lock = Lock::new(&client, "counter");
//! let counter: Variable<i64> = Variable::new(&client, "counter");
//! lock.acquire(None)?;
//! let n = counter.get(Some(std::time::Duration::ZERO)).unwrap_or(0);
//! counter.set(n + 1)?;
//! lock.release()?;
//! # Ok(()) }
//! ```

use super::Storable;
use crate::blocking::Client;
use crate::error::Result;
use std::future::Future as StdFuture;
use std::time::Duration;

fn run<T>(client: &Client, fut: impl StdFuture<Output = Result<T>>) -> Result<T> {
    client.block_on(fut)?
}

/// A blocking [`crate::coord::Queue`].
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let q: rudask::coord::blocking::Queue<i64> = rudask::coord::blocking::Queue::new(&client, "q", 0);
/// q.put(1, None)?;
/// assert_eq!(q.get(None)?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Queue<T> {
    client: Client,
    inner: super::Queue<T>,
}

impl<T: Storable> Queue<T> {
    /// A handle on queue `name` (see [`crate::coord::Queue::new`]).
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let q: rudask::coord::blocking::Queue<String> = rudask::coord::blocking::Queue::new(&client, "jobs", 10);
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str, maxsize: u32) -> Self {
        Queue { client: client.clone(), inner: super::Queue::new(client.as_async(), name, maxsize) }
    }

    /// See [`crate::coord::Queue::put`].
    ///
    /// ```no_run
    /// # fn demo(q: rudask::coord::blocking::Queue<i64>) -> rudask::Result<()> {
    /// q.put(1, None)?;
    /// # Ok(()) }
    /// ```
    pub fn put(&self, value: T, timeout: Option<Duration>) -> Result<()> {
        run(&self.client, self.inner.put(value, timeout))
    }

    /// See [`crate::coord::Queue::get`].
    ///
    /// ```no_run
    /// # fn demo(q: rudask::coord::blocking::Queue<i64>) -> rudask::Result<()> {
    /// let n = q.get(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, timeout: Option<Duration>) -> Result<T> {
        run(&self.client, self.inner.get(timeout))
    }

    /// See [`crate::coord::Queue::get_batch`].
    ///
    /// ```no_run
    /// # fn demo(q: rudask::coord::blocking::Queue<i64>) -> rudask::Result<()> {
    /// let some = q.get_batch(10)?;
    /// # Ok(()) }
    /// ```
    pub fn get_batch(&self, n: usize) -> Result<Vec<T>> {
        run(&self.client, self.inner.get_batch(n))
    }

    /// See [`crate::coord::Queue::qsize`].
    ///
    /// ```no_run
    /// # fn demo(q: rudask::coord::blocking::Queue<i64>) -> rudask::Result<()> {
    /// println!("{}", q.qsize()?);
    /// # Ok(()) }
    /// ```
    pub fn qsize(&self) -> Result<usize> {
        run(&self.client, self.inner.qsize())
    }
}

/// A blocking [`crate::coord::Variable`].
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let v: rudask::coord::blocking::Variable<i64> = rudask::coord::blocking::Variable::new(&client, "v");
/// v.set(1)?;
/// assert_eq!(v.get(None)?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Variable<T> {
    client: Client,
    inner: super::Variable<T>,
}

impl<T: Storable> Variable<T> {
    /// A handle on variable `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let v: rudask::coord::blocking::Variable<i64> = rudask::coord::blocking::Variable::new(&client, "v");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Variable { client: client.clone(), inner: super::Variable::new(client.as_async(), name) }
    }

    /// See [`crate::coord::Variable::set`].
    ///
    /// ```no_run
    /// # fn demo(v: rudask::coord::blocking::Variable<i64>) -> rudask::Result<()> {
    /// v.set(2)?;
    /// # Ok(()) }
    /// ```
    pub fn set(&self, value: T) -> Result<()> {
        run(&self.client, self.inner.set(value))
    }

    /// See [`crate::coord::Variable::get`].
    ///
    /// ```no_run
    /// # fn demo(v: rudask::coord::blocking::Variable<i64>) -> rudask::Result<()> {
    /// let n = v.get(None)?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, timeout: Option<Duration>) -> Result<T> {
        run(&self.client, self.inner.get(timeout))
    }

    /// See [`crate::coord::Variable::delete`].
    ///
    /// ```no_run
    /// # fn demo(v: rudask::coord::blocking::Variable<i64>) -> rudask::Result<()> {
    /// v.delete()?;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self) -> Result<()> {
        run(&self.client, self.inner.delete())
    }
}

/// A blocking [`crate::coord::Lock`].
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let lock = rudask::coord::blocking::Lock::new(&client, "l");
/// lock.acquire(None)?;
/// lock.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lock {
    client: Client,
    inner: super::Lock,
}

impl Lock {
    /// A handle on lock `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let lock = rudask::coord::blocking::Lock::new(&client, "l");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Lock { client: client.clone(), inner: super::Lock::new(client.as_async(), name) }
    }

    /// See [`crate::coord::Lock::acquire`].
    ///
    /// ```no_run
    /// # fn demo(lock: rudask::coord::blocking::Lock) -> rudask::Result<()> {
    /// let got = lock.acquire(Some(std::time::Duration::ZERO))?;
    /// # Ok(()) }
    /// ```
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        run(&self.client, self.inner.acquire(timeout))
    }

    /// See [`crate::coord::Lock::release`].
    ///
    /// ```no_run
    /// # fn demo(lock: rudask::coord::blocking::Lock) -> rudask::Result<()> {
    /// lock.release()?;
    /// # Ok(()) }
    /// ```
    pub fn release(&self) -> Result<()> {
        run(&self.client, self.inner.release())
    }

    /// See [`crate::coord::Lock::locked`].
    ///
    /// ```no_run
    /// # fn demo(lock: rudask::coord::blocking::Lock) -> rudask::Result<()> {
    /// println!("{}", lock.locked()?);
    /// # Ok(()) }
    /// ```
    pub fn locked(&self) -> Result<bool> {
        run(&self.client, self.inner.locked())
    }

    /// See [`crate::coord::Lock::holder`].
    ///
    /// ```no_run
    /// # fn demo(lock: rudask::coord::blocking::Lock) -> rudask::Result<()> {
    /// println!("{:?}", lock.holder()?);
    /// # Ok(()) }
    /// ```
    pub fn holder(&self) -> Result<Option<String>> {
        run(&self.client, self.inner.holder())
    }
}

/// A blocking [`crate::coord::Event`].
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let e = rudask::coord::blocking::Event::new(&client, "go");
/// e.set()?;
/// assert!(e.wait(None)?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    client: Client,
    inner: super::Event,
}

impl Event {
    /// A handle on event `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let e = rudask::coord::blocking::Event::new(&client, "go");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Event { client: client.clone(), inner: super::Event::new(client.as_async(), name) }
    }

    /// See [`crate::coord::Event::set`].
    ///
    /// ```no_run
    /// # fn demo(e: rudask::coord::blocking::Event) -> rudask::Result<()> {
    /// e.set()?;
    /// # Ok(()) }
    /// ```
    pub fn set(&self) -> Result<()> {
        run(&self.client, self.inner.set())
    }

    /// See [`crate::coord::Event::clear`].
    ///
    /// ```no_run
    /// # fn demo(e: rudask::coord::blocking::Event) -> rudask::Result<()> {
    /// e.clear()?;
    /// # Ok(()) }
    /// ```
    pub fn clear(&self) -> Result<()> {
        run(&self.client, self.inner.clear())
    }

    /// See [`crate::coord::Event::wait`].
    ///
    /// ```no_run
    /// # fn demo(e: rudask::coord::blocking::Event) -> rudask::Result<()> {
    /// let set = e.wait(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        run(&self.client, self.inner.wait(timeout))
    }

    /// See [`crate::coord::Event::is_set`].
    ///
    /// ```no_run
    /// # fn demo(e: rudask::coord::blocking::Event) -> rudask::Result<()> {
    /// println!("{}", e.is_set()?);
    /// # Ok(()) }
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        run(&self.client, self.inner.is_set())
    }
}

/// A blocking [`crate::coord::Semaphore`].
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let s = rudask::coord::blocking::Semaphore::new(&client, "s", 2);
/// s.acquire(None)?;
/// s.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Semaphore {
    client: Client,
    inner: super::Semaphore,
}

impl Semaphore {
    /// A handle on semaphore `name` with `max_leases` leases.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) {
    /// let s = rudask::coord::blocking::Semaphore::new(&client, "s", 2);
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str, max_leases: u32) -> Self {
        let inner = super::Semaphore::new(client.as_async(), name, max_leases);
        Semaphore { client: client.clone(), inner }
    }

    /// A handle whose leases expire when not refreshed within
    /// `lease_timeout` (see [`crate::coord::Semaphore::with_lease_timeout`]).
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let s = rudask::coord::blocking::Semaphore::with_lease_timeout(
    ///     &client,
    ///     "s",
    ///     2,
    ///     std::time::Duration::from_secs(30),
    /// );
    /// s.acquire(None)?;
    /// s.release()?;
    /// # Ok(()) }
    /// ```
    pub fn with_lease_timeout(
        client: &Client,
        name: &str,
        max_leases: u32,
        lease_timeout: Duration,
    ) -> Self {
        let inner = super::Semaphore::with_lease_timeout(
            client.as_async(),
            name,
            max_leases,
            lease_timeout,
        );
        Semaphore { client: client.clone(), inner }
    }

    /// See [`crate::coord::Semaphore::acquire`].
    ///
    /// ```no_run
    /// # fn demo(s: rudask::coord::blocking::Semaphore) -> rudask::Result<()> {
    /// let got = s.acquire(None)?;
    /// # Ok(()) }
    /// ```
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        run(&self.client, self.inner.acquire(timeout))
    }

    /// See [`crate::coord::Semaphore::release`].
    ///
    /// ```no_run
    /// # fn demo(s: rudask::coord::blocking::Semaphore) -> rudask::Result<()> {
    /// s.release()?;
    /// # Ok(()) }
    /// ```
    pub fn release(&self) -> Result<()> {
        run(&self.client, self.inner.release())
    }

    /// See [`crate::coord::Semaphore::get_value`].
    ///
    /// ```no_run
    /// # fn demo(s: rudask::coord::blocking::Semaphore) -> rudask::Result<()> {
    /// println!("{}", s.get_value()?);
    /// # Ok(()) }
    /// ```
    pub fn get_value(&self) -> Result<usize> {
        run(&self.client, self.inner.get_value())
    }

    /// See [`crate::coord::Semaphore::holders`].
    ///
    /// ```no_run
    /// # fn demo(s: rudask::coord::blocking::Semaphore) -> rudask::Result<()> {
    /// println!("{:?}", s.holders()?);
    /// # Ok(()) }
    /// ```
    pub fn holders(&self) -> Result<Vec<String>> {
        run(&self.client, self.inner.holders())
    }
}

/// A blocking [`crate::coord::Sub`] (publish with [`crate::coord::Pub`],
/// which does not wait).
///
/// ```no_run
/// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
/// let mut sub: rudask::coord::blocking::Sub<u32> = rudask::coord::blocking::Sub::new(&client, "t")?;
/// rudask::coord::Pub::new(client.as_async(), "t").put(1u32)?;
/// assert_eq!(sub.get(None)?, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sub<T> {
    client: Client,
    inner: super::Sub<T>,
}

impl<T: Storable> Sub<T> {
    /// Subscribes to `topic` (see [`crate::coord::Sub::new`]).
    ///
    /// ```no_run
    /// # fn demo(client: rudask::blocking::Client) -> rudask::Result<()> {
    /// let sub: rudask::coord::blocking::Sub<u32> = rudask::coord::blocking::Sub::new(&client, "t")?;
    /// # Ok(()) }
    /// ```
    pub fn new(client: &Client, topic: &str) -> Result<Self> {
        let inner = run(client, super::Sub::new(client.as_async(), topic))?;
        Ok(Sub { client: client.clone(), inner })
    }

    /// See [`crate::coord::Sub::get`].
    ///
    /// ```no_run
    /// # fn demo(mut sub: rudask::coord::blocking::Sub<u32>) -> rudask::Result<()> {
    /// let n = sub.get(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok(()) }
    /// ```
    pub fn get(&mut self, timeout: Option<Duration>) -> Result<T> {
        run(&self.client, self.inner.get(timeout))
    }
}
