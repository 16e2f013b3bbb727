//! whisper-worker on the worker skeleton: the whisper model and the
//! transcribe handler on every queue it serves.

use std::sync::Arc;

use anyhow::Context as _;
use ml_media::MediaFetcher;
use ml_runtime::RuntimeArgs;
use ml_runtime::app::{Services, Serving, WorkerApp};
use ml_transcription::Transcriber;

use crate::config::Config;
use crate::handler::{TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK, TranscribeHandler};

/// Transcription with whisper.cpp.
pub struct WhisperWorker;

impl WorkerApp for WhisperWorker {
    const NAME: &'static str = "whisper-worker";
    const WORKER_TYPE: &'static str = "transcribe";
    type Config = Config;
    type Model = Transcriber;

    fn runtime(config: &Config) -> &RuntimeArgs {
        &config.runtime
    }

    /// The media settings: roots, temp folder, address policy, S3.
    fn check(config: &Config) -> anyhow::Result<()> {
        MediaFetcher::new(config.media.clone()).context("media settings")?;
        Ok(())
    }

    fn load(config: &Config) -> anyhow::Result<Transcriber> {
        let path = config.model_path();
        Transcriber::load(&path, config.transcriber())
            .with_context(|| format!("loading the whisper model from {}", path.display()))
    }

    fn compute_threads(config: &Config) -> (&'static str, usize) {
        let threads = config.transcriber().threads * config.runtime.concurrency.max(1);
        ("whisper.cpp", threads)
    }

    fn warm_up(transcriber: &Transcriber) -> anyhow::Result<()> {
        Ok(transcriber.warm_up()?)
    }

    fn build(config: &Config, model: Transcriber, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(model.model_name());
        let handler = Arc::new(TranscribeHandler::new(config, model, services)?);
        let tasks = [TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK];
        Ok(config.queues.iter().fold(serving, |serving, queue| {
            serving.route(queue, &tasks, &handler)
        }))
    }
}
