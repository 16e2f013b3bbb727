//! The summarising pipeline on the shared model: preflight, fit the input
//! into the context, generate on a blocking thread, read the answer back.

use std::sync::Arc;

use ml_llm::{Generation, GenerationParams, Llm, SamplingParams, StopReason, truncate_to_tokens};
use ml_runtime::TaskError;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::content::Style;
use crate::preflight::{self, InputLimits};
use crate::prompt;
use crate::request::Content;

/// Fewest summary tokens allowed, however short the input.
const MIN_ANSWER_TOKENS: usize = 24;
/// Tokens kept free between prompt and answer budget for safety.
const CONTEXT_MARGIN: usize = 8;

/// A finished summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The summary text.
    pub text: String,
    /// Its key points.
    pub key_points: Vec<String>,
    /// Words of the input (before truncation).
    pub word_count: usize,
    /// Whether the input was cut to fit the context.
    pub truncated: bool,
    /// The generation's counts and timings.
    pub generation: Generation,
}

/// Summarises with one model shared by every task; at most
/// `parallel` generations run at once, each with its own KV cache.
#[derive(Clone)]
pub struct Summarizer {
    llm: Arc<Llm>,
    permits: Arc<Semaphore>,
    sampling: SamplingParams,
    limits: InputLimits,
}

impl Summarizer {
    /// A summarizer over `llm`.
    pub fn new(
        llm: Arc<Llm>,
        parallel: usize,
        sampling: SamplingParams,
        limits: InputLimits,
    ) -> Self {
        Self {
            llm,
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            sampling,
            limits,
        }
    }

    /// The model.
    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// Summarises `content` in `style`, in `max_tokens` tokens at most.
    ///
    /// # Errors
    /// [`TaskError::Permanent`] for refused input or a model failure (the
    /// same input would fail again).
    pub async fn summarize(
        &self,
        content: &Content,
        style: Style,
        max_tokens: usize,
    ) -> Result<Summary, TaskError> {
        let word_count = preflight::check(&content.text, content.content_type, self.limits)
            .map_err(|refusal| TaskError::Permanent(refusal.to_string()))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TaskError::Transient("the model is shutting down".into()))?;
        let llm = self.llm.clone();
        let sampling = self.sampling;
        let content = content.clone();
        // The task's soft time limit ends the generation early.
        let stop = ml_runtime::stop::token();
        ml_runtime::telemetry::spawn_blocking_in_span(move || {
            let wanted = Wanted {
                style,
                max_tokens,
                word_count,
            };
            run(&llm, &content, wanted, sampling, &stop)
        })
        .await
        .map_err(|e| TaskError::Permanent(format!("the model thread crashed: {e}")))?
    }
}

/// The summary asked for, beside the content.
struct Wanted {
    style: Style,
    max_tokens: usize,
    /// The content's words, as the preflight counted them.
    word_count: usize,
}

/// Runs one summary on the calling (blocking) thread.
fn run(
    llm: &Llm,
    content: &Content,
    wanted: Wanted,
    sampling: SamplingParams,
    stop: &CancellationToken,
) -> Result<Summary, TaskError> {
    let model_error =
        |e: ml_llm::LlmError| TaskError::Permanent(format!("summarising failed: {e}"));
    let tokenizer = llm.tokenizer();
    let text = tokenizer.sanitize(&content.text);
    let title = content.title.as_deref();
    let kind = content.content_type;
    let empty_prompt = prompt::messages("", title, kind, wanted.style);
    let overhead = llm
        .template()
        .render(&empty_prompt, tokenizer)
        .map_err(model_error)?
        .len();
    let context = llm.context_tokens();
    let answer_cap = wanted.max_tokens.min(context / 2);
    let input_budget = context
        .saturating_sub(overhead + answer_cap + CONTEXT_MARGIN)
        .max(1);
    let fitted = truncate_to_tokens(&text, input_budget, tokenizer).map_err(model_error)?;
    if fitted.text.trim().is_empty() {
        return Err(TaskError::Permanent(
            "content.text has nothing left to summarise after fitting it into the context".into(),
        ));
    }
    // A summary is shorter than what it summarises.
    let max_new_tokens = answer_cap
        .min((fitted.tokens * 3 / 4).max(MIN_ANSWER_TOKENS))
        .max(1);
    let messages = prompt::messages(&fitted.text, title, kind, wanted.style);
    let params = GenerationParams {
        max_new_tokens,
        sampling,
    };
    let generation = llm
        .generate_until(&messages, &params, &|| stop.is_cancelled())
        .map_err(model_error)?;
    let hit_limit = generation.stop_reason != StopReason::EndOfTurn;
    let text = prompt::clean_summary(&generation.text, hit_limit);
    if text.is_empty() {
        return Err(TaskError::Permanent(
            "the model produced an empty summary".into(),
        ));
    }
    Ok(Summary {
        key_points: prompt::key_points(&text),
        text,
        word_count: wanted.word_count,
        truncated: fitted.truncated,
        generation,
    })
}
