//! Named semaphores: at most `max` leases at a time, each owned by the
//! acquiring request; the leases of a client that leaves (a worker process
//! that dies takes its client along) are freed at once.

use super::{invalid, Answer, Kind, Waiter};
use crate::protocol::CoordReply;
use crate::scheduler::{ClientId, Comm, Scheduler};
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct Semaphore {
    pub(super) max: u32,
    pub(super) leases: Vec<Waiter>,
    /// Only while every lease is taken.
    pub(super) waiters: VecDeque<Waiter>,
}

impl Scheduler {
    pub(super) fn semaphore_acquire(
        &mut self,
        w: Waiter,
        name: String,
        max_leases: u32,
        wait: bool,
    ) -> Answer {
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
            s.leases.push(w);
            return Some(Ok(CoordReply::Granted));
        }
        if !wait {
            return Some(Ok(CoordReply::TimedOut));
        }
        s.waiters.push_back(w);
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
            let i = s.leases.iter().position(|&l| l == lease)?;
            s.leases.swap_remove(i);
            Some(())
        });
        if held.is_none() {
            return Some(Err(invalid(format!(
                "semaphore {name} released too often: this lease is not held (released already, or never acquired)"
            ))));
        }
        self.semaphore_refill(name, comm);
        Some(Ok(CoordReply::Done))
    }

    /// Hands free leases to waiters; drops an unused semaphore.
    fn semaphore_refill(&mut self, name: &str, comm: &mut impl Comm) {
        let Some(s) = self.coord.semaphores.get_mut(name) else { return };
        let mut granted = Vec::new();
        while s.leases.len() < s.max as usize {
            let Some(w) = s.waiters.pop_front() else { break };
            s.leases.push(w);
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
            .map(|s| s.leases.iter().map(|&(c, _)| self.clients[c].name.clone()).collect())
            .unwrap_or_default();
        Some(Ok(CoordReply::Holders(names)))
    }

    pub(super) fn semaphore_drop_waiter(&mut self, w: Waiter, name: &str) {
        if let Some(s) = self.coord.semaphores.get_mut(name) {
            s.waiters.retain(|&x| x != w);
        }
    }

    /// Frees the leases of a client that left.
    pub(super) fn semaphore_client_lost(&mut self, c: ClientId, comm: &mut impl Comm) {
        let mut touched = Vec::new();
        for (name, s) in &mut self.coord.semaphores {
            let before = s.leases.len();
            s.leases.retain(|l| l.0 != c);
            if s.leases.len() != before {
                touched.push(name.clone());
            }
        }
        for name in touched {
            self.semaphore_refill(&name, comm);
        }
    }
}
