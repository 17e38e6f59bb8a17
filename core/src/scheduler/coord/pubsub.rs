//! Pub/sub topics: each published message goes to every subscriber
//! registered at that moment, in the order the scheduler received them.

use super::{Answer, Waiter};
use crate::protocol::{CoordReply, CoordValue, ToClient};
use crate::scheduler::{ClientId, Comm, Scheduler};

impl Scheduler {
    /// `sub` is a client and its subscriber id.
    pub(super) fn topic_subscribe(&mut self, sub: Waiter, topic: String) -> Answer {
        let subs = self.coord.topics.entry(topic).or_default();
        if !subs.contains(&sub) {
            subs.push(sub);
        }
        Some(Ok(CoordReply::Done))
    }

    pub(super) fn topic_unsubscribe(&mut self, sub: Waiter, topic: &str) -> Answer {
        if let Some(subs) = self.coord.topics.get_mut(topic) {
            subs.retain(|&s| s != sub);
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
            for (c, _) in subs.clone() {
                self.coord_hand_over(c, &value, comm);
            }
        }
        let subs = &self.coord.topics[topic];
        if let Some((&(c, sub), rest)) = subs.split_last() {
            for &(c, sub) in rest {
                comm.send_client(c, ToClient::Published { sub, value: value.clone() });
            }
            comm.send_client(c, ToClient::Published { sub, value });
        }
    }

    pub(super) fn topic_client_lost(&mut self, c: ClientId) {
        self.coord.topics.retain(|_, subs| {
            subs.retain(|s| s.0 != c);
            !subs.is_empty()
        });
    }
}
