//! Named FIFO queues, optionally bounded: `put` waits for room, `get` for an item.

use super::{Answer, Kind, Waiter};
use crate::protocol::{CoordReply, CoordValue};
use crate::scheduler::{ClientId, Comm, Scheduler};
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct Queue {
    pub(super) items: VecDeque<CoordValue>,
    /// 0: unbounded.
    pub(super) maxsize: u32,
    /// Waiting `get`s; only while `items` is empty.
    pub(super) getters: VecDeque<Waiter>,
    /// Waiting `put`s with their items; only while the queue is full.
    pub(super) putters: VecDeque<(Waiter, CoordValue)>,
}

impl Queue {
    fn new(maxsize: u32) -> Self {
        Queue {
            items: VecDeque::new(),
            maxsize,
            getters: VecDeque::new(),
            putters: VecDeque::new(),
        }
    }

    fn has_room(&self) -> bool {
        self.maxsize == 0 || self.items.len() < self.maxsize as usize
    }

    fn is_idle(&self) -> bool {
        self.items.is_empty() && self.getters.is_empty() && self.putters.is_empty()
    }
}

impl Scheduler {
    pub(super) fn queue_put(
        &mut self,
        w: Waiter,
        name: String,
        maxsize: u32,
        value: CoordValue,
        wait: bool,
        comm: &mut impl Comm,
    ) -> Answer {
        if let Err(e) = self.coord_hold(&value.keys, comm) {
            return Some(Err(e));
        }
        if !self.coord.queues.contains_key(&name) {
            self.coord.queues.insert(name.clone(), Queue::new(maxsize));
        }
        let q = self.coord.queues.get_mut(&name).expect("just inserted");
        if let Some(g) = q.getters.pop_front() {
            if q.is_idle() {
                self.coord.queues.remove(&name);
            }
            self.coord_hand_over(g.0, &value, comm);
            self.coord_unhold(&value.keys);
            self.coord_grant(g, CoordReply::Values(vec![value]), comm);
            return Some(Ok(CoordReply::Done));
        }
        if q.has_room() {
            q.items.push_back(value);
            return Some(Ok(CoordReply::Done));
        }
        if wait {
            q.putters.push_back((w, value));
            self.coord_wait(w, Kind::QueuePut, name);
            return None;
        }
        let keys = value.keys;
        self.coord_unhold(&keys);
        Some(Ok(CoordReply::TimedOut))
    }

    pub(super) fn queue_get(
        &mut self,
        w: Waiter,
        name: String,
        wait: bool,
        comm: &mut impl Comm,
    ) -> Answer {
        let taken = self.queue_take(w.0, &name, 1, comm);
        if !taken.is_empty() {
            return Some(Ok(CoordReply::Values(taken)));
        }
        if !wait {
            return Some(Ok(CoordReply::TimedOut));
        }
        self.coord.queues.entry(name.clone()).or_insert_with(|| Queue::new(0)).getters.push_back(w);
        self.coord_wait(w, Kind::QueueGet, name);
        None
    }

    pub(super) fn queue_get_batch(
        &mut self,
        c: ClientId,
        name: &str,
        max: u32,
        comm: &mut impl Comm,
    ) -> Answer {
        Some(Ok(CoordReply::Values(self.queue_take(c, name, max as usize, comm))))
    }

    /// Takes up to `n` items for client `c`, letting waiting puts in behind them.
    fn queue_take(
        &mut self,
        c: ClientId,
        name: &str,
        n: usize,
        comm: &mut impl Comm,
    ) -> Vec<CoordValue> {
        let Some(q) = self.coord.queues.get_mut(name) else { return Vec::new() };
        let n = n.min(q.items.len());
        let taken: Vec<CoordValue> = q.items.drain(..n).collect();
        let mut admitted = Vec::new();
        while q.has_room() {
            let Some((p, value)) = q.putters.pop_front() else { break };
            q.items.push_back(value);
            admitted.push(p);
        }
        if q.is_idle() {
            self.coord.queues.remove(name);
        }
        for p in admitted {
            self.coord_grant(p, CoordReply::Done, comm);
        }
        for value in &taken {
            self.coord_hand_over(c, value, comm);
            self.coord_unhold(&value.keys);
        }
        taken
    }

    pub(super) fn queue_size(&self, name: &str) -> Answer {
        let n = self.coord.queues.get(name).map_or(0, |q| q.items.len());
        Some(Ok(CoordReply::Count(n as u64)))
    }

    /// Removes a waiting get or put; returns the item of a put (still held).
    pub(super) fn queue_drop_waiter(&mut self, w: Waiter, name: &str) -> Option<CoordValue> {
        let q = self.coord.queues.get_mut(name)?;
        q.getters.retain(|&g| g != w);
        let value = q.putters.iter().position(|(p, _)| *p == w).and_then(|i| q.putters.remove(i));
        if q.is_idle() {
            self.coord.queues.remove(name);
        }
        value.map(|(_, v)| v)
    }
}
