//! What every test starts with: its own queue, a stub and a worker on them.

use std::sync::Arc;

use anyhow::Result;

use super::{RunningWorker, Settings, Stub, TestQueue};

/// A fresh [`TestQueue`] consumed by a [`RunningWorker`] that routes
/// [`TASK`](super::TASK) to a [`Stub`]. Tests destructure it,
/// `let Scenario(queue, stub, worker) = ..`: the worker is stopped on its
/// own (`stop` consumes it) while the queue and the stub stay to be
/// inspected, and the queue ends with [`TestQueue::finish`].
pub struct Scenario(
    /// The test's queue (and its `.dead`).
    pub TestQueue,
    /// The handler the worker calls.
    pub Arc<Stub>,
    /// The worker consuming the queue.
    pub RunningWorker,
);

impl Scenario {
    /// A worker with [`Settings::default`] and a stub that answers at once.
    ///
    /// # Errors
    /// When the broker or Redis is unreachable.
    pub async fn start() -> Result<Self> {
        Self::start_with(Stub::new(), &Settings::default()).await
    }

    /// A worker with `settings` that calls `stub`.
    ///
    /// # Errors
    /// When the broker or Redis is unreachable, or the settings do not parse.
    pub async fn start_with(stub: Arc<Stub>, settings: &Settings) -> Result<Self> {
        let queue = TestQueue::declare().await?;
        let worker = RunningWorker::start(&queue, stub.clone(), settings).await?;
        Ok(Self(queue, stub, worker))
    }
}
