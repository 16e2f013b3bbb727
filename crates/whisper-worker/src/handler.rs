//! The transcribe tasks: fetch the media, decode it, skip silence,
//! transcribe, and store the `transcription` row.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use async_trait::async_trait;
use ml_media::{DecodedAudio, FetchedMedia, MediaArgs, MediaFetcher, MediaSource};
use ml_runtime::app::Services;
use ml_runtime::storage::FailureLog;
use ml_runtime::{Handler, Metrics, Task, TaskError};
use ml_storage::{MlResult, Store};
use ml_transcription::{Transcriber, Transcript};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::progress::TranscriptionMetrics;
use crate::request::TranscribeRequest;

/// Task name the gateway publishes to `ml.transcribe`.
pub const TRANSCRIBE_API_TASK: &str = "whisper.tasks.transcribe_api";
/// Task name of the `_local` backend (`ml.transcribe_local`).
pub const TRANSCRIBE_LOCAL_TASK: &str = "whisper.tasks.transcribe_local";
/// `ml_results.task_type` this worker writes (CONTRACT section 5).
pub const TASK_TYPE: &str = "transcription";

/// Serves both transcribe task names.
pub struct TranscribeHandler {
    transcriber: Arc<Transcriber>,
    fetcher: MediaFetcher,
    media: MediaArgs,
    store: Store,
    failures: FailureLog,
    metrics: Arc<Metrics>,
    transcription_metrics: TranscriptionMetrics,
    silence_threshold_db: f32,
    max_prompt_bytes: usize,
}

impl TranscribeHandler {
    /// A handler transcribing with `transcriber` as `config` says and
    /// storing into the services' store.
    ///
    /// # Errors
    /// Bad media settings, or metrics that cannot be registered.
    pub fn new(
        config: &Config,
        transcriber: Transcriber,
        services: Services,
    ) -> anyhow::Result<Self> {
        let model = transcriber.model_name();
        let failures = FailureLog::new(
            services.store.clone(),
            TASK_TYPE,
            model,
            json!({"backend": "local"}),
        );
        Ok(Self {
            failures,
            transcriber: Arc::new(transcriber),
            fetcher: MediaFetcher::new(config.media.clone()).context("media settings")?,
            media: config.media.clone(),
            transcription_metrics: TranscriptionMetrics::register(&services.metrics)?,
            store: services.store,
            metrics: services.metrics,
            silence_threshold_db: config.silence_threshold_db,
            max_prompt_bytes: config.max_prompt_bytes,
        })
    }

    /// Fetches the media to a local file (a temp copy for remote sources,
    /// removed when the returned value drops).
    async fn fetch(&self, request: &TranscribeRequest) -> Result<FetchedMedia, TaskError> {
        let source = MediaSource::parse(&request.content.media_url.0)
            .map_err(|e| TaskError::Permanent(format!("media refused: {e}")))?;
        self.fetcher.fetch(&source).await.map_err(|e| {
            if e.is_transient() {
                TaskError::Transient(format!("media fetch: {e}"))
            } else {
                TaskError::Permanent(format!("media refused: {e}"))
            }
        })
    }

    /// Decodes to 16 kHz mono on a blocking thread.
    async fn decode(
        &self,
        media: &FetchedMedia,
        normalize: bool,
    ) -> Result<DecodedAudio, TaskError> {
        let path = media.path().to_owned();
        let options = self.media.decode_options(normalize);
        ml_runtime::telemetry::spawn_blocking_in_span(move || {
            ml_media::decode_audio(&path, &options)
        })
        .await
        .map_err(|e| TaskError::Permanent(format!("decoding crashed: {e}")))?
        .map_err(|e| {
            if e.is_transient() {
                TaskError::Transient(format!("decoding: {e}"))
            } else {
                TaskError::Permanent(format!("cannot decode the media: {e}"))
            }
        })
    }

    /// Runs whisper on a blocking thread, reporting progress.
    async fn transcribe(
        &self,
        request: &TranscribeRequest,
        audio: DecodedAudio,
    ) -> Result<Transcript, TaskError> {
        let seconds = audio.duration.as_secs_f64();
        let (progress, _progress_series) = self.transcription_metrics.track(seconds);
        let transcriber = self.transcriber.clone();
        let options = request.options.transcribe_options();
        let started = Instant::now();
        let transcript = ml_runtime::telemetry::spawn_blocking_in_span(move || {
            transcriber.transcribe(&audio.samples, &options, Some(progress))
        })
        .await
        .map_err(|e| TaskError::Permanent(format!("transcription crashed: {e}")))?
        .map_err(|e| TaskError::Permanent(format!("transcription failed: {e}")))?;
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.transcription_duration.observe(elapsed);
        self.metrics
            .model_took(self.transcriber.model_name(), elapsed);
        self.metrics.audio_duration.inc_by(seconds);
        if elapsed > 0.0 {
            self.transcription_metrics
                .realtime_factor
                .observe(seconds / elapsed);
        }
        Ok(transcript)
    }

    /// Stores the transcript; returns the Celery result.
    async fn store_transcript(
        &self,
        request: &TranscribeRequest,
        audio: &Decoded,
        transcript: Transcript,
        processing_ms: i32,
    ) -> Result<Value, TaskError> {
        let model = self.transcriber.model_name();
        let segments: Vec<SegmentRow> = transcript
            .segments
            .iter()
            .map(|s| SegmentRow {
                start: round_ms(s.start),
                end: round_ms(s.end),
                text: &s.text,
            })
            .collect();
        let row = TranscriptRow {
            text: &transcript.text,
            segments: &segments,
            language: Some(&transcript.language),
            duration_seconds: round_ms(audio.seconds),
            backend: "local",
            segment_count: segments.len(),
            billing_usd: 0,
            model,
            decoder: &audio.decoder,
            requested_backend: request.options.backend.as_deref(),
        };
        let share_id = request.share_id.0;
        let result = MlResult::completed(share_id, TASK_TYPE, model, processing_ms, &row)?;
        self.store.upsert_result(&result).await?;
        tracing::info!(
            share_id = %request.share_id.0,
            audio_seconds = audio.seconds,
            segments = segments.len(),
            language = %transcript.language,
            "transcript stored"
        );
        Ok(json!({
            "share_id": request.share_id.0,
            "status": "completed",
            "text": transcript.text,
            "language": transcript.language,
            "duration_seconds": round_ms(audio.seconds),
            "segment_count": segments.len(),
        }))
    }

    /// Records media without speech as skipped (never over an earlier
    /// success).
    async fn store_skip(
        &self,
        request: &TranscribeRequest,
        audio: &Decoded,
        reason: String,
        processing_ms: i32,
    ) -> Result<Value, TaskError> {
        let model = self.transcriber.model_name();
        let row = TranscriptRow {
            text: "",
            segments: &[],
            language: None,
            duration_seconds: round_ms(audio.seconds),
            backend: "local",
            segment_count: 0,
            billing_usd: 0,
            model,
            decoder: &audio.decoder,
            requested_backend: request.options.backend.as_deref(),
        };
        let share_id = request.share_id.0;
        let result = MlResult::skipped(share_id, TASK_TYPE, model, &reason, processing_ms, &row)?;
        self.store.record_skip(&result).await?;
        tracing::info!(share_id = %request.share_id.0, %reason, "media skipped");
        Ok(json!({"share_id": request.share_id.0, "status": "skipped", "reason": reason}))
    }
}

/// `result_data` of a `transcription` row (CONTRACT section 5).
#[derive(Serialize)]
struct TranscriptRow<'a> {
    text: &'a str,
    segments: &'a [SegmentRow<'a>],
    language: Option<&'a str>,
    duration_seconds: f64,
    backend: &'static str,
    segment_count: usize,
    billing_usd: u8,
    model: &'a str,
    decoder: &'a str,
    requested_backend: Option<&'a str>,
}

/// One timed segment, in seconds rounded to the millisecond.
#[derive(Serialize)]
struct SegmentRow<'a> {
    start: f64,
    end: f64,
    text: &'a str,
}

/// What the handler keeps of the decoded audio once whisper owns the samples.
struct Decoded {
    seconds: f64,
    rms_dbfs: f32,
    decoder: String,
}

#[async_trait]
impl Handler for TranscribeHandler {
    type Request = TranscribeRequest;

    async fn handle(&self, _task: &Task, request: &TranscribeRequest) -> Result<Value, TaskError> {
        let started = Instant::now();
        let prompt = request.options.prompt.as_deref().unwrap_or_default();
        if prompt.len() > self.max_prompt_bytes {
            return Err(TaskError::InvalidArguments(format!(
                "options.prompt is {} bytes, over the {}-byte cap (WHISPER_MAX_PROMPT_BYTES)",
                prompt.len(),
                self.max_prompt_bytes
            )));
        }
        // The task's soft time limit ends a download early; whisper.cpp
        // itself runs to the end (its abort callback breaks short inputs).
        let stop = ml_runtime::stop::token();
        let media = tokio::select! {
            media = self.fetch(request) => media?,
            () = stop.cancelled() => {
                return Err(TaskError::Permanent("the media download was stopped".into()));
            }
        };
        let audio = self.decode(&media, request.options.normalize()).await?;
        drop(media);
        let decoded = Decoded {
            seconds: audio.duration.as_secs_f64(),
            rms_dbfs: audio.input_rms_dbfs,
            decoder: audio.source.clone(),
        };
        tracing::info!(
            share_id = %request.share_id.0,
            audio_seconds = decoded.seconds,
            decoder = %decoded.decoder,
            rms_dbfs = decoded.rms_dbfs,
            "media decoded"
        );
        if decoded.rms_dbfs < self.silence_threshold_db {
            let reason = format!(
                "silent audio: RMS level {:.1} dBFS is below the {:.1} dBFS threshold",
                decoded.rms_dbfs, self.silence_threshold_db
            );
            return self
                .store_skip(request, &decoded, reason, elapsed_ms(started))
                .await;
        }
        let transcript = self.transcribe(request, audio).await?;
        if transcript.segments.is_empty() {
            let reason = format!("no speech recognised in {:.1} s of audio", decoded.seconds);
            return self
                .store_skip(request, &decoded, reason, elapsed_ms(started))
                .await;
        }
        self.store_transcript(request, &decoded, transcript, elapsed_ms(started))
            .await
    }

    async fn on_failure(
        &self,
        task: &Task,
        request: Option<&TranscribeRequest>,
        error: &TaskError,
    ) {
        self.failures.record(task, request, error).await;
    }
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
}

/// Seconds rounded to the millisecond, as the result rows carry them.
fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
