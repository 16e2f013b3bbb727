//! How the next token is chosen: greedy by default, or temperature and
//! top-p sampling from a seeded generator; a repetition penalty either way.

use candle_core::Tensor;
use candle_transformers::generation::{LogitsProcessor, Sampling};

/// Decoding settings of one generation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (the default) means greedy decoding, which
    /// is deterministic.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability
    /// reaches `top_p` (`1.0` keeps all). Ignored when greedy.
    pub top_p: f64,
    /// Seed of the sampling generator: the same seed and input give the
    /// same output.
    pub seed: u64,
    /// Logits of tokens seen in the last `repeat_last_n` tokens are divided
    /// by this (`1.0` disables the penalty).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 299_792_458,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
        }
    }
}

/// Picks tokens from logits according to [`SamplingParams`].
pub(crate) struct Sampler {
    processor: LogitsProcessor,
    repeat_penalty: f32,
    repeat_last_n: usize,
}

impl Sampler {
    pub(crate) fn new(params: &SamplingParams) -> Self {
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else if params.top_p > 0.0 && params.top_p < 1.0 {
            Sampling::TopP {
                p: params.top_p,
                temperature: params.temperature,
            }
        } else {
            Sampling::All {
                temperature: params.temperature,
            }
        };
        Self {
            processor: LogitsProcessor::from_sampling(params.seed, sampling),
            repeat_penalty: params.repeat_penalty,
            repeat_last_n: params.repeat_last_n,
        }
    }

    /// The next token given the last position's `logits` and the tokens
    /// generated so far.
    pub(crate) fn next(&mut self, logits: &Tensor, generated: &[u32]) -> candle_core::Result<u32> {
        let logits = logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?;
        let logits = if (self.repeat_penalty - 1.0).abs() > f32::EPSILON && !generated.is_empty() {
            let start = generated.len().saturating_sub(self.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                &logits,
                self.repeat_penalty,
                &generated[start..],
            )?
        } else {
            logits
        };
        self.processor.sample(&logits)
    }
}
