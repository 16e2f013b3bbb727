//! The whisper-worker's own metrics and the progress reporting of a long
//! transcription (logs every 10 % and a gauge while it runs).

use std::sync::Arc;

use ml_runtime::Metrics;
use ml_transcription::Progress;
use prometheus::{Histogram, HistogramOpts, IntGaugeVec, Opts};

/// Metrics beyond the contract's names.
#[derive(Clone)]
pub struct TranscriptionMetrics {
    /// Seconds of audio per second of processing, per file.
    pub realtime_factor: Histogram,
    /// Percent done of each running transcription, labelled by task id
    /// (the series disappears when the task ends).
    pub progress: IntGaugeVec,
}

impl TranscriptionMetrics {
    /// Registers the metrics in the worker's registry.
    ///
    /// # Errors
    /// When a metric of the same name exists already.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        Ok(Self {
            realtime_factor: metrics.register(Histogram::with_opts(
                HistogramOpts::new(
                    "ml_transcription_realtime_factor",
                    "Seconds of audio transcribed per second of processing, per file.",
                )
                .buckets(vec![0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0]),
            )?)?,
            progress: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "ml_transcription_progress_percent",
                    "Percent done of each transcription running now.",
                ),
                &["task_id"],
            )?)?,
        })
    }

    /// A progress callback for task `task_id`, and a guard removing its
    /// gauge series when dropped.
    pub fn track(&self, task_id: &str, audio_seconds: f64) -> (Progress, ProgressGuard) {
        let gauge = self.progress.with_label_values(&[task_id]);
        gauge.set(0);
        let task = Arc::<str>::from(task_id);
        let mut last_logged = 0;
        let callback: Progress = Box::new(move |percent: i32| {
            gauge.set(i64::from(percent));
            if percent >= last_logged + 10 {
                last_logged = percent - percent % 10;
                tracing::info!(task_id = %task, percent, audio_seconds, "transcribing");
            }
        });
        let guard = ProgressGuard {
            progress: self.progress.clone(),
            task_id: task_id.to_owned(),
        };
        (callback, guard)
    }
}

/// Removes a finished task's progress series.
pub struct ProgressGuard {
    progress: IntGaugeVec,
    task_id: String,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        // Absent only if never created; nothing to do then.
        let _ = self.progress.remove_label_values(&[&self.task_id]);
    }
}
