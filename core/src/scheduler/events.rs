//! Events: clients log values on named topics; the scheduler keeps the last
//! [`EVENT_HISTORY`] of each topic and forwards new ones to subscribers.

use super::requests::reply;
use super::{ClientId, Comm, Scheduler};
use crate::protocol::{Payload, Reply, ToClient};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// How many events the scheduler keeps per topic; older ones are dropped.
pub const EVENT_HISTORY: usize = 10_000;

/// Topics, their history and their subscribers.
#[derive(Debug, Default)]
pub(super) struct Events {
    topics: FxHashMap<String, Topic>,
}

#[derive(Debug, Default)]
struct Topic {
    history: VecDeque<(f64, Payload)>,
    subscribers: Vec<ClientId>,
}

impl Scheduler {
    /// Records an event and forwards it to the topic's subscribers.
    pub(super) fn on_log_event(
        &mut self,
        c: ClientId,
        request: u64,
        topic: String,
        time: f64,
        data: Payload,
        comm: &mut impl Comm,
    ) {
        self.plugin_hook("log_event", |p| p.log_event(&topic, time));
        let t = self.events.topics.entry(topic.clone()).or_default();
        for &s in &t.subscribers {
            comm.send_client(s, ToClient::Event { topic: topic.clone(), time, data: data.clone() });
        }
        if t.history.len() == EVENT_HISTORY {
            t.history.pop_front();
        }
        t.history.push_back((time, data));
        reply(comm, c, request, Ok(Reply::Done));
    }

    /// Client `c` gets every new event of `topic`.
    pub(super) fn on_subscribe(&mut self, c: ClientId, topic: String) {
        let t = self.events.topics.entry(topic).or_default();
        if !t.subscribers.contains(&c) {
            t.subscribers.push(c);
        }
    }

    /// Client `c` no longer gets the events of `topic`.
    pub(super) fn on_unsubscribe(&mut self, c: ClientId, topic: &str) {
        if let Some(t) = self.events.topics.get_mut(topic) {
            t.subscribers.retain(|&s| s != c);
            if t.subscribers.is_empty() && t.history.is_empty() {
                self.events.topics.remove(topic);
            }
        }
    }

    /// The recorded events of `topic`, oldest first.
    pub fn events(&self, topic: &str) -> Vec<(f64, Payload)> {
        self.events
            .topics
            .get(topic)
            .map(|t| t.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn events_client_lost(&mut self, c: ClientId) {
        self.events.topics.retain(|_, t| {
            t.subscribers.retain(|&s| s != c);
            !(t.subscribers.is_empty() && t.history.is_empty())
        });
    }
}
