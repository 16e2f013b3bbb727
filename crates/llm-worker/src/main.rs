//! `llm-worker`: serves `ml.summarize`, `ml.summarize_local` and
//! `ml.summarize_video_combined`, summarising with a local quantized GGUF
//! model on candle. See the README for configuration.

mod config;
mod content;
mod handler;
mod metrics;
mod preflight;
mod prompt;
mod request;
mod summarizer;

use std::sync::Arc;

use anyhow::Context as _;
use ml_llm::Llm;
use ml_runtime::app::{Services, Serving, WorkerApp};

use crate::config::Config;
use crate::handler::{SUMMARIZE_LOCAL_TASK, SUMMARIZE_TASK, SummarizeHandler, VIDEO_COMBINED_TASK};

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<Config>()
}

impl WorkerApp for Config {
    const WORKER_TYPE: &'static str = "summarize";
    type Model = Llm;

    fn load(&self) -> anyhow::Result<Llm> {
        let llm_config = self.llm_config()?;
        let path = llm_config.model_path.display().to_string();
        Llm::load(&llm_config).with_context(|| format!("loading the language model from {path}"))
    }

    fn warm_up(llm: &Llm) -> anyhow::Result<()> {
        Ok(llm.warm_up()?)
    }

    fn build(&self, llm: Llm, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(llm.name());
        let handler = Arc::new(SummarizeHandler::new(self, llm, services)?);
        let tasks = [
            (&self.queue, SUMMARIZE_TASK),
            (&self.local_queue, SUMMARIZE_LOCAL_TASK),
            (&self.video_combined_queue, VIDEO_COMBINED_TASK),
        ];
        Ok(tasks.into_iter().fold(serving, |serving, (queue, task)| {
            serving.route(queue, &[task], &handler)
        }))
    }
}
