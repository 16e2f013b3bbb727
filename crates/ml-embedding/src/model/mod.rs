//! The sentence-embedding model: a sentence-transformers BERT directory run
//! with candle on the CPU.

mod bert;
mod kernels;
mod lanes;
mod load;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use tokenizers::{Encoding, Tokenizer};

use crate::{EmbeddingError, PassLimits, TokenCounter, plan_passes};
use lanes::Lanes;
use load::{
    check_pooling, load_tokenizers, load_weights, model_name, read_bert_config, required_file,
    resolve_max_tokens,
};

/// Options for [`Embedder::load`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// The most tokens (special ones included) the model reads of a text;
    /// the rest is cut off. Default: `max_seq_length` from the model's
    /// `sentence_bert_config.json`, else 256. Never more than the model's
    /// `max_position_embeddings`.
    pub max_tokens: Option<usize>,
}

/// A loaded sentence-embedding model.
///
/// Loads a sentence-transformers BERT directory (`config.json`,
/// `model.safetensors`, `tokenizer.json`, optionally `1_Pooling/config.json`
/// and `sentence_bert_config.json`) and embeds text as mean-pooled,
/// L2-normalised vectors, computed in `f32` on the CPU.
///
/// All methods are synchronous and CPU-bound: call them from a dedicated
/// thread or `spawn_blocking`, never on an async worker thread. The type is
/// `Send + Sync`, so one instance can be shared.
pub struct Embedder {
    model: bert::Bert,
    /// Truncates at `max_tokens`.
    truncating_tokenizer: Tokenizer,
    /// Neither pads nor truncates: for counting and chunking.
    plain_tokenizer: Tokenizer,
    device: Device,
    /// Where [`Self::embed_in_passes`] runs passes side by side.
    lanes: Lanes,
    name: String,
    dimension: usize,
    max_tokens: usize,
    special_tokens: usize,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model in directory `dir`.
    ///
    /// The tokenizer's own padding and truncation settings are replaced:
    /// nothing is padded (a batch's texts are packed end to end), and texts
    /// are cut at the model's window (see [`EmbedderConfig::max_tokens`]).
    ///
    /// # Errors
    ///
    /// - [`EmbeddingError::ModelMissing`] if `dir` or a required file is
    ///   missing;
    /// - [`EmbeddingError::Io`] if a file cannot be read;
    /// - [`EmbeddingError::BadConfig`] for a malformed configuration, a
    ///   pooling mode other than mean pooling, or an unusable `max_tokens`;
    /// - [`EmbeddingError::Tokenizer`] if `tokenizer.json` cannot be loaded;
    /// - [`EmbeddingError::Weights`] if the weights do not fit a BERT model.
    pub fn load(dir: &Path, config: EmbedderConfig) -> Result<Self, EmbeddingError> {
        if !dir.is_dir() {
            return Err(EmbeddingError::ModelMissing {
                path: dir.to_path_buf(),
            });
        }
        let config_path = required_file(dir, "config.json")?;
        let weights_path = required_file(dir, "model.safetensors")?;
        let tokenizer_path = required_file(dir, "tokenizer.json")?;
        check_pooling(dir)?;

        let bert_config = read_bert_config(&config_path)?;
        let max_tokens = resolve_max_tokens(dir, config, &bert_config)?;
        let (truncating_tokenizer, plain_tokenizer) = load_tokenizers(&tokenizer_path, max_tokens)?;
        let special_tokens = plain_tokenizer
            .encode_fast("", true)
            .map_err(|source| EmbeddingError::Tokenizer {
                context: "counting special tokens",
                source,
            })?
            .len();
        let device = select_device()?;
        let model = load_weights(&weights_path, &bert_config, &device)?;

        let embedder = Self {
            model,
            truncating_tokenizer,
            plain_tokenizer,
            device,
            lanes: Lanes::new()?,
            name: model_name(dir),
            dimension: bert_config.hidden_size,
            max_tokens,
            special_tokens,
        };
        tracing::info!(
            model = %embedder.name,
            dimension = embedder.dimension,
            max_tokens = embedder.max_tokens,
            "embedding model loaded"
        );
        Ok(embedder)
    }

    /// One short text through the model, so that the first request does not
    /// pay for first-use set-up.
    ///
    /// # Errors
    /// As [`Embedder::embed`].
    pub fn warm_up(&self) -> Result<(), EmbeddingError> {
        self.embed(&["warm-up"]).map(drop)
    }

    /// Embeds each text as a unit-length vector of [`Self::dimension`]
    /// numbers: the mean of the model's token outputs over the text's real
    /// (non-padding) tokens, L2-normalised. Texts longer than
    /// [`Self::max_tokens`] are truncated. Results do not depend on what
    /// else is in the batch.
    ///
    /// An empty slice gives an empty result without running the model.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::Tokenizer`] or [`EmbeddingError::Inference`] if
    /// tokenizing or the forward pass fails.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .truncating_tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|source| EmbeddingError::Tokenizer {
                context: "encoding a batch",
                source,
            })?;
        let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
        let (ids, type_ids, positions) = self.packed_tensors(&encodings)?;
        let hidden = self
            .model
            .forward(&ids, &type_ids, &positions, &lengths)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        tracing::debug!(texts = texts.len(), tokens = ids.dim(0)?, "embedded batch");
        Ok(mean_pool_normalised(&hidden, self.dimension, &lengths))
    }

    /// Embeds `texts` like [`Self::embed`], in the forward passes
    /// [`plan_passes`] picks under `limits` (length-sorted, so texts of
    /// similar length share a pass), and returns the vectors in input
    /// order. On a CPU with several threads, a batch that makes several
    /// passes runs them side by side, one per thread (and is split into at
    /// least one pass per thread when it has enough texts); a single pass
    /// uses every thread. After each pass, `on_pass` gets its number of
    /// texts and its duration, from the thread that ran it.
    ///
    /// # Errors
    ///
    /// As [`Self::embed`]; no vector is returned if any pass fails.
    pub fn embed_in_passes(
        &self,
        texts: &[&str],
        limits: &PassLimits,
        on_pass: impl Fn(usize, Duration) + Sync,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let counts = texts
            .iter()
            .map(|text| Ok(self.count_tokens(text)?.min(self.max_tokens)))
            .collect::<Result<Vec<usize>, EmbeddingError>>()?;
        let limits = PassLimits {
            max_texts: limits
                .max_texts
                .min(texts.len().div_ceil(self.lanes.count()))
                .max(1),
            ..*limits
        };
        let passes = plan_passes(&counts, &limits);
        let embedded = self.lanes.run(passes.len(), |pass| {
            let batch: Vec<&str> = passes[pass].iter().map(|&i| texts[i]).collect();
            let started = Instant::now();
            let vectors = self.embed(&batch)?;
            on_pass(batch.len(), started.elapsed());
            Ok(vectors)
        })?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for (pass, pass_vectors) in passes.iter().zip(embedded) {
            for (&index, vector) in pass.iter().zip(pass_vectors) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }

    /// The length of the vectors: the model's hidden size (384 for
    /// all-MiniLM-L6-v2).
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The most tokens, `[CLS]` and `[SEP]` included, the model reads of a
    /// text.
    #[must_use]
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The most tokens of text proper the model reads: [`Self::max_tokens`]
    /// less the special tokens it adds. Use it as
    /// [`crate::ChunkConfig::max_tokens`] so chunks are never truncated.
    #[must_use]
    pub fn max_content_tokens(&self) -> usize {
        self.max_tokens.saturating_sub(self.special_tokens).max(1)
    }

    /// The model's name: its directory's name, e.g. `all-MiniLM-L6-v2`.
    #[must_use]
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// How many word pieces `text` has, special tokens not counted and
    /// nothing truncated.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::Tokenizer`] if tokenizing fails.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
        self.plain_tokenizer
            .encode_fast(text, false)
            .map(|encoding| encoding.len())
            .map_err(|source| EmbeddingError::Tokenizer {
                context: "counting tokens",
                source,
            })
    }

    /// The byte range in `text` of each word piece, special tokens left out
    /// and nothing truncated; for sizing chunks.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::Tokenizer`] if tokenizing fails.
    pub fn token_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbeddingError> {
        self.plain_tokenizer
            .encode(text, false)
            .map(|encoding| encoding.get_offsets().to_vec())
            .map_err(|source| EmbeddingError::Tokenizer {
                context: "locating tokens",
                source,
            })
    }

    /// Token ids, token type ids and positions of a batch's texts packed
    /// end to end, each shaped `(tokens of all texts,)`.
    fn packed_tensors(
        &self,
        encodings: &[Encoding],
    ) -> Result<(Tensor, Tensor, Tensor), EmbeddingError> {
        let total = encodings.iter().map(Encoding::len).sum();
        let mut ids = Vec::with_capacity(total);
        let mut type_ids = Vec::with_capacity(total);
        let mut positions = Vec::with_capacity(total);
        for encoding in encodings {
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            // Below max_tokens, itself capped at the position table's size.
            positions.extend((0..encoding.len()).map(|p| u32::try_from(p).unwrap_or(u32::MAX)));
        }
        Ok((
            Tensor::from_vec(ids, total, &self.device)?,
            Tensor::from_vec(type_ids, total, &self.device)?,
            Tensor::from_vec(positions, total, &self.device)?,
        ))
    }
}

impl TokenCounter for Embedder {
    fn offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbeddingError> {
        self.token_offsets(text)
    }
}

/// Averages the token states of each text, `hidden` holding `lengths[i]`
/// rows of `dim` values for text `i`, one text after the other, then
/// scales each average to unit length.
fn mean_pool_normalised(hidden: &[f32], dim: usize, lengths: &[usize]) -> Vec<Vec<f32>> {
    let mut rows = hidden.chunks_exact(dim);
    lengths
        .iter()
        .map(|&length| {
            let mut mean = vec![0.0f32; dim];
            for row in rows.by_ref().take(length) {
                for (sum, value) in mean.iter_mut().zip(row) {
                    *sum += value;
                }
            }
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
            // The 1/length of the mean cancels in the normalisation.
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            mean.iter_mut().for_each(|x| *x *= scale);
            mean
        })
        .collect()
}

/// The device the model runs on: the first CUDA GPU when the crate is built
/// with the `cuda` feature (the GPU images), otherwise the CPU.
fn select_device() -> Result<Device, EmbeddingError> {
    #[cfg(feature = "cuda")]
    {
        Ok(Device::new_cuda(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Embedder>();
    }

    #[test]
    fn missing_directory_is_reported() {
        let err = Embedder::load(
            Path::new("/nonexistent/model-dir"),
            EmbedderConfig::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent/model-dir"), "{err}");
        assert!(err.contains("scripts/setup"), "{err}");
    }

    #[test]
    fn pooling_and_normalising() {
        // Two texts of three and two tokens, two values per token.
        let hidden = [1.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 3.0];
        let pooled = mean_pool_normalised(&hidden, 2, &[3, 2]);
        assert_eq!(pooled, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        // A text without tokens pools to zeros rather than NaN.
        assert_eq!(mean_pool_normalised(&[], 2, &[0]), vec![vec![0.0, 0.0]]);
    }
}
