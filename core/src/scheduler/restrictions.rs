//! Tasks restricted to some workers or needing resources: which workers may
//! run them, where they go when ready, and why they wait in the no-worker
//! state when no connected worker fits.
//!
//! Restricted tasks skip the root-task queue: like dask, they are assigned
//! at once to a worker that fits, and that worker starts them as its
//! resources allow (the worker enforces resource totals, see
//! [`crate::worker`]). Only resource *totals* matter here, so a task is never
//! sent to a worker that could not run it, and stealing moves it only to a
//! worker that could.

use super::task::TaskState;
use super::{Comm, Scheduler, TaskId, WorkerId, WorkerState};
use crate::error::{FailureKind, TaskFailure};
use crate::graph::{Key, Restrictions};
use crate::protocol::{Unrunnable, UNRUNNABLE_REPORTED};

/// Whether `ws` satisfies `r`: resource totals always, the worker list
/// unless `any_worker` (a loose restriction falling back to other workers).
fn fits(r: &Restrictions, ws: &WorkerState, any_worker: bool) -> bool {
    r.resources_fit(&ws.info.resources) && (any_worker || fits_list(r, ws))
}

impl Scheduler {
    /// The task's placement restrictions; `None` for most tasks.
    pub(super) fn restrictions(&self, id: TaskId) -> Option<&Restrictions> {
        self.tasks[id].spec.as_ref()?.options.restrictions.as_deref()
    }

    /// Whether worker `w` may run task `id` (for stealing and checks): it has
    /// the function and satisfies the task's restrictions, the worker list
    /// counting only when it is strict.
    pub(super) fn may_run_on(&self, id: TaskId, w: WorkerId) -> bool {
        let ws = &self.workers[w];
        ws.can_run(self.tasks[id].func)
            && self.restrictions(id).is_none_or(|r| fits(r, ws, r.allow_other_workers))
    }

    /// Places a ready restricted task on a worker that fits (a listed one
    /// when any is connected and fits; any that fits for a loose restriction
    /// otherwise), preferring the one holding most of its input, then the
    /// least occupied. Parks it in the no-worker state when none fits; a
    /// joining worker retries it.
    pub(super) fn schedule_restricted(&mut self, id: TaskId, comm: &mut impl Comm) {
        let r = self.restrictions(id).expect("called for restricted tasks");
        if let Err(why) = r.validate() {
            let failure = TaskFailure::new(
                FailureKind::BadArgument,
                format!("task {} has invalid placement restrictions: {why}", self.tasks[id].key),
            );
            self.fail(id, failure, comm);
            return;
        }
        let func = self.tasks[id].func;
        let candidates = |any_worker: bool| -> Vec<WorkerId> {
            self.workers
                .iter()
                .filter(|(_, ws)| ws.can_run(func) && !ws.info.paused && fits(r, ws, any_worker))
                .map(|(w, _)| w)
                .collect()
        };
        let mut allowed = candidates(false);
        if allowed.is_empty() && r.allow_other_workers {
            allowed = candidates(true);
        }
        match self.best_of(id, &allowed) {
            Some(w) => self.assign(id, w, comm),
            None => {
                self.set_state(id, TaskState::NoWorker);
                self.no_worker.insert(id);
            }
        }
    }

    fn best_of(&self, id: TaskId, workers: &[WorkerId]) -> Option<WorkerId> {
        let t = &self.tasks[id];
        let held = |w: WorkerId| -> u64 {
            t.deps
                .iter()
                .map(|&d| &self.tasks[d])
                .filter(|d| d.who_has.contains(&w))
                .map(|d| d.nbytes.max(1))
                .sum()
        };
        workers.iter().copied().max_by(|&a, &b| {
            held(a).cmp(&held(b)).then_with(|| self.occupancy(b).total_cmp(&self.occupancy(a)))
        })
    }

    /// Why a task in the no-worker state cannot run, for a human.
    pub(super) fn unrunnable_reason(&self, id: TaskId) -> String {
        if self.workers.is_empty() {
            return "no workers are connected".into();
        }
        if let Some(why) = self.paused_reason(id) {
            return why;
        }
        let t = &self.tasks[id];
        let func = t.spec.as_ref().map_or("?", |s| &*s.func);
        let Some(r) = self.restrictions(id) else {
            return format!("no connected worker can run task function {func}");
        };
        let listed: Vec<&WorkerState> =
            self.workers.values().filter(|ws| fits_list(r, ws)).collect();
        let strict = !r.workers.is_empty() && !r.allow_other_workers;
        if strict && listed.is_empty() {
            return format!("restricted to workers {:?} which are not connected", r.workers);
        }
        let pool: Vec<&WorkerState> = if strict { listed } else { self.workers.values().collect() };
        for (name, need) in &r.resources {
            let has = |ws: &&WorkerState| {
                ws.info
                    .resources
                    .iter()
                    .any(|(n, total)| n == name && *total + crate::graph::RESOURCE_EPSILON >= *need)
            };
            if !pool.iter().any(has) {
                let whom = if strict {
                    format!("none of workers {:?} has that much", r.workers)
                } else {
                    "no connected worker has that much".to_string()
                };
                return format!(
                    "needs resource {name}={need} and {whom}; start a worker with --resources {name}={need}"
                );
            }
        }
        if !pool.iter().any(|ws| ws.can_run(t.func)) {
            return format!("the workers it may run on cannot run task function {func}");
        }
        format!(
            "no connected worker it may run on has all of the resources {:?} at once",
            r.resources
        )
    }

    /// The no-worker tasks of a snapshot: the requested keys in that state,
    /// then others up to [`UNRUNNABLE_REPORTED`] in all.
    pub(super) fn unrunnable(&self, keys: &[Key]) -> Vec<Unrunnable> {
        let mut ids: Vec<TaskId> = keys
            .iter()
            .filter_map(|k| self.keys.get(k).copied())
            .filter(|&id| self.tasks[id].state == TaskState::NoWorker)
            .collect();
        ids.sort();
        ids.dedup();
        let extra = UNRUNNABLE_REPORTED.saturating_sub(ids.len());
        let others: Vec<TaskId> =
            self.no_worker.iter().copied().filter(|id| !ids.contains(id)).take(extra).collect();
        ids.extend(others);
        ids.into_iter()
            .map(|id| Unrunnable {
                key: self.tasks[id].key.clone(),
                reason: self.unrunnable_reason(id),
            })
            .collect()
    }

    /// Panics when a restricted task runs on a worker it may not run on. For tests.
    pub(super) fn check_restrictions(&self) {
        for (id, t) in &self.tasks {
            if let (Some(w), Some(r)) = (t.processing_on, self.restrictions(id)) {
                let ws = &self.workers[w];
                assert!(
                    r.resources_fit(&ws.info.resources),
                    "{} needs {:?} but runs on {} with {:?}",
                    t.key,
                    r.resources,
                    ws.info.name,
                    ws.info.resources
                );
                assert!(
                    r.allow_other_workers || fits_list(r, ws),
                    "{} is restricted to {:?} but runs on {}",
                    t.key,
                    r.workers,
                    ws.info.name
                );
            }
        }
    }
}

/// Whether `ws` is one of the listed workers (every worker when there is no list).
fn fits_list(r: &Restrictions, ws: &WorkerState) -> bool {
    r.workers.is_empty() || r.matches_worker(&ws.info.name, &ws.info.data_addr)
}
