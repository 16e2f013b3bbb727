//! The embedding model behind a dedicated OS thread. Async tasks send texts
//! over a bounded channel and await a oneshot reply, so inference never runs
//! on the async worker threads. The thread batches across tasks: it takes
//! every request that arrives within a short wait, embeds their texts
//! together in length-sorted passes, and fans the vectors back out.

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

/// Requests waiting for the model before senders wait too.
const QUEUE_DEPTH: usize = 256;

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbeddingError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Handle to the model thread. Cheap to clone.
#[derive(Clone)]
pub struct EmbedService {
    embedder: Arc<Embedder>,
    jobs: mpsc::Sender<Job>,
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
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let model = ModelThread {
            embedder: embedder.clone(),
            metrics,
            pass_texts,
            limits,
            runtime: tokio::runtime::Handle::current(),
        };
        std::thread::Builder::new()
            .name("embedding-model".into())
            .spawn(move || model.run(queue))?;
        Ok(Self { embedder, jobs })
    }

    /// The loaded model (for tokenising and chunking on blocking threads).
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Embeds `texts` (in order), batched with other callers' texts.
    ///
    /// # Errors
    /// A permanent [`TaskError`] when the model fails on the input.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, TaskError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { texts, reply })
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?;
        answer
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?
            .map_err(|e| TaskError::Permanent(format!("embedding failed: {e}")))
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
    fn run(self, mut queue: mpsc::Receiver<Job>) {
        while let Some(first) = queue.blocking_recv() {
            let jobs = self.collect(first, &mut queue);
            self.serve(jobs);
        }
    }

    /// Takes more requests until the round holds `max_texts` texts or
    /// `max_wait` has passed since the first one.
    fn collect(&self, first: Job, queue: &mut mpsc::Receiver<Job>) -> Vec<Job> {
        let deadline = Instant::now() + self.limits.max_wait;
        let mut texts = first.texts.len();
        let mut jobs = vec![first];
        while texts < self.limits.passes.max_texts {
            let next = match queue.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        // The timer must be created inside the runtime context.
                        self.runtime
                            .block_on(async { tokio::time::timeout(left, queue.recv()).await })
                            .ok()
                            .flatten()
                    }
                }
            };
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
