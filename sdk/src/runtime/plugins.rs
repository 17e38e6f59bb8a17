//! Scheduler plugins registered by clients at run time: built by name from
//! the plugin types linked into the scheduler's binary.

use rudask_core::protocol::{Reply, RequestError, RequestErrorKind, ToClient};
use rudask_core::scheduler::{ClientId, Comm, Scheduler};

/// Builds, starts and keeps plugin `name`, answering request `id` of client
/// `c` with `Done` or with why the plugin could not be built or started.
pub(super) fn register_scheduler_plugin(
    s: &mut Scheduler,
    comm: &mut impl Comm,
    c: ClientId,
    id: u64,
    name: &str,
    config: &str,
) {
    let reply = match crate::plugin::build_scheduler_plugin(name, config) {
        Err(e) => Err(RequestError::new(RequestErrorKind::InvalidArgument, e.to_string())),
        Ok(plugin) => match s.add_plugin(plugin) {
            Ok(()) => {
                tracing::info!(plugin = name, "scheduler plugin registered");
                Ok(Reply::Done)
            }
            Err(e) => Err(RequestError::new(
                RequestErrorKind::Failed,
                format!("scheduler plugin {name:?} failed to start: {e}"),
            )),
        },
    };
    comm.send_client(c, ToClient::Reply { id, reply });
}
