//! The embedding model behind a dedicated OS thread. Async tasks send texts
//! over a bounded channel and await a oneshot reply, so inference never runs
//! on the async worker threads. The thread batches across tasks: it takes
//! every request that arrives within a short wait, embeds their texts
//! together in length-sorted passes, and fans the vectors back out.
//!
//! Queue tasks and `/v1/embeddings` requests wait in two lanes that the
//! thread takes from in turn, so a flood of API clients cannot starve the
//! queue (nor a deep queue the API): each waits for at most about one
//! request of the other lane.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ml_embedding::{Embedder, EmbeddingError, PassLimits};
use ml_runtime::{Metrics, TaskError};
use prometheus::{Histogram, HistogramOpts};
use tokio::sync::{mpsc, oneshot};

/// Limits of cross-task micro-batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Limits of one forward pass; `passes.max_texts` is also the
    /// collection target of one round.
    pub passes: PassLimits,
    /// How long the model thread waits for more requests before it runs
    /// what it has.
    pub max_wait: Duration,
}

/// Buckets of `ml_embedding_pass_texts`: powers of two up to 512 texts.
const PASS_TEXTS_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Requests waiting for the model, per lane, before senders wait too.
const LANE_DEPTH: usize = 256;

/// Who asks for vectors; each has its own lane to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Tasks from the broker.
    Queue,
    /// Requests to `/v1/embeddings`.
    Api,
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbeddingError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Handle to the model thread. Cheap to clone.
#[derive(Clone)]
pub struct EmbedService {
    embedder: Arc<Embedder>,
    queue: mpsc::Sender<Job>,
    api: mpsc::Sender<Job>,
}

impl EmbedService {
    /// Starts the model thread. Must be called inside a Tokio runtime (the
    /// thread uses it to wait for requests with a timeout).
    ///
    /// # Errors
    /// When the pass-size histogram cannot be registered or the OS refuses
    /// to spawn the thread.
    pub fn start(
        embedder: Embedder,
        metrics: Arc<Metrics>,
        limits: BatchLimits,
    ) -> anyhow::Result<Self> {
        // `ml_embedding_batch_size` (the contract's gauge) shows only the
        // last pass; this shows them all.
        let pass_texts = metrics.register(Histogram::with_opts(
            HistogramOpts::new(
                "ml_embedding_pass_texts",
                "Texts per embedding forward pass (a batch of one or more tasks' texts).",
            )
            .buckets(PASS_TEXTS_BUCKETS.to_vec()),
        )?)?;
        let embedder = Arc::new(embedder);
        let (queue, queue_jobs) = mpsc::channel::<Job>(LANE_DEPTH);
        let (api, api_jobs) = mpsc::channel::<Job>(LANE_DEPTH);
        let lanes = Lanes {
            queue: queue_jobs,
            api: api_jobs,
            api_next: false,
        };
        let model = ModelThread {
            embedder: embedder.clone(),
            metrics,
            pass_texts,
            limits,
            runtime: tokio::runtime::Handle::current(),
        };
        std::thread::Builder::new()
            .name("embedding-model".into())
            .spawn(move || model.run(lanes))?;
        Ok(Self {
            embedder,
            queue,
            api,
        })
    }

    /// The loaded model (for tokenising and chunking on blocking threads).
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Embeds `texts` (in order), batched with other callers' texts, its
    /// turn taken in `lane`.
    ///
    /// # Errors
    /// A permanent [`TaskError`] when the model fails on the input.
    pub async fn embed(&self, lane: Lane, texts: Vec<String>) -> Result<Vec<Vec<f32>>, TaskError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let jobs = match lane {
            Lane::Queue => &self.queue,
            Lane::Api => &self.api,
        };
        jobs.send(Job { texts, reply })
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?;
        answer
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?
            .map_err(|e| TaskError::Permanent(format!("embedding failed: {e}")))
    }
}

/// The two lanes' receiving ends, taken from in turn.
struct Lanes {
    queue: mpsc::Receiver<Job>,
    api: mpsc::Receiver<Job>,
    /// Whether the API lane has the next turn.
    api_next: bool,
}

impl Lanes {
    /// A waiting job: from the lane whose turn it is, else from the other.
    fn try_next(&mut self) -> Option<Job> {
        let (first, second) = if self.api_next {
            (&mut self.api, &mut self.queue)
        } else {
            (&mut self.queue, &mut self.api)
        };
        let (job, from_first) = match first.try_recv() {
            Ok(job) => (job, true),
            Err(_) => (second.try_recv().ok()?, false),
        };
        let from_api = self.api_next == from_first;
        self.api_next = !from_api;
        Some(job)
    }

    /// The next job of either lane, waiting for one; `None` once every
    /// sender of both is gone.
    async fn next(&mut self) -> Option<Job> {
        if let Some(job) = self.try_next() {
            return Some(job);
        }
        let (job, from_api) = tokio::select! {
            Some(job) = self.queue.recv() => (job, false),
            Some(job) = self.api.recv() => (job, true),
            else => return None,
        };
        self.api_next = !from_api;
        Some(job)
    }
}

struct ModelThread {
    embedder: Arc<Embedder>,
    metrics: Arc<Metrics>,
    pass_texts: Histogram,
    limits: BatchLimits,
    runtime: tokio::runtime::Handle,
}

impl ModelThread {
    fn run(self, mut lanes: Lanes) {
        while let Some(first) = self.runtime.block_on(lanes.next()) {
            let jobs = self.collect(first, &mut lanes);
            self.serve(jobs);
        }
    }

    /// Takes more requests until the round holds `max_texts` texts or
    /// `max_wait` has passed since the first one.
    fn collect(&self, first: Job, lanes: &mut Lanes) -> Vec<Job> {
        let deadline = Instant::now() + self.limits.max_wait;
        let mut texts = first.texts.len();
        let mut jobs = vec![first];
        while texts < self.limits.passes.max_texts {
            let next = lanes.try_next().or_else(|| {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                // The timer must be created inside the runtime context.
                self.runtime
                    .block_on(async { tokio::time::timeout(left, lanes.next()).await })
                    .ok()
                    .flatten()
            });
            let Some(job) = next else { break };
            texts += job.texts.len();
            jobs.push(job);
        }
        jobs
    }

    /// Embeds every job's texts together; if that fails, each job alone, so
    /// one bad input never fails the others.
    fn serve(&self, jobs: Vec<Job>) {
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        match self.embed_passes(&texts) {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
                    // The caller may have gone away (shutdown); nothing to do then.
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(error) if jobs.len() == 1 => {
                let _ = jobs
                    .into_iter()
                    .next()
                    .map(|job| job.reply.send(Err(error)));
            }
            Err(_) => {
                for job in jobs {
                    let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
                    let _ = job.reply.send(self.embed_passes(&texts));
                }
            }
        }
    }

    /// Embeds `texts` in the passes the limits allow, recording each pass
    /// in the metrics, and returns the vectors in input order.
    fn embed_passes(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let model = self.embedder.model_name();
        self.embedder
            .embed_in_passes(texts, &self.limits.passes, |count, elapsed| {
                let seconds = elapsed.as_secs_f64();
                self.metrics.embedding_duration.observe(seconds);
                self.metrics.model_took(model, seconds);
                self.metrics
                    .embedding_batch_size
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
                #[allow(clippy::cast_precision_loss)] // a few hundred texts
                self.pass_texts.observe(count as f64);
                tracing::debug!(
                    texts = count,
                    ms = elapsed.as_millis() as u64,
                    "forward pass"
                );
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            texts: vec![text.to_owned()],
            reply,
        }
    }

    fn lanes() -> (mpsc::Sender<Job>, mpsc::Sender<Job>, Lanes) {
        let (queue, queue_jobs) = mpsc::channel(LANE_DEPTH);
        let (api, api_jobs) = mpsc::channel(LANE_DEPTH);
        let lanes = Lanes {
            queue: queue_jobs,
            api: api_jobs,
            api_next: false,
        };
        (queue, api, lanes)
    }

    fn order(lanes: &mut Lanes) -> Vec<String> {
        std::iter::from_fn(|| lanes.try_next())
            .map(|job| job.texts.concat())
            .collect()
    }

    #[tokio::test]
    async fn lanes_take_turns_and_a_flood_in_one_does_not_hold_up_the_other() -> anyhow::Result<()>
    {
        let (queue, api, mut lanes) = lanes();
        for i in 0..4 {
            api.send(job(&format!("a{i}"))).await?;
        }
        queue.send(job("q0")).await?;
        queue.send(job("q1")).await?;
        assert_eq!(order(&mut lanes), ["q0", "a0", "q1", "a1", "a2", "a3"]);
        // The turn carries over: after an API job the queue comes first.
        queue.send(job("q2")).await?;
        api.send(job("a4")).await?;
        assert_eq!(order(&mut lanes), ["q2", "a4"]);
        Ok(())
    }

    #[tokio::test]
    async fn next_waits_for_either_lane_and_ends_when_both_close() -> anyhow::Result<()> {
        let (queue, api, mut lanes) = lanes();
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            api.send(job("late api")).await
        });
        let first = lanes.next().await.map(|job| job.texts.concat());
        assert_eq!(first.as_deref(), Some("late api"));
        sender.await??;
        drop(queue);
        assert!(lanes.next().await.is_none(), "both lanes closed");
        Ok(())
    }
}
