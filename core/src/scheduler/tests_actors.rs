//! Actor keys on the scheduler: they stay on the worker hosting the actor.

use super::*;
use crate::graph::Key;
use crate::protocol::{ClientMsg, Request, ScatteredKey, ToWorker, WorkerHello};

#[test]
fn rebalance_never_moves_actor_keys() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let w: Vec<WorkerId> = ["a", "b"]
        .iter()
        .map(|name| {
            let hello = WorkerHello {
                name: name.to_string(),
                data_addr: format!("mem://{name}"),
                nthreads: 1,
                catalog: vec![],
                resources: Vec::new(),
            };
            s.on_worker_connected(&hello, &mut comm).expect("accepted")
        })
        .collect();
    let c = s.on_client_connected("c");
    comm.take_workers();
    let actor = "actor-00000000000000ff-Counter";
    let items = [actor, "data-0"]
        .iter()
        .map(|&k| ScatteredKey { key: Key::from(k), nbytes: 1000, workers: vec![w[0].to_wire()] })
        .collect();
    s.on_client_message(c, ClientMsg::UpdateData { items }, &mut comm);
    // The actor's key comes first, so it would be the one to move.
    let keys = Some(vec![Key::from(actor), Key::from("data-0")]);
    s.on_client_message(
        c,
        ClientMsg::Request { id: 1, req: Request::Rebalance { keys } },
        &mut comm,
    );
    s.check_invariants();
    let moved: Vec<String> = comm
        .take_workers()
        .into_iter()
        .flat_map(|(_, m)| match m {
            ToWorker::Acquire { keys } => {
                keys.into_iter().map(|d| d.key.to_string()).collect::<Vec<_>>()
            }
            other => panic!("unexpected message to a worker: {other:?}"),
        })
        .collect();
    assert_eq!(moved, ["data-0"], "the actor's key stays");
}
