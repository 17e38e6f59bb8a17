//! Sans-IO tests of retrying erred keys and of fire-and-forget keys.

use super::tests::*;
use super::*;
use crate::protocol::ClientMsg;

fn retry(h: &mut H, c: ClientId, ks: &[&str]) {
    h.client_msg(c, ClientMsg::Retry { keys: keys(ks) });
}

fn fire_and_forget(h: &mut H, c: ClientId, ks: &[&str]) {
    h.client_msg(c, ClientMsg::FireAndForget { keys: keys(ks) });
}

#[test]
fn retry_recomputes_erred_task_and_its_erred_dependencies_for_every_client() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c1 = h.client("c1");
    let c2 = h.client("c2");
    h.submit(c1, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    h.client_msg(c2, ClientMsg::Want { keys: keys(&["b"]) });
    let cs = computes(&h.comm.take_workers());
    h.fail(w, cs[0].1.task, "boom");
    assert_eq!(erred(&h.comm.take_clients()).len(), 2);
    assert_eq!(h.state("a"), TaskState::Erred);
    assert_eq!(h.state("b"), TaskState::Erred);

    retry(&mut h, c1, &["b"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    assert_eq!(h.state("b"), TaskState::Waiting);
    assert!(h.s.task_by_key("a").unwrap().1.failure.is_none());
    h.finish_key("a", 1);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "b".to_string())]);
    h.finish_key("b", 1);
    let mut got = in_memory(&h.comm.take_clients());
    got.sort();
    let mut want = vec![(c1, "b".to_string()), (c2, "b".to_string())];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(h.state("b"), TaskState::Memory);
}

#[test]
fn retry_leaves_dependencies_in_memory_alone() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["a", "b"]);
    h.comm.take_workers();
    h.finish_key("a", 1);
    let cs = computes(&h.comm.take_workers());
    h.fail(w, cs[0].1.task, "boom");
    h.comm.take_clients();
    retry(&mut h, c, &["b"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "b".to_string())]);
    assert_eq!(h.state("a"), TaskState::Memory);
}

#[test]
fn retry_restores_the_retry_budget() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec_opts("a", "f", &[], 0, 1)], &["a"]);
    for _ in 0..2 {
        let cs = computes(&h.comm.take_workers());
        h.fail(w, cs[0].1.task, "flaky");
    }
    assert_eq!(h.state("a"), TaskState::Erred);
    h.comm.take_clients();
    retry(&mut h, c, &["a"]);
    let cs = computes(&h.comm.take_workers());
    h.fail(w, cs[0].1.task, "flaky");
    assert_eq!(computes(&h.comm.take_workers()).len(), 1, "one retry left after retry()");
    assert!(erred(&h.comm.take_clients()).is_empty());
}

#[test]
fn retry_of_a_key_not_erred_answers_with_its_current_outcome() {
    let mut h = H::new();
    let _w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    let other = h.client("other");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    h.comm.take_workers();
    h.finish_key("a", 1);
    h.comm.take_clients();
    retry(&mut h, c, &["a"]);
    assert_eq!(in_memory(&h.comm.take_clients()), vec![(c, "a".to_string())]);
    assert!(computes(&h.comm.take_workers()).is_empty());
    // A key the client does not want (cancelled, or never submitted) is
    // reported cancelled, so the client's future does not stay pending.
    retry(&mut h, other, &["a", "nope"]);
    assert_eq!(
        cancelled(&h.comm.take_clients()),
        vec![(other, "a".to_string()), (other, "nope".to_string())]
    );
}

#[test]
fn fire_and_forget_task_runs_after_its_client_leaves_then_is_forgotten() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    fire_and_forget(&mut h, c, &["b"]);
    h.release(c, &["b"]);
    h.s.on_client_lost(c, &mut h.comm);
    h.s.check_invariants();
    assert!(frees(&h.comm.take_workers()).is_empty(), "nothing withdrawn");
    assert_eq!(h.state("a"), TaskState::Processing);
    assert_eq!(h.state("b"), TaskState::Waiting);
    h.finish_key("a", 1);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "b".to_string())]);
    h.finish_key("b", 1);
    let mut freed = frees(&h.comm.take_workers());
    freed.sort();
    assert_eq!(freed, vec![(w, "a".to_string()), (w, "b".to_string())]);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn fire_and_forget_task_that_fails_is_forgotten() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    fire_and_forget(&mut h, c, &["a"]);
    h.release(c, &["a"]);
    assert_eq!(h.state("a"), TaskState::Processing);
    let cs = computes(&h.comm.take_workers());
    h.fail(w, cs[0].1.task, "boom");
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn fire_and_forget_task_is_recomputed_when_its_worker_dies() {
    let mut h = H::new();
    let w1 = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    fire_and_forget(&mut h, c, &["a"]);
    h.release(c, &["a"]);
    h.comm.take_workers();
    let w2 = h.worker("w2", 1, &["f"]);
    h.comm.take_workers();
    h.lose_worker(w1, None);
    assert_eq!(h.processing_on("a"), Some(w2));
    h.finish_key("a", 1);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn fire_and_forget_of_a_released_task_computes_it() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &["a"])], &["b"]);
    h.comm.take_workers();
    h.finish_key("a", 1);
    h.finish_key("b", 1);
    h.comm.take_workers();
    // a was freed once b was in memory; it is known (b depends on it) but released.
    assert_eq!(h.state("a"), TaskState::Released);
    fire_and_forget(&mut h, c, &["a"]);
    assert_eq!(compute_keys(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    h.release(c, &["b"]);
    assert_eq!(h.state("a"), TaskState::Processing);
    h.finish_key("a", 1);
    assert_eq!(h.s.task_count(), 0);
}

#[test]
fn cancel_overrides_fire_and_forget() {
    let mut h = H::new();
    let w = h.worker("w1", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    fire_and_forget(&mut h, c, &["a"]);
    h.comm.take_workers();
    h.client_msg(c, ClientMsg::Cancel { keys: keys(&["a"]) });
    assert_eq!(frees(&h.comm.take_workers()), vec![(w, "a".to_string())]);
    assert_eq!(h.s.task_count(), 0);
}
