//! `whisper-worker`: serves `ml.transcribe` and `ml.transcribe_local`,
//! transcribing audio and video with whisper.cpp into `ml_results`.

mod app;
mod config;
mod handler;
mod progress;
mod request;

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<app::WhisperWorker>()
}
