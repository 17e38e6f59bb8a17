//! Sans-IO tests of published datasets: holding, getting, overriding,
//! waiting for a name, and the durable store's messages and catalog.

use super::tests::{spec, H};
use super::*;
use crate::collection::CollectionMeta;
use crate::graph::Key;
use crate::protocol::{
    CatalogChange, ClientMsg, DatasetRecord, Publication, Reply, Request, RequestErrorKind,
    StoredPart, ToClient, ToWorker, WorkerMsg,
};

fn publication(ks: &[&str]) -> Publication {
    Publication {
        meta: CollectionMeta::new("test.Bag", ks.len(), &()).unwrap(),
        keys: ks.iter().map(|k| Key::from(*k)).collect(),
        graph: Vec::new(),
    }
}

fn request(h: &mut H, c: ClientId, id: u64, req: Request) {
    h.client_msg(c, ClientMsg::Request { id, req });
}

fn publish(h: &mut H, c: ClientId, id: u64, name: &str, p: Publication, override_existing: bool) {
    let items = vec![(name.to_string(), p)];
    request(h, c, id, Request::PublishDatasets { items, override_existing, time: 1.0 });
}

/// Replies sent to `c`: Ok(reply) or Err(kind).
fn replies(h: &mut H, c: ClientId) -> Vec<(u64, Result<Reply, RequestErrorKind>)> {
    let (mine, others): (Vec<_>, Vec<_>) =
        h.comm.take_clients().into_iter().partition(|(to, _)| *to == c);
    h.comm.clients = others;
    mine.into_iter()
        .filter_map(|(_, m)| match m {
            ToClient::Reply { id, reply } => Some((id, reply.map_err(|e| e.kind))),
            _ => None,
        })
        .collect()
}

fn one_reply(h: &mut H, c: ClientId) -> Result<Reply, RequestErrorKind> {
    let mut r = replies(h, c);
    assert_eq!(r.len(), 1, "expected one reply, got {r:?}");
    r.remove(0).1
}

/// A cluster with one worker and a client holding `a` and `b` in memory.
fn computed() -> (H, WorkerId, ClientId) {
    let mut h = H::new();
    let w = h.worker("w", 1, &["f"]);
    let c = h.client("c");
    h.submit(c, vec![spec("a", "f", &[]), spec("b", "f", &[])], &["a", "b"]);
    h.finish_key("a", 10);
    h.finish_key("b", 20);
    h.comm.take_clients();
    h.comm.take_workers();
    (h, w, c)
}

#[test]
fn published_keys_stay_in_memory_after_every_client_leaves_until_unpublished() {
    let (mut h, _w, c) = computed();
    publish(&mut h, c, 1, "ds", publication(&["a", "b"]), false);
    assert!(matches!(one_reply(&mut h, c), Ok(Reply::Done)));
    h.s.on_client_lost(c, &mut h.comm);
    h.s.check_invariants();
    assert_eq!(h.state("a"), TaskState::Memory);
    assert_eq!(h.s.client_count(), 0, "the holder is not a client");
    assert!(h.comm.take_workers().is_empty(), "nothing freed");

    let d = h.client("d");
    request(&mut h, d, 2, Request::ListDatasets);
    match one_reply(&mut h, d) {
        Ok(Reply::Datasets(infos)) => {
            assert_eq!(infos.len(), 1);
            assert_eq!(
                (infos[0].name.as_str(), infos[0].nbytes, infos[0].in_memory),
                ("ds", 30, true)
            );
            assert_eq!(infos[0].owner, "c");
        }
        other => panic!("{other:?}"),
    }
    request(&mut h, d, 3, Request::GetDataset { name: "ds".into(), wait: false });
    match one_reply(&mut h, d) {
        Ok(Reply::Dataset(p)) => assert_eq!(p.keys, [Key::from("a"), Key::from("b")]),
        other => panic!("{other:?}"),
    }
    h.client_msg(d, ClientMsg::Want { keys: super::tests::keys(&["a", "b"]) });
    let told = super::tests::in_memory(&h.comm.take_clients());
    assert_eq!(told.iter().filter(|(to, _)| *to == d).count(), 2, "the getter is told");
    request(&mut h, d, 4, Request::UnpublishDataset { name: "ds".into() });
    assert!(matches!(one_reply(&mut h, d), Ok(Reply::Done)));
    assert!(h.comm.take_workers().is_empty(), "the getter still wants the keys");
    h.release(d, &["a", "b"]);
    let frees = super::tests::frees(&h.comm.take_workers());
    assert_eq!(frees.len(), 2, "released once nobody holds them: {frees:?}");
}

#[test]
fn names_are_unique_unless_overridden_and_override_releases_the_old_keys() {
    let (mut h, _w, c) = computed();
    publish(&mut h, c, 1, "ds", publication(&["a"]), false);
    publish(&mut h, c, 2, "ds", publication(&["b"]), false);
    let r = replies(&mut h, c);
    assert!(matches!(r[1].1, Err(RequestErrorKind::Exists)), "{r:?}");
    h.release(c, &["a"]);
    assert!(h.comm.take_workers().is_empty(), "a is still published");
    publish(&mut h, c, 3, "ds", publication(&["b"]), true);
    assert!(matches!(one_reply(&mut h, c), Ok(Reply::Done)));
    assert_eq!(super::tests::frees(&h.comm.take_workers()).len(), 1, "a freed by the override");
    assert_eq!(h.s.dataset_names(), ["ds"]);
}

#[test]
fn bad_publications_change_nothing() {
    let (mut h, _w, c) = computed();
    for (id, name, keys) in [(1, "", &["a"][..]), (2, "x", &["nope"][..]), (3, "\u{7}", &["a"][..])]
    {
        publish(&mut h, c, id, name, publication(keys), false);
        assert!(matches!(one_reply(&mut h, c), Err(RequestErrorKind::InvalidArgument)));
    }
    publish(&mut h, c, 4, &"n".repeat(300), publication(&["a"]), false);
    assert!(matches!(one_reply(&mut h, c), Err(RequestErrorKind::InvalidArgument)));
    let items =
        vec![("ok".to_string(), publication(&["a"])), ("bad".to_string(), publication(&["zz"]))];
    request(&mut h, c, 5, Request::PublishDatasets { items, override_existing: false, time: 0.0 });
    assert!(matches!(one_reply(&mut h, c), Err(RequestErrorKind::InvalidArgument)));
    assert!(h.s.dataset_names().is_empty(), "all or none");
}

#[test]
fn unknown_names_list_the_existing_ones_and_waiting_gets_are_answered_on_publish() {
    let (mut h, _w, c) = computed();
    publish(&mut h, c, 1, "one", publication(&["a"]), false);
    replies(&mut h, c);
    let d = h.client("d");
    request(&mut h, d, 2, Request::GetDataset { name: "two".into(), wait: false });
    match one_reply(&mut h, d) {
        Ok(Reply::NoDataset(names)) => assert_eq!(names, ["one"]),
        other => panic!("{other:?}"),
    }
    request(&mut h, d, 3, Request::GetDataset { name: "two".into(), wait: true });
    assert!(replies(&mut h, d).is_empty(), "waits");
    publish(&mut h, c, 4, "two", publication(&["b"]), false);
    match one_reply(&mut h, d) {
        Ok(Reply::Dataset(p)) => assert_eq!(p.keys, [Key::from("b")]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_published_graph_is_handed_to_getters_and_holds_nothing() {
    let (mut h, _w, c) = computed();
    let mut p = publication(&["g"]);
    p.graph = vec![spec("g", "f", &[])];
    publish(&mut h, c, 1, "lazy", p, false);
    assert!(matches!(one_reply(&mut h, c), Ok(Reply::Done)));
    assert!(h.s.task_by_key("g").is_none(), "nothing runs at publish");
    request(&mut h, c, 2, Request::GetDataset { name: "lazy".into(), wait: false });
    match one_reply(&mut h, c) {
        Ok(Reply::Dataset(p)) => assert_eq!(p.graph.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_a_store_workers_write_published_partitions_and_the_catalog_follows() {
    let (mut h, w, c) = computed();
    h.s.restore_datasets("/store".into(), Vec::new());
    publish(&mut h, c, 1, "ds", publication(&["a", "b"]), false);
    replies(&mut h, c);
    let stores: Vec<_> = h
        .comm
        .take_workers()
        .into_iter()
        .filter_map(|(to, m)| match m {
            ToWorker::StoreParts { store, dir, parts } => Some((to, store, dir, parts)),
            _ => None,
        })
        .collect();
    assert_eq!(stores.len(), 1, "one request for the worker holding both");
    let (to, store, dir, parts) = stores[0].clone();
    assert_eq!((to, store.as_str(), parts.len()), (w, "/store", 2));
    assert!(matches!(&h.comm.catalog[..], [CatalogChange::Put(r)] if !r.durable()));
    let part = |f: &str| StoredPart { file: f.into(), nbytes: 5, checksum: 7, bin_body: false };
    let results = parts.iter().map(|(k, f)| (k.clone(), Ok(part(f)))).collect();
    h.worker_msg(w, WorkerMsg::PartsStored { dir: dir.clone(), results });
    assert!(matches!(h.comm.catalog.last(), Some(CatalogChange::Put(r)) if r.durable()));
    request(&mut h, c, 2, Request::UnpublishDataset { name: "ds".into() });
    assert!(
        matches!(h.comm.catalog.last(), Some(CatalogChange::Delete { name, dir: d }) if name == "ds" && *d == dir)
    );
}

#[test]
fn keys_published_before_they_are_computed_are_written_once_in_memory() {
    let mut h = H::new();
    let _w = h.worker("w", 1, &["f"]);
    let c = h.client("c");
    h.s.restore_datasets("/store".into(), Vec::new());
    h.submit(c, vec![spec("a", "f", &[])], &["a"]);
    publish(&mut h, c, 1, "ds", publication(&["a"]), false);
    assert!(!h.comm.take_workers().iter().any(|(_, m)| matches!(m, ToWorker::StoreParts { .. })));
    h.finish_key("a", 3);
    assert!(h.comm.take_workers().iter().any(|(_, m)| matches!(m, ToWorker::StoreParts { .. })));
}

fn restored_record() -> DatasetRecord {
    DatasetRecord {
        name: "old".into(),
        dir: "ds-1-1".into(),
        publication: publication(&["p0", "p1"]),
        owner: "gone".into(),
        published_at: 1.0,
        parts: vec![
            Some(StoredPart { file: "part-00000".into(), nbytes: 4, checksum: 1, bin_body: true }),
            Some(StoredPart { file: "part-00001".into(), nbytes: 4, checksum: 2, bin_body: true }),
        ],
        damaged: None,
    }
}

#[test]
fn a_restored_dataset_loads_from_disk_on_first_get_and_a_bad_file_marks_it_damaged() {
    let mut h = H::new();
    let _w = h.worker("w", 1, &[LOAD_PART]);
    h.s.restore_datasets("/store".into(), vec![restored_record()]);
    let c = h.client("c");
    request(&mut h, c, 1, Request::ListDatasets);
    match one_reply(&mut h, c) {
        Ok(Reply::Datasets(i)) => assert!(i[0].on_disk && !i[0].in_memory && i[0].nbytes == 8),
        other => panic!("{other:?}"),
    }
    request(&mut h, c, 2, Request::GetDataset { name: "old".into(), wait: false });
    assert!(matches!(one_reply(&mut h, c), Ok(Reply::Dataset(_))));
    let loads = super::tests::computes(&h.comm.take_workers());
    assert_eq!(loads.len(), 2);
    assert!(loads.iter().all(|(_, ct)| &*ct.spec.func == LOAD_PART));
    h.finish_key("p0", 4);
    let (id, _) = h.s.task_by_key("p1").unwrap();
    let w = h.s.task_by_key("p1").unwrap().1.processing_on.unwrap();
    h.fail(w, id.to_wire(), "checksum mismatch");
    assert!(matches!(h.comm.catalog.last(), Some(CatalogChange::Put(r)) if r.damaged.is_some()));
    request(&mut h, c, 3, Request::GetDataset { name: "old".into(), wait: false });
    assert!(matches!(one_reply(&mut h, c), Err(RequestErrorKind::Failed)));
}

#[test]
fn a_restart_keeps_durable_datasets_and_drops_the_others() {
    let (mut h, w, c) = computed();
    h.s.restore_datasets("/store".into(), vec![restored_record()]);
    publish(&mut h, c, 1, "volatile", publication(&["a"]), false);
    replies(&mut h, c);
    request(&mut h, c, 2, Request::Restart);
    h.s.check_invariants();
    assert_eq!(h.s.dataset_names(), ["old"]);
    assert!(
        matches!(h.comm.catalog.last(), Some(CatalogChange::Delete { name, .. }) if name == "volatile")
    );
    let _ = w;
}
