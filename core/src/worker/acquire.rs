//! Keys the scheduler asks this worker to hold a copy of (replicate,
//! rebalance): fetched from a peer through the same machinery as task
//! dependencies, then kept like a result and reported.

use super::{Fetch, Outbox, Worker};
use crate::protocol::{DepLocation, Payload, WorkerMsg};
use crate::Key;

impl Worker {
    /// Starts fetching keys to keep; every key is answered with one
    /// [`WorkerMsg::Acquired`], now or when its fetch ends.
    pub(super) fn on_acquire(&mut self, keys: Vec<DepLocation>, out: &mut Outbox) {
        for DepLocation { key, workers } in keys {
            if let Some(n) = self.data.nbytes(&key) {
                let nbytes = Some(n);
                out.to_scheduler.push(WorkerMsg::Acquired { key, nbytes });
                continue;
            }
            if let Some((v, _)) = self.fetched.get(&key) {
                let nbytes = Some(v.len() as u64);
                self.data.insert_if_absent(&key, v);
                out.to_scheduler.push(WorkerMsg::Acquired { key, nbytes });
                continue;
            }
            if !self.acquiring.insert(key.clone()) || self.in_flight.contains_key(&key) {
                // Already on its way; the fetch in flight answers.
                continue;
            }
            let Some(holder) = workers.iter().copied().find(|w| self.peers.contains_key(w)) else {
                self.acquiring.remove(&key);
                out.to_scheduler.push(WorkerMsg::Acquired { key, nbytes: None });
                continue;
            };
            self.in_flight.insert(key.clone(), Vec::new());
            match out.fetches.iter_mut().find(|f| f.worker == holder) {
                Some(f) => f.keys.push(key),
                None => out.fetches.push(Fetch {
                    worker: holder,
                    addr: self.peers[&holder].clone(),
                    keys: vec![key],
                }),
            }
        }
    }

    /// A fetch of `key` ended: keeps and reports it if it was asked for.
    pub(super) fn on_acquire_fetched(
        &mut self,
        key: &Key,
        value: Option<&Payload>,
        out: &mut Outbox,
    ) {
        // Most fetches are task dependencies: skip hashing the key for them.
        if self.acquiring.is_empty() || !self.acquiring.remove(key) {
            return;
        }
        let nbytes = value.map(|v| {
            self.data.insert_if_absent(key, v);
            v.len() as u64
        });
        out.to_scheduler.push(WorkerMsg::Acquired { key: key.clone(), nbytes });
    }

    /// Keys being fetched to keep.
    pub fn acquiring(&self) -> usize {
        self.acquiring.len()
    }
}
