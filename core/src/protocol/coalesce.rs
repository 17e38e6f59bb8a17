//! Merging a burst of small messages into one before they are written.
//!
//! Dropping a `Vec` of 20,000 futures releases 20,000 keys one by one, and the
//! scheduler frees their data on workers one by one. Sent as they come, each
//! would be a frame of its own and a trip through the receiver's handler; a
//! writer that finds several queued at once folds adjacent ones together.
//! Only adjacent messages merge, so the order of everything else is kept.

use super::{ClientMsg, PeerRequest, PeerResponse, ToClient, ToWorker, WorkerMsg};

/// A message that may absorb the one queued right after it.
pub trait Coalesce: Sized {
    /// Folds `next` into `self`, or gives it back when the two do not merge.
    fn absorb(&mut self, next: Self) -> Result<(), Self> {
        Err(next)
    }
}

impl Coalesce for ClientMsg {
    fn absorb(&mut self, next: Self) -> Result<(), Self> {
        match (self, next) {
            (ClientMsg::Release { keys }, ClientMsg::Release { keys: more }) => {
                keys.extend(more);
                Ok(())
            }
            (_, next) => Err(next),
        }
    }
}

impl Coalesce for ToWorker {
    fn absorb(&mut self, next: Self) -> Result<(), Self> {
        match (self, next) {
            (ToWorker::Free { keys }, ToWorker::Free { keys: more }) => {
                keys.extend(more);
                Ok(())
            }
            (_, next) => Err(next),
        }
    }
}

impl Coalesce for ToClient {}
impl Coalesce for WorkerMsg {}
impl Coalesce for PeerRequest {}
impl Coalesce for PeerResponse {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Key;

    fn keys(msg: &ClientMsg) -> Vec<&str> {
        match msg {
            ClientMsg::Release { keys } => keys.iter().map(Key::as_str).collect(),
            other => panic!("not a release: {other:?}"),
        }
    }

    #[test]
    fn adjacent_releases_merge_in_order_and_others_do_not() {
        let mut first = ClientMsg::Release { keys: vec![Key::from("a")] };
        assert!(first.absorb(ClientMsg::Release { keys: vec![Key::from("b")] }).is_ok());
        assert_eq!(keys(&first), ["a", "b"]);
        let close = first.absorb(ClientMsg::Close).expect_err("a close does not merge");
        assert!(matches!(close, ClientMsg::Close));
        let mut free = ToWorker::Free { keys: vec![Key::from("x")] };
        assert!(free.absorb(ToWorker::Free { keys: vec![Key::from("y")] }).is_ok());
        assert!(free.absorb(ToWorker::Shutdown).is_err());
    }
}
