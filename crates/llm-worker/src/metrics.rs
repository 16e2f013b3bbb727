//! The llm-worker's metrics beyond the contract's names: prompt and
//! generation speed per summary.

use ml_llm::Generation;
use ml_runtime::Metrics;
use prometheus::{Histogram, HistogramOpts};

/// Buckets in tokens per second, from a slow CPU to a GPU.
const RATE_BUCKETS: [f64; 12] = [
    5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0, 200.0, 400.0, 800.0, 1600.0, 3200.0,
];

/// Token rates of each summary.
#[derive(Clone)]
pub struct SpeedMetrics {
    /// Prompt tokens read per second.
    prompt: Histogram,
    /// Tokens generated per second.
    generation: Histogram,
}

impl SpeedMetrics {
    /// Registers the metrics in the worker's registry.
    ///
    /// # Errors
    /// When a metric of the same name exists already.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let histogram = |name: &str, help: &str| {
            metrics.register(Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(RATE_BUCKETS.to_vec()),
            )?)
        };
        Ok(Self {
            prompt: histogram(
                "ml_llm_prompt_tokens_per_second",
                "Prompt tokens read per second, per summary.",
            )?,
            generation: histogram(
                "ml_llm_generation_tokens_per_second",
                "Tokens generated per second, per summary.",
            )?,
        })
    }

    /// Records one generation's rates (a generation of one token has no
    /// decoding rate and is left out of that histogram).
    pub fn observe(&self, generation: &Generation) {
        self.prompt.observe(generation.prompt_tokens_per_second());
        if generation.generated_tokens > 1 {
            self.generation
                .observe(generation.generated_tokens_per_second());
        }
    }
}
