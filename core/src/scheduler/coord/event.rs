//! Named events: a flag that waiters wait to see set.

use super::{Answer, Kind, Waiter};
use crate::protocol::CoordReply;
use crate::scheduler::{Comm, Scheduler};

#[derive(Debug, Default)]
pub(super) struct Event {
    pub(super) set: bool,
    /// Only while not set.
    pub(super) waiters: Vec<Waiter>,
}

impl Scheduler {
    pub(super) fn event_set(&mut self, name: String, comm: &mut impl Comm) -> Answer {
        let e = self.coord.events.entry(name).or_default();
        e.set = true;
        for w in std::mem::take(&mut e.waiters) {
            self.coord_grant(w, CoordReply::Granted, comm);
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn event_clear(&mut self, name: &str) -> Answer {
        if let Some(e) = self.coord.events.get_mut(name) {
            e.set = false;
            if e.waiters.is_empty() {
                self.coord.events.remove(name);
            }
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn event_wait(&mut self, w: Waiter, name: String, wait: bool) -> Answer {
        match self.coord.events.get(&name) {
            Some(e) if e.set => Some(Ok(CoordReply::Granted)),
            _ if !wait => Some(Ok(CoordReply::TimedOut)),
            _ => {
                self.coord.events.entry(name.clone()).or_default().waiters.push(w);
                self.coord_wait(w, Kind::Event, name);
                None
            }
        }
    }

    pub(super) fn event_is_set(&self, name: &str) -> Answer {
        Some(Ok(CoordReply::Flag(self.coord.events.get(name).is_some_and(|e| e.set))))
    }

    pub(super) fn event_drop_waiter(&mut self, w: Waiter, name: &str) {
        if let Some(e) = self.coord.events.get_mut(name) {
            e.waiters.retain(|&x| x != w);
            if !e.set && e.waiters.is_empty() {
                self.coord.events.remove(name);
            }
        }
    }
}
