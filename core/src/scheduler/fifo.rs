//! Priority generations, as dask's `fifo_timeout`: submissions that arrive
//! close together form one generation and are ordered among themselves by
//! their position in their submission (so two quick `map`s interleave), while
//! a submission arriving later starts a new generation that runs after every
//! earlier one at equal user priority (so old work is not starved by new).

/// The generation clock. A task's rank is the base of its generation plus its
/// position in its submission; bases grow past every rank handed out, so all
/// ranks of a later generation are larger (run later) than earlier ones.
#[derive(Debug, Default)]
pub(super) struct Generations {
    /// When the current generation started; `None` before the first submission.
    started_us: Option<u64>,
    /// Rank base of the current generation.
    base: u64,
    /// One past the largest rank handed out.
    next: u64,
}

impl Generations {
    /// The rank base for a submission of `n` tasks arriving at `now_us`.
    pub(super) fn rank_base(&mut self, now_us: u64, fifo_timeout_us: u64, n: usize) -> u64 {
        let fresh = self.started_us.is_none_or(|s| now_us >= s.saturating_add(fifo_timeout_us));
        if fresh {
            self.base = self.next;
            self.started_us = Some(now_us);
        }
        self.next = self.next.max(self.base.saturating_add(n as u64));
        self.base
    }
}
