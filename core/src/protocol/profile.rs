//! [`Profile`]: where the cluster spent its time, per task function.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Counts and run times of finished tasks, per task function, as the
/// scheduler aggregated them from its workers' reports. Failed tasks are not
/// counted.
///
/// ```
/// use rudask_core::protocol::{FunctionProfile, Profile, WorkerTime};
/// use std::time::Duration;
/// let p = Profile {
///     functions: vec![FunctionProfile {
///         function: "app::inc".into(),
///         count: 2,
///         total: Duration::from_millis(3),
///         workers: vec![WorkerTime { worker: "w0".into(), count: 2, total: Duration::from_millis(3) }],
///     }],
/// };
/// assert_eq!(p.function("app::inc").map(|f| f.count), Some(2));
/// assert_eq!(p.total(), Duration::from_millis(3));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// One entry per function that finished at least once, most total time first.
    pub functions: Vec<FunctionProfile>,
}

impl Profile {
    /// The entry of the function with this registered id (see `Task::id`).
    pub fn function(&self, id: &str) -> Option<&FunctionProfile> {
        self.functions.iter().find(|f| f.function == id)
    }

    /// Time spent in all tasks.
    pub fn total(&self) -> Duration {
        self.functions.iter().map(|f| f.total).sum()
    }
}

/// Counts and run times of one task function.
///
/// ```
/// use rudask_core::protocol::FunctionProfile;
/// use std::time::Duration;
/// let f = FunctionProfile {
///     function: "app::inc".into(),
///     count: 4,
///     total: Duration::from_millis(10),
///     workers: Vec::new(),
/// };
/// assert_eq!(f.mean(), Duration::from_micros(2500));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionProfile {
    /// The function's registered id.
    pub function: String,
    /// Tasks of it that finished.
    pub count: u64,
    /// Their run time, summed.
    pub total: Duration,
    /// The same, per worker that ran it (by name), most total time first.
    pub workers: Vec<WorkerTime>,
}

impl FunctionProfile {
    /// Average run time of one task.
    pub fn mean(&self) -> Duration {
        let n = u128::from(self.count.max(1));
        Duration::from_nanos((self.total.as_nanos() / n) as u64)
    }
}

/// Counts and run times of one function on one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTime {
    /// The worker's name (workers that left are still listed).
    pub worker: String,
    /// Tasks of the function that finished there.
    pub count: u64,
    /// Their run time, summed.
    pub total: Duration,
}
