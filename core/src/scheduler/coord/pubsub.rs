//! Pub/sub topics: each published message goes to every client subscribed
//! at that moment, in the order the scheduler received them.

use super::Answer;
use crate::protocol::{CoordReply, CoordValue, ToClient};
use crate::scheduler::{ClientId, Comm, Scheduler};

impl Scheduler {
    pub(super) fn topic_subscribe(&mut self, c: ClientId, topic: String) -> Answer {
        let subs = self.coord.topics.entry(topic).or_default();
        if !subs.contains(&c) {
            subs.push(c);
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn topic_unsubscribe(&mut self, c: ClientId, topic: &str) -> Answer {
        if let Some(subs) = self.coord.topics.get_mut(topic) {
            subs.retain(|&s| s != c);
            if subs.is_empty() {
                self.coord.topics.remove(topic);
            }
        }
        Some(Ok(CoordReply::Done))
    }

    /// Sends a message to the topic's subscribers; publishing gets no answer.
    pub(super) fn topic_publish(&mut self, topic: &str, value: CoordValue, comm: &mut impl Comm) {
        let Some(subs) = self.coord.topics.get(topic) else { return };
        if !value.keys.is_empty() {
            // Held for each subscriber until it adopts them.
            for s in subs.clone() {
                self.coord_hand_over(s, &value, comm);
            }
        }
        let subs = &self.coord.topics[topic];
        if let Some((&last, rest)) = subs.split_last() {
            for &s in rest {
                let msg = ToClient::Published { topic: topic.to_string(), value: value.clone() };
                comm.send_client(s, msg);
            }
            comm.send_client(last, ToClient::Published { topic: topic.to_string(), value });
        }
    }

    pub(super) fn topic_client_lost(&mut self, c: ClientId) {
        self.coord.topics.retain(|_, subs| {
            subs.retain(|&s| s != c);
            !subs.is_empty()
        });
    }
}
