//! [`wait`] for futures to complete, and [`progress`] while they do.

use crate::as_completed::as_completed;
use crate::error::{Error, Result};
use crate::future::Future;
use futures::StreamExt;
use std::time::Duration;

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Return {
    /// Once every future is done.
    AllCompleted,
    /// Once at least one future is done.
    FirstCompleted,
}

/// Waits until the futures are done (finished, failed or cancelled), all of
/// them or the first one as `until` says, and splits them into `(done,
/// not_done)`, each in the given order. Gives up after `timeout`, if any,
/// with [`Error::Timeout`]. Failed futures count as done: check them with
/// [`Future::status`] or [`Future::exception`].
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// use rudask::Return;
/// use std::time::Duration;
/// let futs = client.map(inc, (0..10).map(|i| (i,)))?;
/// let (done, not_done) =
///     rudask::wait(futs, Return::AllCompleted, Some(Duration::from_secs(60))).await?;
/// assert_eq!((done.len(), not_done.len()), (10, 0));
/// # Ok(()) }
/// ```
pub async fn wait<T: 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    until: Return,
    timeout: Option<Duration>,
) -> Result<(Vec<Future<T>>, Vec<Future<T>>)> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    let mut completed = as_completed(futures.iter().cloned());
    let waiting = async {
        match until {
            Return::AllCompleted => while completed.next().await.is_some() {},
            Return::FirstCompleted => {
                completed.next().await;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, waiting).await.map_err(|_| Error::Timeout(t))?,
        None => waiting.await,
    }
    Ok(futures.into_iter().partition(Future::done))
}

/// Shows a progress bar on the terminal until every future is done
/// (finished, failed or cancelled). When standard output is not a terminal
/// it shows nothing and only waits.
///
/// ```no_run
/// # #[rudask::task] fn inc(x: i64) -> i64 { x + 1 }
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let futs = client.map(inc, (0..1000).map(|i| (i,)))?;
/// rudask::progress(&futs).await;
/// assert!(futs.iter().all(|f| f.done()));
/// # Ok(()) }
/// ```
pub async fn progress<T: 'static>(futures: &[Future<T>]) {
    use std::io::IsTerminal;
    let bar = std::io::stdout().is_terminal().then(|| {
        indicatif::ProgressBar::with_draw_target(
            Some(futures.len() as u64),
            indicatif::ProgressDrawTarget::stdout(),
        )
    });
    let mut batches = as_completed(futures.iter().cloned()).batches();
    while let Some(batch) = batches.next().await {
        if let Some(bar) = &bar {
            bar.inc(batch.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
}
