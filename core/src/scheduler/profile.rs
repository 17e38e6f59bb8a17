//! Run-time statistics per task function and worker, fed by every finished
//! task: one indexed add per task, turned into a [`Profile`] on request.

use super::{FuncIdx, Scheduler, WorkerId};
use crate::protocol::{FunctionProfile, Profile, WorkerTime};
use slotmap::SecondaryMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    count: u64,
    total_us: u64,
}

/// Statistics of the workers that ever finished a task, by function index.
#[derive(Debug, Default)]
pub(super) struct Profiler {
    /// Index into `workers` of each connected worker that finished a task.
    index: SecondaryMap<WorkerId, usize>,
    /// Worker name and its per-function statistics; kept after the worker left.
    workers: Vec<(String, Vec<Stat>)>,
}

impl Profiler {
    /// Tasks finished per function index, over every worker, for `n` functions.
    pub(super) fn finished_per_function(&self, n: usize) -> Vec<u64> {
        let mut done = vec![0; n];
        for (_, stats) in &self.workers {
            for (d, s) in done.iter_mut().zip(stats) {
                *d += s.count;
            }
        }
        done
    }

    fn stats_of(&mut self, w: WorkerId, name: impl FnOnce() -> String) -> &mut Vec<Stat> {
        let i = match self.index.get(w) {
            Some(&i) => i,
            None => {
                self.workers.push((name(), Vec::new()));
                self.index.insert(w, self.workers.len() - 1);
                self.workers.len() - 1
            }
        };
        &mut self.workers[i].1
    }
}

impl Scheduler {
    /// Counts a task of function `f` that ran `duration_us` on worker `w`.
    pub(super) fn record_run(&mut self, w: WorkerId, f: FuncIdx, duration_us: u64) {
        let workers = &self.workers;
        let stats = self.profiler.stats_of(w, || workers[w].info.name.clone());
        let i = f.0 as usize;
        if stats.len() <= i {
            stats.resize(i + 1, Stat::default());
        }
        stats[i].count += 1;
        stats[i].total_us += duration_us;
        self.stream_finished(w, f, duration_us);
    }

    /// Counts and run times of finished tasks per function and worker.
    pub fn profile(&self) -> Profile {
        let mut names = vec![None; self.func_ids.len()];
        for (name, f) in &self.func_ids {
            names[f.0 as usize] = Some(name);
        }
        let mut functions: Vec<FunctionProfile> = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let Some(name) = name else { continue };
            let mut workers: Vec<WorkerTime> = self
                .profiler
                .workers
                .iter()
                .filter_map(|(worker, stats)| {
                    let s = stats.get(i).filter(|s| s.count > 0)?;
                    Some(WorkerTime {
                        worker: worker.clone(),
                        count: s.count,
                        total: Duration::from_micros(s.total_us),
                    })
                })
                .collect();
            if workers.is_empty() {
                continue;
            }
            workers.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.worker.cmp(&b.worker)));
            functions.push(FunctionProfile {
                function: name.to_string(),
                count: workers.iter().map(|w| w.count).sum(),
                total: workers.iter().map(|w| w.total).sum(),
                workers,
            });
        }
        functions.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.function.cmp(&b.function)));
        Profile { functions }
    }
}
