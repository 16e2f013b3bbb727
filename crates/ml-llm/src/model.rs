//! The loaded model: weights shared by every task, tokenizer, chat
//! template and limits.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::chat::ChatTemplate;
use crate::decoder::{Decoder, Widening};
use crate::error::{LlmError, Result};
use crate::gguf::{Architecture, GgufFile};
use crate::matmul::TiledMatMul;
use crate::tokenizer::LlmTokenizer;

/// The context of a GGUF that does not state its own.
const DEFAULT_CONTEXT_TOKENS: usize = 2048;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// A `tokenizer.json` to use instead of the GGUF's vocabulary.
    pub tokenizer_path: Option<PathBuf>,
    /// Convert Q4_1/Q5_0/Q5_1 tensors to Q8_0 at load (CPU only; these
    /// types have no SIMD kernels in candle), except where this crate's
    /// AVX-512 VNNI kernels run them as they are.
    pub requantize: bool,
    /// Context window in tokens (prompt + answer); capped at what the model
    /// supports. `None` uses the model's own limit.
    pub context_tokens: Option<usize>,
    /// Prompt tokens per forward pass while reading the prompt.
    pub prompt_chunk_tokens: usize,
    /// Run on the first CUDA GPU when the crate is built with `cuda`.
    pub use_gpu: bool,
}

impl LlmConfig {
    /// Defaults for the model at `model_path`.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            tokenizer_path: None,
            requantize: true,
            context_tokens: None,
            prompt_chunk_tokens: 256,
            use_gpu: false,
        }
    }
}

/// A model ready to serve: load once, share behind an `Arc`, call
/// [`Llm::generate`](crate::Llm::generate) from any number of threads.
pub struct Llm {
    pub(crate) decoder: Decoder,
    pub(crate) tokenizer: LlmTokenizer,
    pub(crate) template: ChatTemplate,
    pub(crate) device: Device,
    pub(crate) context_tokens: usize,
    pub(crate) prompt_chunk_tokens: usize,
    name: String,
    architecture: Architecture,
    requantized: bool,
    tiled: bool,
}

impl Llm {
    /// Loads the GGUF model, its tokenizer and chat template.
    ///
    /// # Errors
    /// Unreadable or malformed file, unsupported architecture, tokenizer or
    /// chat template problems.
    pub fn load(config: &LlmConfig) -> Result<Self> {
        let started = Instant::now();
        let gguf = GgufFile::open(&config.model_path)?;
        let architecture = gguf.architecture();
        let name = gguf.model_name();
        let tokenizer = match &config.tokenizer_path {
            Some(path) => {
                LlmTokenizer::from_file(path, gguf.get_u32("tokenizer.ggml.eos_token_id"))?
            }
            None => LlmTokenizer::from_gguf(&gguf)?,
        };
        let template = ChatTemplate::detect(gguf.get_str("tokenizer.chat_template"), &tokenizer)?;
        let limit = gguf
            .arch_u32("context_length")
            .map_or(DEFAULT_CONTEXT_TOKENS, |n| n as usize);
        let context_tokens = config.context_tokens.unwrap_or(limit).min(limit);
        if context_tokens < 64 {
            return Err(LlmError::Config(format!(
                "a context of {context_tokens} tokens is too small to summarise anything"
            )));
        }
        let device = select_device(config.use_gpu)?;
        let requantize = config.requantize && device.is_cpu();
        let requantized = requantize && gguf.has_requantized_tensors();
        let tensor_types = gguf.tensor_types();
        let tiled = device.is_cpu() && TiledMatMul::available();
        let widened = Widening::pays_off(&device);
        let decoder = gguf.load_weights(&device, requantize, |content, reader, device| {
            Decoder::from_gguf(
                &content,
                reader,
                device,
                architecture,
                context_tokens,
                widened,
            )
        })?;
        tracing::info!(
            model = %name,
            architecture = architecture.as_str(),
            ?tensor_types,
            requantized,
            tiled,
            widened,
            context_tokens,
            vocab = tokenizer.vocab_size(),
            load_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "language model loaded"
        );
        Ok(Self {
            decoder,
            tokenizer,
            template,
            device,
            context_tokens,
            prompt_chunk_tokens: config.prompt_chunk_tokens.max(1),
            name,
            architecture,
            requantized,
            tiled,
        })
    }

    /// The model's name (`general.name` of the GGUF).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The context window in tokens (prompt plus answer).
    pub fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    /// Whether tensors were converted to Q8_0 at load.
    pub fn requantized(&self) -> bool {
        self.requantized
    }

    /// Whether the products run on this crate's AVX-512 VNNI kernels
    /// (where they take the matrices' types and shapes).
    pub fn tiled(&self) -> bool {
        self.tiled
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &LlmTokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }
}

#[cfg(feature = "cuda")]
fn select_device(use_gpu: bool) -> Result<Device> {
    if use_gpu {
        Ok(Device::new_cuda(0)?)
    } else {
        Ok(Device::Cpu)
    }
}

#[cfg(not(feature = "cuda"))]
fn select_device(use_gpu: bool) -> Result<Device> {
    if use_gpu {
        return Err(LlmError::Config(
            "a GPU was requested but this build has no `cuda` feature".into(),
        ));
    }
    Ok(Device::Cpu)
}
