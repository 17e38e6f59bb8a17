//! The resources a worker offers (`--resources GPU=2`) and how much of them
//! its running tasks hold. A task needing resources starts only when they are
//! free and gives them back when it completes, whatever the outcome.

use crate::graph::{TaskSpec, RESOURCE_EPSILON};

/// Totals and amounts in use, by resource.
#[derive(Debug, Default)]
pub(super) struct Pool {
    totals: Vec<(String, f64)>,
    used: Vec<f64>,
}

/// The resources one run of a task holds; `None` for most tasks.
pub(super) fn needs(spec: &TaskSpec) -> Option<&[(String, f64)]> {
    spec.options.restrictions.as_deref().map(|r| &r.resources[..]).filter(|r| !r.is_empty())
}

impl Pool {
    pub(super) fn new(totals: Vec<(String, f64)>) -> Pool {
        let used = vec![0.0; totals.len()];
        Pool { totals, used }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.totals.iter().position(|(n, _)| n == name)
    }

    /// Whether the worker has at least `need` in total (it could ever run it).
    pub(super) fn covers(&self, need: &[(String, f64)]) -> bool {
        need.iter()
            .all(|(n, a)| self.index(n).is_some_and(|i| self.totals[i].1 + RESOURCE_EPSILON >= *a))
    }

    /// Whether `need` is free right now.
    pub(super) fn available(&self, need: &[(String, f64)]) -> bool {
        need.iter().all(|(n, a)| {
            self.index(n).is_some_and(|i| self.used[i] + a <= self.totals[i].1 + RESOURCE_EPSILON)
        })
    }

    pub(super) fn acquire(&mut self, need: &[(String, f64)]) {
        for (n, a) in need {
            if let Some(i) = self.index(n) {
                self.used[i] += a;
            }
        }
    }

    pub(super) fn release(&mut self, need: &[(String, f64)]) {
        for (n, a) in need {
            if let Some(i) = self.index(n) {
                self.used[i] = (self.used[i] - a).max(0.0);
            }
        }
    }

    pub(super) fn totals(&self) -> &[(String, f64)] {
        &self.totals
    }

    pub(super) fn in_use(&self) -> Vec<(String, f64)> {
        self.totals.iter().zip(&self.used).map(|((n, _), u)| (n.clone(), *u)).collect()
    }
}
