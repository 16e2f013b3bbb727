//! `whisper-worker`: serves `ml.transcribe` and `ml.transcribe_local`,
//! transcribing audio and video with whisper.cpp into `ml_results`.

mod config;
mod handler;
mod progress;
mod request;

use std::sync::Arc;

use anyhow::Context as _;
use ml_media::MediaFetcher;
use ml_runtime::app::{Services, Serving, WorkerApp};
use ml_transcription::Transcriber;

use crate::config::Config;
use crate::handler::{TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK, TranscribeHandler};

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<Config>()
}

impl WorkerApp for Config {
    const WORKER_TYPE: &'static str = "transcribe";
    type Model = Transcriber;

    /// The media settings: roots, temp folder, address policy, S3.
    fn check(&self) -> anyhow::Result<()> {
        MediaFetcher::new(self.media.clone()).context("media settings")?;
        Ok(())
    }

    fn load(&self) -> anyhow::Result<Transcriber> {
        let path = self.model_path();
        Transcriber::load(&path, self.transcriber())
            .with_context(|| format!("loading the whisper model from {}", path.display()))
    }

    fn compute_threads(&self) -> (&'static str, usize) {
        let threads = self.transcriber().threads * self.runtime.concurrency.max(1);
        ("whisper.cpp", threads)
    }

    fn warm_up(transcriber: &Transcriber) -> anyhow::Result<()> {
        Ok(transcriber.warm_up()?)
    }

    fn build(&self, model: Transcriber, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(model.model_name());
        let handler = Arc::new(TranscribeHandler::new(self, model, services)?);
        let tasks = [TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK];
        Ok(self.queues.iter().fold(serving, |serving, queue| {
            serving.route(queue, &tasks, &handler)
        }))
    }
}
