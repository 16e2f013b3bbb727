//! Logging set-up: JSON lines (default) or human-readable text.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber.
///
/// `filter` uses `EnvFilter` syntax (`info`, `ml_runtime=debug,info`); `format`
/// is `json` or `text`. JSON lines carry the current span's fields (task id,
/// share id, queue, ...) on every event.
///
/// # Errors
/// When the filter does not parse or the format is unknown.
pub fn init(filter: &str, format: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("LOG_LEVEL {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        "text" => builder.try_init(),
        other => return Err(format!("LOG_FORMAT must be json or text, got {other:?}")),
    };
    installed.map_err(|e| format!("tracing subscriber: {e}"))
}
