//! Future operations beyond wanting and releasing: retrying erred keys and
//! holding keys that every client may let go of (fire-and-forget).

use super::task::TaskState;
use super::{ClientId, Comm, Scheduler, TaskId};
use crate::graph::Key;
use crate::protocol::ToClient;

impl Scheduler {
    /// Computes erred keys again, with their erred dependencies, for the
    /// clients that want them. The client reset its futures to pending, so a
    /// key that is not erred (any more) gets its current outcome resent, and
    /// one `c` no longer wants (cancelled meanwhile) is reported cancelled:
    /// either way the client hears back.
    pub(super) fn retry(&mut self, c: ClientId, keys: Vec<Key>, comm: &mut impl Comm) {
        for key in keys {
            let Some(&id) = self.keys.get(&key) else {
                comm.send_client(c, ToClient::KeyCancelled { key });
                continue;
            };
            if !self.tasks[id].wants.contains(&c) {
                comm.send_client(c, ToClient::KeyCancelled { key });
                continue;
            }
            match self.tasks[id].state {
                TaskState::Erred => {
                    self.reset_erred(id);
                    self.compute(id, comm);
                }
                TaskState::Memory => {
                    let t = &self.tasks[id];
                    comm.send_client(
                        c,
                        ToClient::KeyInMemory {
                            key,
                            nbytes: t.nbytes,
                            workers: self.wire_workers(&t.who_has),
                            value: None,
                        },
                    );
                }
                TaskState::Released => self.compute(id, comm),
                _ => {}
            }
        }
    }

    /// Turns an erred task and its erred dependencies, transitively, back
    /// into released tasks with a fresh retry budget.
    fn reset_erred(&mut self, id: TaskId) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if self.tasks[id].state != TaskState::Erred {
                continue;
            }
            self.set_state(id, TaskState::Released);
            let t = &mut self.tasks[id];
            t.failure = None;
            t.suspicious = 0;
            t.retries_left = t.spec.as_ref().map_or(0, |s| s.options.retries);
            stack.extend(t.deps.iter().copied());
        }
    }

    /// Keeps these keys until they are in memory or erred, whoever releases
    /// them; then they go like any unwanted key.
    pub(super) fn fire_and_forget(&mut self, keys: Vec<Key>, comm: &mut impl Comm) {
        for key in keys {
            let Some(&id) = self.keys.get(&key) else { continue };
            match self.tasks[id].state {
                TaskState::Memory | TaskState::Erred | TaskState::Forgotten => {}
                TaskState::Released => {
                    self.fire_and_forget.insert(id);
                    self.compute(id, comm);
                }
                TaskState::Waiting
                | TaskState::NoWorker
                | TaskState::Queued
                | TaskState::Processing => {
                    self.fire_and_forget.insert(id);
                }
            }
        }
    }
}
