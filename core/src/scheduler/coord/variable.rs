//! Named variables: one value, replaced by `set`; `get` may wait for the first.

use super::{Answer, Kind, Waiter};
use crate::protocol::{CoordReply, CoordValue};
use crate::scheduler::{Comm, Scheduler};

#[derive(Debug, Default)]
pub(super) struct Variable {
    pub(super) value: Option<CoordValue>,
    /// Waiting `get`s; only while `value` is `None`.
    pub(super) waiters: Vec<Waiter>,
}

impl Scheduler {
    pub(super) fn variable_set(
        &mut self,
        name: String,
        value: CoordValue,
        comm: &mut impl Comm,
    ) -> Answer {
        if let Err(e) = self.coord_hold(&value.keys, comm) {
            return Some(Err(e));
        }
        let v = self.coord.variables.entry(name).or_default();
        let waiters = std::mem::take(&mut v.waiters);
        let old = v.value.replace(value);
        if !waiters.is_empty() {
            let value = v.value.clone().expect("just set");
            for w in waiters {
                self.coord_hand_over(w.0, &value, comm);
                self.coord_grant(w, CoordReply::Values(vec![value.clone()]), comm);
            }
        }
        if let Some(old) = old {
            self.coord_unhold(&old.keys);
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn variable_get(
        &mut self,
        w: Waiter,
        name: String,
        wait: bool,
        comm: &mut impl Comm,
    ) -> Answer {
        if let Some(value) = self.coord.variables.get(&name).and_then(|v| v.value.clone()) {
            self.coord_hand_over(w.0, &value, comm);
            return Some(Ok(CoordReply::Values(vec![value])));
        }
        if !wait {
            return Some(Ok(CoordReply::TimedOut));
        }
        self.coord.variables.entry(name.clone()).or_default().waiters.push(w);
        self.coord_wait(w, Kind::Variable, name);
        None
    }

    pub(super) fn variable_delete(&mut self, name: &str) -> Answer {
        let Some(v) = self.coord.variables.get_mut(name) else {
            return Some(Ok(CoordReply::Done));
        };
        let old = v.value.take();
        if v.waiters.is_empty() {
            self.coord.variables.remove(name);
        }
        if let Some(old) = old {
            self.coord_unhold(&old.keys);
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn variable_drop_waiter(&mut self, w: Waiter, name: &str) {
        if let Some(v) = self.coord.variables.get_mut(name) {
            v.waiters.retain(|&x| x != w);
            if v.value.is_none() && v.waiters.is_empty() {
                self.coord.variables.remove(name);
            }
        }
    }
}
