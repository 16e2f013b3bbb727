//! One generation: read the prompt in chunks into a private KV cache, then
//! decode token by token until end-of-turn or the token budget.

use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::chat::Message;
use crate::error::{LlmError, Result};
use crate::model::Llm;
use crate::sampling::{Sampler, SamplingParams};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationParams {
    /// Most tokens the answer may have.
    pub max_new_tokens: usize,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: SamplingParams::default(),
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (end-of-turn or end-of-sequence token).
    EndOfTurn,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
}

/// The answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text, special tokens left out, trimmed.
    pub text: String,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (the stop token included when there was one).
    pub generated_tokens: usize,
    /// Time spent reading the prompt (up to the first generated token's logits).
    pub prompt_duration: Duration,
    /// Time spent generating after that.
    pub generation_duration: Duration,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

impl Generation {
    /// Prompt tokens read per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_duration)
    }

    /// Tokens generated per second.
    pub fn generated_tokens_per_second(&self) -> f64 {
        // The first token comes out of the prompt pass.
        rate(
            self.generated_tokens.saturating_sub(1),
            self.generation_duration,
        )
    }
}

fn rate(tokens: usize, duration: Duration) -> f64 {
    let seconds = duration.as_secs_f64();
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}

impl Llm {
    /// One token through the model, so that the first request does not pay
    /// for first-use set-up (buffers, kernels picked for this CPU).
    ///
    /// # Errors
    /// As [`Llm::generate`].
    pub fn warm_up(&self) -> Result<()> {
        let params = GenerationParams {
            max_new_tokens: 1,
            ..GenerationParams::default()
        };
        self.generate(&[Message::user("Hello")], &params).map(drop)
    }

    /// Answers the chat `messages`. Each call has its own KV cache over the
    /// shared weights, so calls may run in parallel on several threads.
    ///
    /// # Errors
    /// [`LlmError::InvalidRequest`] when the prompt is empty or leaves no
    /// room for an answer in the context; [`LlmError::Inference`] when the
    /// model fails.
    pub fn generate(&self, messages: &[Message], params: &GenerationParams) -> Result<Generation> {
        self.generate_until(messages, params, &|| false)
    }

    /// Like [`Llm::generate`], giving up once `stop` says so (asked between
    /// forward passes).
    ///
    /// # Errors
    /// As [`Llm::generate`]; [`LlmError::Stopped`] when `stop` ended it.
    pub fn generate_until(
        &self,
        messages: &[Message],
        params: &GenerationParams,
        stop: &dyn Fn() -> bool,
    ) -> Result<Generation> {
        let prompt = self.template.render(messages, &self.tokenizer)?;
        self.generate_from_tokens_until(&prompt, params, stop)
    }

    /// Like [`Llm::generate`] for an already rendered prompt.
    ///
    /// # Errors
    /// As [`Llm::generate`].
    pub fn generate_from_tokens(
        &self,
        prompt: &[u32],
        params: &GenerationParams,
    ) -> Result<Generation> {
        self.generate_from_tokens_until(prompt, params, &|| false)
    }

    fn generate_from_tokens_until(
        &self,
        prompt: &[u32],
        params: &GenerationParams,
        stop: &dyn Fn() -> bool,
    ) -> Result<Generation> {
        if prompt.is_empty() {
            return Err(LlmError::InvalidRequest("the prompt is empty".into()));
        }
        if prompt.len() >= self.context_tokens {
            return Err(LlmError::InvalidRequest(format!(
                "the prompt has {} tokens and the context only {}",
                prompt.len(),
                self.context_tokens
            )));
        }
        let started = Instant::now();
        let mut cache = self.decoder.new_cache();
        let mut logits = None;
        for chunk in prompt.chunks(self.prompt_chunk_tokens) {
            if stop() {
                return Err(LlmError::Stopped);
            }
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            logits = Some(self.decoder.forward(&input, &mut cache)?);
        }
        let mut logits = logits.ok_or_else(|| LlmError::InvalidRequest("empty prompt".into()))?;
        let mut sampler = Sampler::new(&params.sampling);
        let mut generated: Vec<u32> = Vec::new();
        let mut prompt_duration = None;
        let stop_reason = loop {
            let next = sampler.next(&logits, &generated)?;
            if prompt_duration.is_none() {
                prompt_duration = Some(started.elapsed());
            }
            generated.push(next);
            if self.tokenizer.is_stop(next) {
                break StopReason::EndOfTurn;
            }
            if generated.len() >= params.max_new_tokens {
                break StopReason::MaxTokens;
            }
            if cache.len() + 1 >= self.context_tokens {
                break StopReason::ContextFull;
            }
            if stop() {
                return Err(LlmError::Stopped);
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = self.decoder.forward(&input, &mut cache)?;
        };
        let prompt_duration = prompt_duration.unwrap_or_default();
        let generation_duration = started.elapsed().saturating_sub(prompt_duration);
        let text = self.tokenizer.decode(&generated)?.trim().to_owned();
        Ok(Generation {
            text,
            prompt_tokens: prompt.len(),
            generated_tokens: generated.len(),
            prompt_duration,
            generation_duration,
            stop_reason,
        })
    }
}
