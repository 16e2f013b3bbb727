//! Local summarisation LLM on candle: a quantized GGUF model shared by every
//! task, each generation with its own KV cache.
//!
//! | module | concern |
//! |---|---|
//! | `gguf` | reading the GGUF header, the architecture (`llama`, `qwen2`), re-quantising scalar-only tensors to Q8_0 where `matmul` does not run |
//! | `tokenizer` | the BPE tokenizer from `tokenizer.ggml.*` (or a `tokenizer.json`), stop tokens |
//! | `chat` | ChatML detection and rendering to token ids |
//! | `decoder` | the llama/qwen2 transformer: shared weights, a KV cache per generation |
//! | `matmul` | Q4_1/Q5_0/Q5_1/Q8_0 matrix products on AVX-512 VNNI tiles |
//! | `model` | loading: weights, tokenizer, template, context limit, device |
//! | `sampling` | greedy / temperature / top-p with a seed, repetition penalty |
//! | `generate` | chunked prompt, decoding loop, counts and timings |
//! | `truncate` | fitting input into a token budget at a sentence boundary |
//! | `error` | [`LlmError`] |

mod chat;
mod decoder;
mod error;
mod generate;
mod gguf;
mod matmul;
mod model;
mod sampling;
mod tokenizer;
mod truncate;

pub use chat::{ChatTemplate, Message, Role};
pub use error::{LlmError, Result};
pub use generate::{Generation, GenerationParams, StopReason};
pub use gguf::{Architecture, GgufFile, SCALAR_ONLY_TYPES};
pub use model::{Llm, LlmConfig};
pub use sampling::SamplingParams;
pub use tokenizer::LlmTokenizer;
pub use truncate::{Truncated, truncate_to_tokens};
