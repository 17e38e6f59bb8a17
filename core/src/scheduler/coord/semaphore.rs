//! Named semaphores: at most `max` leases at a time, each owned by the
//! acquiring request; the leases of a client that leaves (a worker process
//! that dies takes its client along) are freed at once. A lease acquired
//! with a lease timeout also expires when its client (connected but hung)
//! does not refresh it in time; expiry is checked on the scheduler's tick.

use super::{invalid, Answer, Kind, Waiter};
use crate::protocol::CoordReply;
use crate::scheduler::{ClientId, Comm, Scheduler};
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct Semaphore {
    pub(super) max: u32,
    pub(super) leases: Vec<Lease>,
    /// Only while every lease is taken; with their lease timeouts.
    pub(super) waiters: VecDeque<(Waiter, Option<u64>)>,
}

/// A granted lease: its owner, and for a lease that expires, its timeout
/// and the clock (µs) after which it expires unless refreshed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lease {
    pub(super) owner: Waiter,
    expiry: Option<(u64, u64)>,
}

impl Lease {
    fn new(owner: Waiter, timeout: Option<u64>, now: u64) -> Self {
        Lease { owner, expiry: timeout.map(|t| (t, now.saturating_add(t))) }
    }
}

impl Scheduler {
    pub(super) fn semaphore_acquire(
        &mut self,
        w: Waiter,
        name: String,
        max_leases: u32,
        wait: bool,
        timeout: Option<u64>,
    ) -> Answer {
        if timeout == Some(0) {
            return Some(Err(invalid(format!(
                "semaphore {name} needs a lease timeout above zero"
            ))));
        }
        let now = self.now();
        if max_leases == 0 {
            return Some(Err(invalid(format!("semaphore {name} needs max_leases of at least 1"))));
        }
        let s = match self.coord.semaphores.get_mut(&name) {
            Some(s) => s,
            None => self.coord.semaphores.entry(name.clone()).or_insert(Semaphore {
                max: max_leases,
                leases: Vec::new(),
                waiters: VecDeque::new(),
            }),
        };
        if s.leases.len() < s.max as usize {
            s.leases.push(Lease::new(w, timeout, now));
            return Some(Ok(CoordReply::Granted));
        }
        if !wait {
            return Some(Ok(CoordReply::TimedOut));
        }
        s.waiters.push_back((w, timeout));
        self.coord_wait(w, Kind::Semaphore, name);
        None
    }

    pub(super) fn semaphore_release(
        &mut self,
        lease: Waiter,
        name: &str,
        comm: &mut impl Comm,
    ) -> Answer {
        let held = self.coord.semaphores.get_mut(name).and_then(|s| {
            let i = s.leases.iter().position(|l| l.owner == lease)?;
            s.leases.swap_remove(i);
            Some(())
        });
        if held.is_none() {
            if self.coord.expired_leases.remove(&lease) {
                return Some(Err(invalid(format!(
                    "semaphore {name}: this lease expired before it was released (not refreshed within its lease timeout; the client was hung or too busy), and may have been granted to someone else since; use a longer lease timeout"
                ))));
            }
            return Some(Err(invalid(format!(
                "semaphore {name} released too often: this lease is not held (released already, or never acquired)"
            ))));
        }
        self.semaphore_refill(name, comm);
        Some(Ok(CoordReply::Done))
    }

    /// Hands free leases to waiters; drops an unused semaphore.
    fn semaphore_refill(&mut self, name: &str, comm: &mut impl Comm) {
        let now = self.now();
        let Some(s) = self.coord.semaphores.get_mut(name) else { return };
        let mut granted = Vec::new();
        while s.leases.len() < s.max as usize {
            let Some((w, timeout)) = s.waiters.pop_front() else { break };
            s.leases.push(Lease::new(w, timeout, now));
            granted.push(w);
        }
        if s.leases.is_empty() {
            self.coord.semaphores.remove(name);
        }
        for w in granted {
            self.coord_grant(w, CoordReply::Granted, comm);
        }
    }

    pub(super) fn semaphore_value(&self, name: &str) -> Answer {
        let n = self.coord.semaphores.get(name).map_or(0, |s| s.leases.len());
        Some(Ok(CoordReply::Count(n as u64)))
    }

    pub(super) fn semaphore_holders(&self, name: &str) -> Answer {
        let names = self
            .coord
            .semaphores
            .get(name)
            .map(|s| s.leases.iter().map(|l| self.clients[l.owner.0].name.clone()).collect())
            .unwrap_or_default();
        Some(Ok(CoordReply::Holders(names)))
    }

    pub(super) fn semaphore_drop_waiter(&mut self, w: Waiter, name: &str) {
        if let Some(s) = self.coord.semaphores.get_mut(name) {
            s.waiters.retain(|x| x.0 != w);
        }
    }

    /// Frees the leases of a client that left.
    pub(super) fn semaphore_client_lost(&mut self, c: ClientId, comm: &mut impl Comm) {
        let mut touched = Vec::new();
        for (name, s) in &mut self.coord.semaphores {
            let before = s.leases.len();
            s.leases.retain(|l| l.owner.0 != c);
            if s.leases.len() != before {
                touched.push(name.clone());
            }
        }
        for name in touched {
            self.semaphore_refill(&name, comm);
        }
    }

    /// Pushes back the expiry of leases `leases` of client `c`; leases not
    /// held (released or expired) are ignored, as their release reports it.
    pub(super) fn semaphore_refresh(&mut self, c: ClientId, name: &str, leases: &[u64]) {
        let now = self.now();
        let Some(s) = self.coord.semaphores.get_mut(name) else { return };
        for l in &mut s.leases {
            if let Some((timeout, until)) = &mut l.expiry {
                if l.owner.0 == c && leases.contains(&l.owner.1) {
                    *until = now.saturating_add(*timeout);
                }
            }
        }
    }

    /// Frees the leases not refreshed in time, granting them to waiters.
    pub(in crate::scheduler) fn semaphore_expire(&mut self, comm: &mut impl Comm) {
        let now = self.now();
        let mut touched = Vec::new();
        for (name, s) in &mut self.coord.semaphores {
            let before = s.leases.len();
            s.leases.retain(|l| match l.expiry {
                Some((_, until)) if until < now => {
                    tracing::warn!(semaphore = %name, "a lease was not refreshed within its lease timeout; freeing it");
                    self.coord.expired_leases.insert(l.owner);
                    false
                }
                _ => true,
            });
            if s.leases.len() != before {
                touched.push(name.clone());
            }
        }
        for name in touched {
            self.semaphore_refill(&name, comm);
        }
    }
}
