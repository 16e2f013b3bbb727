//! The embedding model behind a dedicated OS thread: async tasks send texts
//! over a bounded channel and await a oneshot reply, so inference never runs
//! on the async worker threads.

use std::sync::Arc;
use std::time::Instant;

use ml_embedding::{Embedder, EmbeddingError};
use ml_runtime::{Metrics, TaskError};
use tokio::sync::{mpsc, oneshot};

/// Texts per forward pass: bounds memory and keeps padding waste low.
const MAX_BATCH: usize = 32;
/// Requests waiting for the model before senders wait too.
const QUEUE_DEPTH: usize = 64;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, EmbeddingError>>,
    span: tracing::Span,
}

/// Handle to the model thread. Cheap to clone.
#[derive(Clone)]
pub struct EmbedService {
    embedder: Arc<Embedder>,
    jobs: mpsc::Sender<Job>,
}

impl EmbedService {
    /// Starts the model thread.
    ///
    /// # Errors
    /// When the OS refuses to spawn the thread.
    pub fn start(embedder: Embedder, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let embedder = Arc::new(embedder);
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let model = embedder.clone();
        std::thread::Builder::new()
            .name("embedding-model".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    let _entered = job.span.enter();
                    let vectors = embed_sorted(&model, &job.texts, &metrics);
                    // The caller may have gone away (shutdown); nothing to do then.
                    let _ = job.reply.send(vectors);
                }
            })?;
        Ok(Self { embedder, jobs })
    }

    /// The loaded model (for tokenising and chunking on blocking threads).
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Embeds `texts` (in order) on the model thread.
    ///
    /// # Errors
    /// A permanent [`TaskError`] when the model fails on the input.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, TaskError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            reply,
            span: tracing::Span::current(),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?;
        answer
            .await
            .map_err(|_| TaskError::Transient("embedding model thread stopped".into()))?
            .map_err(|e| TaskError::Permanent(format!("embedding failed: {e}")))
    }
}

/// Embeds in passes of at most [`MAX_BATCH`] texts, grouped by length so that
/// texts of similar length share a pass (less padding), and returns the
/// vectors in the input order.
fn embed_sorted(
    embedder: &Embedder,
    texts: &[String],
    metrics: &Metrics,
) -> Result<Vec<Vec<f32>>, EmbeddingError> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut vectors = vec![Vec::new(); texts.len()];
    for pass in order.chunks(MAX_BATCH) {
        let batch: Vec<&str> = pass.iter().map(|&i| texts[i].as_str()).collect();
        let started = Instant::now();
        let embedded = embedder.embed(&batch)?;
        let seconds = started.elapsed().as_secs_f64();
        metrics.embedding_duration.observe(seconds);
        metrics
            .model_latency
            .with_label_values(&[embedder.model_name()])
            .observe(seconds);
        metrics
            .embedding_batch_size
            .set(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        for (&index, vector) in pass.iter().zip(embedded) {
            vectors[index] = vector;
        }
    }
    Ok(vectors)
}
