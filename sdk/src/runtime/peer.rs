//! Requests to workers' data ports: a pool of connections keyed by address,
//! each multiplexing requests by id. In-process workers (`inproc://` addresses)
//! are reached through their event channel instead of a socket.

use super::conn;
use crate::error::{Error, Result};
use rudask_core::protocol::{PeerRequest, PeerResponse, Role};
use rudask_core::{Key, Payload};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Where a worker sends the answer to a data request.
#[derive(Debug)]
pub(crate) enum PeerReply {
    Conn(mpsc::UnboundedSender<PeerResponse>),
    Once(oneshot::Sender<PeerResponse>),
}

impl PeerReply {
    pub(crate) fn send(self, r: PeerResponse) {
        match self {
            PeerReply::Conn(tx) => {
                let _ = tx.send(r);
            }
            PeerReply::Once(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// A data request delivered to an in-process worker.
pub(crate) type LocalRequest = (PeerRequest, PeerReply);

fn local_workers() -> &'static Mutex<FxHashMap<String, mpsc::UnboundedSender<LocalRequest>>> {
    static LOCAL: OnceLock<Mutex<FxHashMap<String, mpsc::UnboundedSender<LocalRequest>>>> =
        OnceLock::new();
    LOCAL.get_or_init(Default::default)
}

/// Makes an in-process worker reachable at `inproc://...`.
pub(crate) fn register_local(addr: String, tx: mpsc::UnboundedSender<LocalRequest>) {
    local_workers().lock().unwrap_or_else(|p| p.into_inner()).insert(addr, tx);
}

/// Removes an in-process worker.
pub(crate) fn unregister_local(addr: &str) {
    local_workers().lock().unwrap_or_else(|p| p.into_inner()).remove(addr);
}

type Pending = Arc<Mutex<FxHashMap<u64, oneshot::Sender<PeerResponse>>>>;

#[derive(Debug)]
struct PeerConn {
    tx: mpsc::UnboundedSender<PeerRequest>,
    pending: Pending,
}

/// Connections to workers' data ports.
#[derive(Debug, Default)]
pub(crate) struct PeerPool {
    conns: tokio::sync::Mutex<FxHashMap<String, Arc<PeerConn>>>,
    next_id: AtomicU64,
    security: crate::security::Security,
}

impl PeerPool {
    /// A pool whose connections use `security` (TLS and token).
    pub(crate) fn new(security: crate::security::Security) -> Self {
        PeerPool { security, ..Default::default() }
    }

    /// TLS and token of this pool's connections.
    pub(crate) fn security(&self) -> &crate::security::Security {
        &self.security
    }

    async fn conn(&self, addr: &str) -> Result<Arc<PeerConn>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if !c.tx.is_closed() {
                return Ok(c.clone());
            }
        }
        let (reader, w, _) = conn::connect(addr, Role::Peer, &self.security).await?;
        let pending: Pending = Default::default();
        let on_msg = {
            let pending = pending.clone();
            move |r: PeerResponse| {
                let id = match &r {
                    PeerResponse::Data { id, .. }
                    | PeerResponse::PutAck { id }
                    | PeerResponse::ActorReply { id, .. }
                    | PeerResponse::NoSuchActor { id } => *id,
                };
                if let Some(tx) = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                    let _ = tx.send(r);
                }
                true
            }
        };
        let on_close = {
            let pending = pending.clone();
            move |_| pending.lock().unwrap_or_else(|p| p.into_inner()).clear()
        };
        conn::spawn_reader(reader, on_msg, on_close);
        let c = Arc::new(PeerConn { tx: conn::spawn_writer(w), pending });
        conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    async fn request(
        &self,
        addr: &str,
        make: impl FnOnce(u64) -> PeerRequest,
    ) -> Result<PeerResponse> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let lost = || Error::Io(format!("connection to worker {addr} was lost during the request"));
        if addr.starts_with("inproc://") {
            let local =
                local_workers().lock().unwrap_or_else(|p| p.into_inner()).get(addr).cloned();
            let local = local.ok_or_else(|| {
                Error::Io(format!(
                    "in-process worker {addr} is not in this process: it has stopped, or it \
                     belongs to a LocalCluster::threads in another process, whose workers' data \
                     other processes cannot reach"
                ))
            })?;
            local.send((make(id), PeerReply::Once(tx))).map_err(|_| lost())?;
        } else {
            let c = self.conn(addr).await?;
            c.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            if c.tx.send(make(id)).is_err() {
                return Err(lost());
            }
        }
        rx.await.map_err(|_| lost())
    }

    /// Fetches keys from one worker; `None` for keys it does not hold.
    pub(crate) async fn get_data(
        &self,
        addr: &str,
        keys: Vec<Key>,
    ) -> Result<Vec<(Key, Option<Payload>)>> {
        match self.request(addr, |id| PeerRequest::GetData { id, keys }).await? {
            PeerResponse::Data { items, .. } => Ok(items),
            _ => {
                Err(Error::Io(format!("worker {addr} answered a data request with something else")))
            }
        }
    }

    /// Stores values on one worker.
    pub(crate) async fn put_data(&self, addr: &str, items: Vec<(Key, Payload)>) -> Result<()> {
        match self.request(addr, |id| PeerRequest::PutData { id, items }).await? {
            PeerResponse::PutAck { .. } => Ok(()),
            _ => Err(Error::Io(format!("worker {addr} answered a put with something else"))),
        }
    }
}
