//! The whisper-worker's own metrics and the progress reporting of a long
//! transcription (logged every 10 %, and the audio still to transcribe as a
//! gauge while it runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ml_runtime::Metrics;
use ml_transcription::Progress;
use prometheus::{Gauge, Histogram, HistogramOpts};

/// Metrics beyond the contract's names.
#[derive(Clone)]
pub struct TranscriptionMetrics {
    /// Seconds of audio per second of processing, per file.
    pub realtime_factor: Histogram,
    /// Seconds of audio not transcribed yet, summed over the transcriptions
    /// running now: it falls as they progress and is 0 when idle. One series
    /// whatever the number of tasks (no per-task label).
    remaining_audio: Gauge,
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
            remaining_audio: metrics.register(Gauge::new(
                "ml_transcription_remaining_audio_seconds",
                "Seconds of audio not transcribed yet, over the transcriptions running now.",
            )?)?,
        })
    }

    /// A progress callback for a transcription of `audio_seconds` of audio,
    /// and a guard that takes what is left of it off the gauge when dropped
    /// (finished, failed or abandoned).
    pub fn track(&self, audio_seconds: f64) -> (Progress, ProgressGuard) {
        let audio_seconds = audio_seconds.max(0.0);
        self.remaining_audio.add(audio_seconds);
        let remaining = Arc::new(AtomicU64::new(audio_seconds.to_bits()));
        let guard = ProgressGuard {
            gauge: self.remaining_audio.clone(),
            remaining: remaining.clone(),
        };
        let gauge = self.remaining_audio.clone();
        let mut last_logged = 0;
        let callback: Progress = Box::new(move |percent: i32| {
            let left = audio_seconds * f64::from(100 - percent.clamp(0, 100)) / 100.0;
            // Only ever down: after the guard has taken the rest off (0
            // left), a late callback changes nothing.
            let before = remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
                (left < f64::from_bits(bits)).then_some(left.to_bits())
            });
            if let Ok(bits) = before {
                gauge.sub(f64::from_bits(bits) - left);
            }
            if percent >= last_logged + 10 {
                last_logged = percent - percent % 10;
                tracing::info!(percent, audio_seconds, "transcribing");
            }
        });
        (callback, guard)
    }
}

/// Takes a transcription's remaining audio off the gauge when dropped.
pub struct ProgressGuard {
    gauge: Gauge,
    remaining: Arc<AtomicU64>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        let left = f64::from_bits(self.remaining.swap(0.0_f64.to_bits(), Ordering::SeqCst));
        self.gauge.sub(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remaining(metrics: &TranscriptionMetrics) -> f64 {
        metrics.remaining_audio.get()
    }

    #[test]
    fn the_gauge_follows_progress_and_drops_to_zero_at_the_end() -> Result<(), prometheus::Error> {
        let metrics = TranscriptionMetrics::register(&Metrics::new("transcribe")?)?;
        let (mut first, first_guard) = metrics.track(100.0);
        let (mut second, second_guard) = metrics.track(50.0);
        assert!((remaining(&metrics) - 150.0).abs() < 1e-9);
        first(40);
        second(50);
        assert!((remaining(&metrics) - (60.0 + 25.0)).abs() < 1e-9);
        first(30); // never up again
        assert!((remaining(&metrics) - 85.0).abs() < 1e-9);
        drop(first_guard);
        assert!((remaining(&metrics) - 25.0).abs() < 1e-9);
        first(90); // a late callback after the guard: no change
        assert!((remaining(&metrics) - 25.0).abs() < 1e-9);
        second(100);
        drop(second_guard);
        assert!(remaining(&metrics).abs() < 1e-9);
        Ok(())
    }
}
