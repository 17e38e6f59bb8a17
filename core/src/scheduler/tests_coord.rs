//! Sans-IO tests of the coordination primitives.

use super::tests::{payload, spec, H};
use super::*;
use crate::graph::Key;
use crate::protocol::{
    ClientMsg, CoordReply, CoordRequest, CoordValue, Reply, Request, RequestErrorKind, ToClient,
};
use proptest::prelude::*;

fn coord(h: &mut H, c: ClientId, id: u64, req: CoordRequest) {
    h.client_msg(c, ClientMsg::Request { id, req: Request::Coord(req) });
}

/// Coordination answers sent to `c`, by request id (errors as their kind).
fn answers(h: &mut H, c: ClientId) -> Vec<(u64, Result<CoordReply, RequestErrorKind>)> {
    let (mine, others): (Vec<_>, Vec<_>) =
        h.comm.take_clients().into_iter().partition(|(to, _)| *to == c);
    h.comm.clients = others;
    mine.into_iter()
        .filter_map(|(_, m)| match m {
            ToClient::Reply { id, reply: Ok(Reply::Coord(r)) } => Some((id, Ok(r))),
            ToClient::Reply { id, reply: Err(e) } => Some((id, Err(e.kind))),
            _ => None,
        })
        .collect()
}

fn granted(a: &[(u64, Result<CoordReply, RequestErrorKind>)]) -> Vec<u64> {
    a.iter().filter(|(_, r)| matches!(r, Ok(CoordReply::Granted))).map(|(id, _)| *id).collect()
}

fn value(v: &[u8], keys: &[&str]) -> CoordValue {
    CoordValue {
        type_name: "t".into(),
        data: payload(v),
        keys: keys.iter().map(|k| Key::from(*k)).collect(),
    }
}

fn put(name: &str, maxsize: u32, v: &[u8], wait: bool) -> CoordRequest {
    CoordRequest::QueuePut { name: name.into(), maxsize, value: value(v, &[]), wait }
}

fn get(name: &str, wait: bool) -> CoordRequest {
    CoordRequest::QueueGet { name: name.into(), wait }
}

fn data(r: &Result<CoordReply, RequestErrorKind>) -> Vec<Vec<u8>> {
    match r {
        Ok(CoordReply::Values(vs)) => {
            vs.iter().map(|v| v.data.as_bytes().expect("bytes").to_vec()).collect()
        }
        other => panic!("expected values, got {other:?}"),
    }
}

fn lock(name: &str, wait: bool) -> CoordRequest {
    CoordRequest::LockAcquire { name: name.into(), wait }
}

fn sem(name: &str, max: u32, wait: bool) -> CoordRequest {
    CoordRequest::SemaphoreAcquire {
        name: name.into(),
        max_leases: max,
        wait,
        lease_timeout_us: None,
    }
}

#[test]
fn queue_is_fifo_bounded_and_freed_when_empty() {
    let mut h = H::new();
    let c = h.client("c");
    coord(&mut h, c, 1, put("q", 2, b"a", true));
    coord(&mut h, c, 2, put("q", 2, b"b", true));
    coord(&mut h, c, 3, put("q", 2, b"c", false));
    coord(&mut h, c, 4, put("q", 2, b"d", true));
    let a = answers(&mut h, c);
    assert!(matches!(a[2], (3, Ok(CoordReply::TimedOut))), "{a:?}");
    assert_eq!(a.len(), 3, "the full queue answered the waiting put: {a:?}");
    coord(&mut h, c, 5, CoordRequest::QueueSize { name: "q".into() });
    assert!(matches!(answers(&mut h, c)[..], [(5, Ok(CoordReply::Count(2)))]));
    coord(&mut h, c, 6, get("q", true));
    let a = answers(&mut h, c);
    // The get frees room: the waiting put is admitted.
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a.iter().any(|(id, r)| *id == 4 && matches!(r, Ok(CoordReply::Done))));
    assert_eq!(data(&a.iter().find(|(id, _)| *id == 6).unwrap().1), vec![b"a".to_vec()]);
    coord(&mut h, c, 7, CoordRequest::QueueGetBatch { name: "q".into(), max: 10 });
    assert_eq!(data(&answers(&mut h, c)[0].1), vec![b"b".to_vec(), b"d".to_vec()]);
    assert!(h.s.coord_info().is_empty(), "empty queue kept");
}

#[test]
fn waiting_get_is_answered_by_a_put_and_try_get_does_not_wait() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    coord(&mut h, a, 1, get("q", false));
    assert!(matches!(answers(&mut h, a)[..], [(1, Ok(CoordReply::TimedOut))]));
    coord(&mut h, a, 2, get("q", true));
    assert!(answers(&mut h, a).is_empty());
    assert_eq!(h.s.coord_info()[0].waiters, 1);
    coord(&mut h, b, 1, put("q", 0, b"x", true));
    let msgs = h.comm.take_clients();
    assert!(msgs.iter().any(|(to, m)| *to == a
        && matches!(m, ToClient::Reply { id: 2, reply: Ok(Reply::Coord(CoordReply::Values(v))) } if v.len() == 1)));
    assert!(msgs.iter().any(|(to, m)| *to == b
        && matches!(m, ToClient::Reply { id: 1, reply: Ok(Reply::Coord(CoordReply::Done)) })));
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn cancel_of_a_waiting_get_answers_timed_out_and_of_a_granted_one_nothing() {
    let mut h = H::new();
    let c = h.client("c");
    coord(&mut h, c, 1, get("q", true));
    coord(&mut h, c, 2, CoordRequest::Cancel { request: 1 });
    assert!(matches!(answers(&mut h, c)[..], [(1, Ok(CoordReply::TimedOut))]));
    assert!(h.s.coord_info().is_empty());
    // Granted before the cancel arrives: the item stays with the client, the
    // cancel is ignored (no second answer, no item put back or lost).
    coord(&mut h, c, 3, get("q", true));
    coord(&mut h, c, 4, put("q", 0, b"x", true));
    coord(&mut h, c, 5, CoordRequest::Cancel { request: 3 });
    let a = answers(&mut h, c);
    assert_eq!(a.iter().filter(|(id, _)| *id == 3).count(), 1, "{a:?}");
    assert_eq!(data(&a.iter().find(|(id, _)| *id == 3).unwrap().1), vec![b"x".to_vec()]);
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn cancelled_waiting_put_drops_its_item() {
    let mut h = H::new();
    let c = h.client("c");
    coord(&mut h, c, 1, put("q", 1, b"a", true));
    coord(&mut h, c, 2, put("q", 1, b"b", true));
    coord(&mut h, c, 3, CoordRequest::Cancel { request: 2 });
    let a = answers(&mut h, c);
    assert!(matches!(a[1], (2, Ok(CoordReply::TimedOut))), "{a:?}");
    coord(&mut h, c, 4, CoordRequest::QueueGetBatch { name: "q".into(), max: 5 });
    assert_eq!(data(&answers(&mut h, c)[0].1), vec![b"a".to_vec()]);
}

#[test]
fn futures_in_a_queue_stay_alive_until_taken() {
    let mut h = H::new();
    let w = h.worker("w", 1, &["f"]);
    let (p, q) = (h.client("producer"), h.client("consumer"));
    h.submit(p, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 8);
    let v = CoordValue { type_name: "t".into(), data: payload(b""), keys: vec![Key::from("x")] };
    coord(
        &mut h,
        p,
        1,
        CoordRequest::QueuePut { name: "q".into(), maxsize: 0, value: v, wait: true },
    );
    h.release(p, &["x"]);
    assert_eq!(h.state("x"), TaskState::Memory, "released while queued");
    assert_eq!(h.s.info(&[]).clients, 2, "the holder counts as a client");
    coord(&mut h, q, 1, get("q", true));
    // In transit: held until the consumer wants it itself.
    assert!(h.s.coord.holder().is_some());
    h.client_msg(q, ClientMsg::Want { keys: vec![Key::from("x")] });
    coord(&mut h, q, 2, CoordRequest::Adopted { keys: vec![Key::from("x")] });
    assert!(h.s.coord.holder().is_none());
    assert_eq!(h.state("x"), TaskState::Memory);
    h.release(q, &["x"]);
    assert!(h.s.task_by_key("x").is_none(), "kept after the consumer released it");
    let _ = w;
    // An unknown key is refused and nothing is stored.
    let v = CoordValue { type_name: "t".into(), data: payload(b""), keys: vec![Key::from("nope")] };
    coord(
        &mut h,
        p,
        2,
        CoordRequest::QueuePut { name: "q".into(), maxsize: 0, value: v, wait: true },
    );
    assert!(matches!(answers(&mut h, p).last(), Some((2, Err(RequestErrorKind::InvalidArgument)))));
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn restart_drops_the_holds_of_stored_futures() {
    let mut h = H::new();
    h.worker("w", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 8);
    let v = CoordValue { type_name: "t".into(), data: payload(b""), keys: vec![Key::from("x")] };
    coord(
        &mut h,
        c,
        1,
        CoordRequest::QueuePut { name: "q".into(), maxsize: 0, value: v, wait: true },
    );
    h.client_msg(c, ClientMsg::Request { id: 2, req: Request::Restart });
    assert!(h.s.coord.holder().is_none());
    assert_eq!(h.s.info(&[]).clients, 1);
    // The item is still there; its key is unknown now and is not handed over.
    coord(&mut h, c, 3, get("q", false));
    assert_eq!(data(&answers(&mut h, c).last().unwrap().1), vec![Vec::<u8>::new()]);
    assert!(h.s.coord.holder().is_none());
}

#[test]
fn variable_waits_for_first_set_and_releases_overwritten_future() {
    let mut h = H::new();
    h.worker("w", 1, &["f"]);
    let c = h.client("c");
    coord(&mut h, c, 1, CoordRequest::VariableGet { name: "v".into(), wait: false });
    assert!(matches!(answers(&mut h, c)[..], [(1, Ok(CoordReply::TimedOut))]));
    coord(&mut h, c, 2, CoordRequest::VariableGet { name: "v".into(), wait: true });
    h.submit(c, vec![spec("x", "f", &[])], &["x"]);
    h.finish_key("x", 8);
    let v = CoordValue { type_name: "t".into(), data: payload(b"1"), keys: vec![Key::from("x")] };
    coord(&mut h, c, 3, CoordRequest::VariableSet { name: "v".into(), value: v });
    let a = answers(&mut h, c);
    assert_eq!(data(&a.iter().find(|(id, _)| *id == 2).unwrap().1), vec![b"1".to_vec()]);
    coord(&mut h, c, 9, CoordRequest::Adopted { keys: vec![Key::from("x")] });
    h.release(c, &["x"]);
    assert_eq!(h.state("x"), TaskState::Memory);
    // The reader never adopts it (it left): only the variable holds it now.
    let r = h.client("reader");
    coord(&mut h, r, 1, CoordRequest::VariableGet { name: "v".into(), wait: false });
    h.s.on_client_lost(r, &mut h.comm);
    coord(&mut h, c, 4, CoordRequest::VariableSet { name: "v".into(), value: value(b"2", &[]) });
    assert!(h.s.task_by_key("x").is_none(), "overwritten future kept");
    coord(&mut h, c, 5, CoordRequest::VariableDelete { name: "v".into() });
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn lock_is_fifo_and_release_by_non_holder_errs() {
    let mut h = H::new();
    let (a, b, c) = (h.client("a"), h.client("b"), h.client("c"));
    coord(&mut h, a, 1, lock("l", true));
    coord(&mut h, b, 1, lock("l", true));
    coord(&mut h, c, 1, lock("l", true));
    coord(&mut h, c, 2, lock("l", false));
    assert!(matches!(answers(&mut h, c)[..], [(2, Ok(CoordReply::TimedOut))]));
    assert_eq!(granted(&answers(&mut h, a)), vec![1]);
    coord(&mut h, b, 2, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    assert!(matches!(answers(&mut h, b)[..], [(2, Err(RequestErrorKind::InvalidArgument))]));
    coord(&mut h, a, 2, CoordRequest::LockHolder { name: "l".into() });
    assert!(matches!(&answers(&mut h, a)[..], [(2, Ok(CoordReply::Holders(n)))] if n == &["a"]));
    coord(&mut h, a, 3, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    let msgs = h.comm.take_clients();
    assert!(msgs.iter().any(|(to, m)| *to == b
        && matches!(m, ToClient::Reply { id: 1, reply: Ok(Reply::Coord(CoordReply::Granted)) })));
    assert!(!msgs.iter().any(|(to, _)| *to == c));
    coord(&mut h, a, 4, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    assert!(matches!(answers(&mut h, a)[..], [(4, Err(RequestErrorKind::InvalidArgument))]));
    // The holder leaves: the next waiter gets it.
    h.s.on_client_lost(b, &mut h.comm);
    assert_eq!(granted(&answers(&mut h, c)), vec![1]);
    coord(&mut h, c, 3, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn timeout_racing_a_lock_grant_keeps_the_grant() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    coord(&mut h, a, 1, lock("l", true));
    coord(&mut h, b, 1, lock("l", true));
    coord(&mut h, a, 2, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    // b's timer fired before it saw the grant: its cancel changes nothing,
    // b holds the lock and releases it normally.
    coord(&mut h, b, 2, CoordRequest::Cancel { request: 1 });
    assert_eq!(granted(&answers(&mut h, b)), vec![1]);
    coord(&mut h, b, 3, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    assert!(matches!(answers(&mut h, b)[..], [(3, Ok(CoordReply::Done))]));
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn semaphore_limits_leases_and_frees_those_of_a_lost_client() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    coord(&mut h, a, 1, sem("s", 2, true));
    coord(&mut h, a, 2, sem("s", 2, true));
    coord(&mut h, b, 1, sem("s", 2, true));
    coord(&mut h, b, 2, sem("s", 2, false));
    assert_eq!(granted(&answers(&mut h, a)), vec![1, 2]);
    assert!(matches!(answers(&mut h, b)[..], [(2, Ok(CoordReply::TimedOut))]));
    coord(&mut h, b, 3, CoordRequest::SemaphoreHolders { name: "s".into() });
    assert!(
        matches!(&answers(&mut h, b)[..], [(3, Ok(CoordReply::Holders(n)))] if n == &["a", "a"])
    );
    h.s.on_client_lost(a, &mut h.comm);
    h.s.check_invariants();
    assert_eq!(granted(&answers(&mut h, b)), vec![1]);
    coord(&mut h, b, 4, CoordRequest::SemaphoreRelease { name: "s".into(), lease: 1 });
    coord(&mut h, b, 5, CoordRequest::SemaphoreRelease { name: "s".into(), lease: 1 });
    let a = answers(&mut h, b);
    assert!(matches!(
        a[..],
        [(4, Ok(CoordReply::Done)), (5, Err(RequestErrorKind::InvalidArgument))]
    ));
    assert!(h.s.coord_info().is_empty());
    coord(&mut h, b, 6, sem("s", 0, true));
    assert!(matches!(answers(&mut h, b)[..], [(6, Err(RequestErrorKind::InvalidArgument))]));
}

#[test]
fn event_wakes_every_waiter() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    coord(&mut h, a, 1, CoordRequest::EventWait { name: "e".into(), wait: true });
    coord(&mut h, b, 1, CoordRequest::EventWait { name: "e".into(), wait: true });
    coord(&mut h, b, 2, CoordRequest::EventWait { name: "e".into(), wait: false });
    assert!(matches!(answers(&mut h, b)[..], [(2, Ok(CoordReply::TimedOut))]));
    coord(&mut h, a, 2, CoordRequest::EventSet { name: "e".into() });
    let msgs = h.comm.take_clients();
    for c in [a, b] {
        assert!(msgs.iter().any(|(to, m)| *to == c
            && matches!(
                m,
                ToClient::Reply { id: 1, reply: Ok(Reply::Coord(CoordReply::Granted)) }
            )));
    }
    coord(&mut h, a, 3, CoordRequest::EventIsSet { name: "e".into() });
    assert!(matches!(answers(&mut h, a)[..], [(3, Ok(CoordReply::Flag(true)))]));
    coord(&mut h, a, 4, CoordRequest::EventClear { name: "e".into() });
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn topics_fan_out_in_order_and_forget_lost_subscribers() {
    let mut h = H::new();
    let (p, s1, s2) = (h.client("p"), h.client("s1"), h.client("s2"));
    coord(&mut h, p, 1, CoordRequest::Publish { topic: "t".into(), value: value(b"0", &[]) });
    for s in [s1, s2] {
        coord(&mut h, s, 1, CoordRequest::Subscribe { topic: "t".into(), sub: 7 });
    }
    h.comm.take_clients();
    for (i, m) in [b"1", b"2"].iter().enumerate() {
        coord(
            &mut h,
            p,
            2 + i as u64,
            CoordRequest::Publish { topic: "t".into(), value: value(*m, &[]) },
        );
    }
    let msgs = h.comm.take_clients();
    for s in [s1, s2] {
        let got: Vec<Vec<u8>> = msgs
            .iter()
            .filter_map(|(to, m)| match m {
                ToClient::Published { sub: 7, value } if *to == s => {
                    Some(value.data.as_bytes().unwrap().to_vec())
                }
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![b"1".to_vec(), b"2".to_vec()]);
    }
    h.s.on_client_lost(s1, &mut h.comm);
    coord(&mut h, s2, 2, CoordRequest::Unsubscribe { topic: "t".into(), sub: 7 });
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn lost_client_waiters_are_dropped() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    coord(&mut h, a, 1, lock("l", true));
    coord(&mut h, b, 1, lock("l", true));
    coord(&mut h, b, 2, get("q", true));
    coord(&mut h, b, 3, CoordRequest::VariableGet { name: "v".into(), wait: true });
    coord(&mut h, b, 4, CoordRequest::EventWait { name: "e".into(), wait: true });
    h.s.on_client_lost(b, &mut h.comm);
    h.s.check_invariants();
    coord(&mut h, a, 2, CoordRequest::LockRelease { name: "l".into(), token: 1 });
    assert!(h.s.coord_info().is_empty(), "{:?}", h.s.coord_info());
}

#[derive(Clone, Debug)]
enum Op {
    Acquire(usize, bool),
    Release(usize),
    Cancel(usize),
    Lose(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, any::<bool>()).prop_map(|(c, w)| Op::Acquire(c, w)),
        (0..3usize).prop_map(Op::Release),
        (0..3usize).prop_map(Op::Cancel),
        (0..3usize).prop_map(Op::Lose),
    ]
}

proptest! {
    /// Random acquires, releases, cancels and lost clients on a lock and a
    /// semaphore: never more holders than allowed, every granted request is
    /// answered exactly once, and the state empties when everyone leaves.
    #[test]
    fn lock_and_semaphore_never_over_grant(ops in prop::collection::vec(op(), 1..60), max in 1u32..3) {
        let mut h = H::new();
        let clients: Vec<ClientId> = (0..3).map(|i| h.client(&format!("c{i}"))).collect();
        let mut alive = [true; 3];
        let mut next = 1u64;
        // Per client: requests granted and not released.
        let mut held: Vec<Vec<(bool, u64)>> = vec![Vec::new(); 3];
        let mut pending: Vec<Vec<(bool, u64)>> = vec![Vec::new(); 3];
        for op in ops {
            match op {
                Op::Acquire(i, is_lock) if alive[i] => {
                    let req = if is_lock { lock("l", true) } else { sem("s", max, true) };
                    coord(&mut h, clients[i], next, req);
                    pending[i].push((is_lock, next));
                    next += 1;
                }
                Op::Release(i) if alive[i] => {
                    if let Some((is_lock, id)) = held[i].pop() {
                        let req = if is_lock {
                            CoordRequest::LockRelease { name: "l".into(), token: id }
                        } else {
                            CoordRequest::SemaphoreRelease { name: "s".into(), lease: id }
                        };
                        coord(&mut h, clients[i], next, req);
                        next += 1;
                    }
                }
                Op::Cancel(i) if alive[i] => {
                    if let Some(&(_, id)) = pending[i].first() {
                        coord(&mut h, clients[i], next, CoordRequest::Cancel { request: id });
                        next += 1;
                    }
                }
                Op::Lose(i) if alive[i] => {
                    alive[i] = false;
                    h.s.on_client_lost(clients[i], &mut h.comm);
                    h.s.check_invariants();
                    held[i].clear();
                    pending[i].clear();
                }
                _ => {}
            }
            for (i, &c) in clients.iter().enumerate() {
                for (id, r) in answers(&mut h, c) {
                    if let Some(pos) = pending[i].iter().position(|p| p.1 == id) {
                        let p = pending[i].remove(pos);
                        match r {
                            Ok(CoordReply::Granted) => held[i].push(p),
                            Ok(CoordReply::TimedOut) => {}
                            other => panic!("unexpected answer {other:?}"),
                        }
                    } else {
                        prop_assert!(matches!(r, Ok(CoordReply::Done)), "stray answer {:?}", r);
                    }
                }
            }
            let locks = held.iter().flatten().filter(|p| p.0).count();
            let leases = held.iter().flatten().filter(|p| !p.0).count();
            prop_assert!(locks <= 1);
            prop_assert!(leases <= max as usize);
        }
        for (i, &c) in clients.iter().enumerate() {
            if alive[i] {
                h.s.on_client_lost(c, &mut h.comm);
            }
        }
        h.s.check_invariants();
        prop_assert!(h.s.coord_info().is_empty());
    }
}

fn timed_sem(name: &str, max: u32, timeout_us: u64) -> CoordRequest {
    CoordRequest::SemaphoreAcquire {
        name: name.into(),
        max_leases: max,
        wait: true,
        lease_timeout_us: Some(timeout_us),
    }
}

fn refresh(name: &str, leases: &[u64]) -> CoordRequest {
    CoordRequest::SemaphoreRefresh { name: name.into(), leases: leases.to_vec() }
}

fn release(name: &str, lease: u64) -> CoordRequest {
    CoordRequest::SemaphoreRelease { name: name.into(), lease }
}

#[test]
fn unrefreshed_lease_expires_and_goes_to_the_next_waiter() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    h.s.set_now(1_000);
    coord(&mut h, a, 1, timed_sem("s", 1, 100));
    coord(&mut h, b, 1, sem("s", 1, true));
    assert_eq!(granted(&answers(&mut h, a)), vec![1]);
    assert!(answers(&mut h, b).is_empty());
    h.s.set_now(1_100);
    h.tick();
    assert!(answers(&mut h, b).is_empty(), "expired at its deadline, not after it");
    h.s.set_now(1_101);
    h.tick();
    h.s.check_invariants();
    assert_eq!(granted(&answers(&mut h, b)), vec![1]);
    coord(&mut h, a, 2, release("s", 1));
    let err = h.comm.take_clients();
    let msg = err
        .iter()
        .find_map(|(to, m)| match m {
            ToClient::Reply { id: 2, reply: Err(e) } if *to == a => Some(e.message.clone()),
            _ => None,
        })
        .expect("an error for releasing an expired lease");
    assert!(msg.contains("expired"), "{msg}");
    coord(&mut h, a, 3, release("s", 1));
    assert!(matches!(answers(&mut h, a)[..], [(3, Err(RequestErrorKind::InvalidArgument))]));
    coord(&mut h, b, 2, release("s", 1));
    assert!(matches!(answers(&mut h, b)[..], [(2, Ok(CoordReply::Done))]));
    assert!(h.s.coord_info().is_empty());
}

#[test]
fn refreshed_lease_is_kept_and_untimed_leases_never_expire() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    h.s.set_now(0);
    coord(&mut h, a, 1, timed_sem("s", 2, 100));
    coord(&mut h, b, 1, sem("s", 2, true));
    coord(&mut h, b, 2, sem("s", 2, true));
    for t in 1..10u64 {
        h.s.set_now(t * 90);
        coord(&mut h, a, 1 + t, refresh("s", &[1]));
        h.tick();
    }
    assert_eq!(granted(&answers(&mut h, a)), vec![1], "refresh gets no reply");
    assert_eq!(granted(&answers(&mut h, b)), vec![1], "a refreshed lease was freed");
    // Another client cannot refresh a's lease.
    h.s.set_now(1_000);
    coord(&mut h, b, 3, refresh("s", &[1]));
    h.s.set_now(1_000_000);
    h.tick();
    h.s.check_invariants();
    assert_eq!(granted(&answers(&mut h, b)), vec![2]);
    coord(&mut h, b, 4, CoordRequest::SemaphoreHolders { name: "s".into() });
    assert!(
        matches!(&answers(&mut h, b)[..], [(4, Ok(CoordReply::Holders(n)))] if n == &["b", "b"])
    );
    h.s.on_client_lost(a, &mut h.comm);
    h.s.check_invariants();
    coord(&mut h, b, 5, timed_sem("z", 1, 0));
    assert!(matches!(answers(&mut h, b)[..], [(5, Err(RequestErrorKind::InvalidArgument))]));
}

#[test]
fn waiter_granted_later_gets_its_own_full_timeout() {
    let mut h = H::new();
    let (a, b) = (h.client("a"), h.client("b"));
    h.s.set_now(0);
    coord(&mut h, a, 1, sem("s", 1, true));
    coord(&mut h, b, 1, timed_sem("s", 1, 100));
    h.s.set_now(500);
    coord(&mut h, a, 2, release("s", 1));
    assert_eq!(granted(&answers(&mut h, b)), vec![1]);
    h.s.set_now(600);
    h.tick();
    coord(&mut h, b, 2, CoordRequest::SemaphoreValue { name: "s".into() });
    assert!(matches!(answers(&mut h, b)[..], [(2, Ok(CoordReply::Count(1)))]));
    h.s.set_now(601);
    h.tick();
    h.s.check_invariants();
    assert!(h.s.coord_info().is_empty());
}
