//! Named locks: one holder at a time (an acquiring request, so two tasks
//! sharing a client still exclude each other), waiters served first come,
//! first served.

use super::{invalid, Answer, Kind, Waiter};
use crate::protocol::CoordReply;
use crate::scheduler::{ClientId, Comm, Scheduler};
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub(super) struct Lock {
    pub(super) holder: Option<Waiter>,
    pub(super) waiters: VecDeque<Waiter>,
}

impl Scheduler {
    pub(super) fn lock_acquire(&mut self, w: Waiter, name: String, wait: bool) -> Answer {
        match self.coord.locks.get_mut(&name) {
            None => {
                self.coord.locks.insert(name, Lock { holder: Some(w), waiters: VecDeque::new() });
                Some(Ok(CoordReply::Granted))
            }
            Some(_) if !wait => Some(Ok(CoordReply::TimedOut)),
            Some(l) => {
                l.waiters.push_back(w);
                self.coord_wait(w, Kind::Lock, name);
                None
            }
        }
    }

    pub(super) fn lock_release(
        &mut self,
        token: Waiter,
        name: &str,
        comm: &mut impl Comm,
    ) -> Answer {
        match self.coord.locks.get(name) {
            Some(l) if l.holder == Some(token) => {
                self.lock_pass_on(name, comm);
                Some(Ok(CoordReply::Done))
            }
            _ => Some(Err(invalid(format!(
                "lock {name} is not held by this Lock handle; release only a lock you acquired (and once)"
            )))),
        }
    }

    /// The holder let go: the first waiter gets the lock.
    fn lock_pass_on(&mut self, name: &str, comm: &mut impl Comm) {
        let Some(l) = self.coord.locks.get_mut(name) else { return };
        match l.waiters.pop_front() {
            Some(next) => {
                l.holder = Some(next);
                self.coord_grant(next, CoordReply::Granted, comm);
            }
            None => {
                self.coord.locks.remove(name);
            }
        }
    }

    pub(super) fn lock_holder(&self, name: &str) -> Answer {
        let holder = self.coord.locks.get(name).and_then(|l| l.holder);
        let names = holder.map(|(c, _)| self.clients[c].name.clone()).into_iter().collect();
        Some(Ok(CoordReply::Holders(names)))
    }

    pub(super) fn lock_drop_waiter(&mut self, w: Waiter, name: &str) {
        if let Some(l) = self.coord.locks.get_mut(name) {
            l.waiters.retain(|&x| x != w);
        }
    }

    /// Locks held by a client that left pass on to their next waiter.
    pub(super) fn lock_client_lost(&mut self, c: ClientId, comm: &mut impl Comm) {
        let held: Vec<String> = self
            .coord
            .locks
            .iter()
            .filter(|(_, l)| l.holder.is_some_and(|h| h.0 == c))
            .map(|(n, _)| n.clone())
            .collect();
        for name in held {
            self.lock_pass_on(&name, comm);
        }
    }
}
