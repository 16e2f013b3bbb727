//! The sentence-embedding model: a sentence-transformers BERT directory run
//! with candle on the CPU.

mod bert;
mod kernels;
mod load;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use tokenizers::{Encoding, Tokenizer};

use crate::{EmbeddingError, PassLimits, TokenCounter, plan_passes};
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
    /// Pads to the longest text of a batch and truncates at `max_tokens`.
    batch_tokenizer: Tokenizer,
    /// Neither pads nor truncates: for counting and chunking.
    plain_tokenizer: Tokenizer,
    device: Device,
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
    /// batches are padded to their longest text, and texts are cut at the
    /// model's window (see [`EmbedderConfig::max_tokens`]).
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
        let (batch_tokenizer, plain_tokenizer) =
            load_tokenizers(&tokenizer_path, max_tokens, &bert_config)?;
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
            batch_tokenizer,
            plain_tokenizer,
            device,
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
            .batch_tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|source| EmbeddingError::Tokenizer {
                context: "encoding a batch",
                source,
            })?;
        let (input_ids, type_ids, mask) = self.batch_tensors(&encodings)?;
        let hidden = self.model.forward(&input_ids, &type_ids, &mask)?;
        let vectors = mean_pool_normalised(&hidden, &mask)?.to_vec2::<f32>()?;
        tracing::debug!(texts = texts.len(), tokens = mask.dim(1)?, "embedded batch");
        Ok(vectors)
    }

    /// Embeds `texts` like [`Self::embed`], in the forward passes
    /// [`plan_passes`] picks under `limits` (length-sorted, so little is
    /// spent on padding), and returns the vectors in input order. After
    /// each pass `on_pass` gets its number of texts and its duration.
    ///
    /// # Errors
    ///
    /// As [`Self::embed`]; no vector is returned if any pass fails.
    pub fn embed_in_passes(
        &self,
        texts: &[&str],
        limits: &PassLimits,
        mut on_pass: impl FnMut(usize, Duration),
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let counts = texts
            .iter()
            .map(|text| Ok(self.count_tokens(text)?.min(self.max_tokens)))
            .collect::<Result<Vec<usize>, EmbeddingError>>()?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for pass in plan_passes(&counts, limits) {
            let batch: Vec<&str> = pass.iter().map(|&i| texts[i]).collect();
            let started = Instant::now();
            let embedded = self.embed(&batch)?;
            on_pass(batch.len(), started.elapsed());
            for (&index, vector) in pass.iter().zip(embedded) {
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

    /// Token ids, token type ids and attention mask of a padded batch, each
    /// shaped `(texts, longest)`.
    fn batch_tensors(
        &self,
        encodings: &[Encoding],
    ) -> Result<(Tensor, Tensor, Tensor), EmbeddingError> {
        let rows = encodings.len();
        let width = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * width);
        let mut type_ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in encodings {
            if encoding.len() != width {
                // Padding to the longest makes this impossible; refuse rather
                // than build a ragged tensor.
                return Err(EmbeddingError::Inference(candle_core::Error::Msg(format!(
                    "batch not padded: a row has {} tokens, the longest {width}",
                    encoding.len()
                ))));
            }
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let shape = (rows, width);
        Ok((
            Tensor::from_vec(ids, shape, &self.device)?,
            Tensor::from_vec(type_ids, shape, &self.device)?,
            Tensor::from_vec(mask, shape, &self.device)?,
        ))
    }
}

impl TokenCounter for Embedder {
    fn offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbeddingError> {
        self.token_offsets(text)
    }
}

/// Averages `hidden` `(rows, tokens, dim)` over the tokens where `mask`
/// `(rows, tokens)` is 1, then scales each row to unit length.
fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norms)
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
    fn pooling_and_normalising() -> candle_core::Result<()> {
        let device = Device::Cpu;
        // Two rows of three tokens; the second row's last token is padding.
        let hidden = Tensor::new(
            &[
                [[1f32, 0.], [3., 0.], [2., 0.]],
                [[0., 1.], [0., 3.], [100., 100.]],
            ],
            &device,
        )?;
        let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &device)?;
        let pooled = mean_pool_normalised(&hidden, &mask)?.to_vec2::<f32>()?;
        assert_eq!(pooled, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        Ok(())
    }
}
