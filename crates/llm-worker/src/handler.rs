//! The summarize tasks: parse, summarise, and store the `summarize_llm`
//! row; failures recorded without overwriting an earlier success.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ml_llm::Llm;
use ml_runtime::app::Services;
use ml_runtime::metrics::Direction;
use ml_runtime::storage::FailureLog;
use ml_runtime::{Arguments, Handler, Metrics, Task, TaskError};
use ml_storage::{MlResult, Store};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::metrics::SpeedMetrics;
use crate::request::{Content, Options, SummaryRequest};
use crate::summarizer::{Summarizer, Summary};

/// Task name of `ml.summarize`.
pub const SUMMARIZE_TASK: &str = "llm_service.tasks.summarize_content";
/// Task name of `ml.summarize_local`.
pub const SUMMARIZE_LOCAL_TASK: &str = "llm_service.tasks.summarize_content_local";
/// Task name of `ml.summarize_video_combined`.
pub const VIDEO_COMBINED_TASK: &str = "summarize_video_combined";
/// `ml_results.task_type` this worker writes (CONTRACT section 5).
pub const TASK_TYPE: &str = "summarize_llm";
/// `result_data.provider`.
const PROVIDER: &str = "local";

/// Serves the three summarize task names.
pub struct SummarizeHandler {
    summarizer: Summarizer,
    store: Store,
    failures: FailureLog,
    metrics: Arc<Metrics>,
    speed: SpeedMetrics,
    default_max_tokens: usize,
}

impl SummarizeHandler {
    /// A handler summarising with `llm` as `config` says and storing into
    /// the services' store.
    ///
    /// # Errors
    /// When the speed metrics cannot be registered.
    pub fn new(config: &Config, llm: Llm, services: Services) -> prometheus::Result<Self> {
        let fields = json!({"model": llm.name(), "provider": PROVIDER});
        let failures = FailureLog::new(services.store.clone(), TASK_TYPE, llm.name(), fields);
        Ok(Self {
            failures,
            summarizer: Summarizer::new(
                Arc::new(llm),
                config.parallel_generations,
                config.sampling(),
                config.input_limits(),
            ),
            speed: SpeedMetrics::register(&services.metrics)?,
            store: services.store,
            metrics: services.metrics,
            default_max_tokens: config.default_max_tokens,
        })
    }

    fn model(&self) -> &str {
        self.summarizer.llm().name()
    }

    async fn store_summary(
        &self,
        request: &Arguments<Content, Options>,
        summary: &Summary,
        max_tokens: usize,
        processing_ms: i32,
    ) -> Result<Value, TaskError> {
        let generation = &summary.generation;
        let model = self.model().to_owned();
        let row = SummaryRow {
            summary: &summary.text,
            key_points: &summary.key_points,
            model: &model,
            provider: PROVIDER,
            input_tokens: generation.prompt_tokens,
            output_tokens: generation.generated_tokens,
            total_tokens: generation.prompt_tokens + generation.generated_tokens,
            metadata: SummaryMetadata {
                content_type: request.content.content_type.as_str(),
                style: request.options.style().as_str(),
                word_count: summary.word_count,
                summary_word_count: crate::preflight::word_count(&summary.text),
                truncated: summary.truncated,
                max_tokens,
                requested_model: request.options.model.as_deref(),
                backend: request.options.backend.as_deref(),
                prompt_tokens_per_second: round(generation.prompt_tokens_per_second()),
                generation_tokens_per_second: round(generation.generated_tokens_per_second()),
            },
        };
        let share_id = request.share_id.0;
        let result = MlResult::completed(share_id, TASK_TYPE, &model, processing_ms, &row)?;
        self.store.upsert_result(&result).await?;
        Ok(json!({
            "share_id": request.share_id.0,
            "status": "completed",
            "summary": summary.text,
            "key_points": summary.key_points,
            "model": model,
            "provider": PROVIDER,
            "input_tokens": generation.prompt_tokens,
            "output_tokens": generation.generated_tokens,
        }))
    }

    fn record_metrics(&self, summary: &Summary) {
        let generation = &summary.generation;
        let seconds = (generation.prompt_duration + generation.generation_duration).as_secs_f64();
        self.metrics.summarization_duration.observe(seconds);
        self.metrics.model_took(self.model(), seconds);
        self.metrics
            .tokens(Direction::Input, generation.prompt_tokens as u64);
        self.metrics
            .tokens(Direction::Output, generation.generated_tokens as u64);
        self.speed.observe(generation);
    }
}

#[async_trait]
impl Handler for SummarizeHandler {
    type Request = SummaryRequest;

    async fn handle(&self, _task: &Task, request: &SummaryRequest) -> Result<Value, TaskError> {
        let started = Instant::now();
        let SummaryRequest(request) = request;
        let (content, options) = (&request.content, &request.options);
        let max_tokens = options.max_tokens(self.default_max_tokens);
        let summary = self
            .summarizer
            .summarize(content, options.style(), max_tokens)
            .await?;
        self.record_metrics(&summary);
        let generation = &summary.generation;
        tracing::info!(
            share_id = %request.share_id.0,
            content_type = content.content_type.as_str(),
            style = options.style().as_str(),
            prompt_tokens = generation.prompt_tokens,
            generated_tokens = generation.generated_tokens,
            prompt_tokens_per_second = round(generation.prompt_tokens_per_second()),
            generation_tokens_per_second = round(generation.generated_tokens_per_second()),
            truncated = summary.truncated,
            stop = ?generation.stop_reason,
            "summary generated"
        );
        let processing_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.store_summary(request, &summary, max_tokens, processing_ms)
            .await
    }

    async fn on_failure(&self, task: &Task, request: Option<&SummaryRequest>, error: &TaskError) {
        self.failures.record(task, request, error).await;
    }
}

/// `result_data` of a `summarize_llm` row (CONTRACT section 5).
#[derive(Serialize)]
struct SummaryRow<'a> {
    summary: &'a str,
    key_points: &'a [String],
    model: &'a str,
    provider: &'static str,
    input_tokens: usize,
    output_tokens: usize,
    total_tokens: usize,
    metadata: SummaryMetadata<'a>,
}

/// `result_data.metadata`: what was asked and how the model ran.
#[derive(Serialize)]
struct SummaryMetadata<'a> {
    content_type: &'static str,
    style: &'static str,
    word_count: usize,
    summary_word_count: usize,
    truncated: bool,
    max_tokens: usize,
    requested_model: Option<&'a str>,
    backend: Option<&'a str>,
    prompt_tokens_per_second: f64,
    generation_tokens_per_second: f64,
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
