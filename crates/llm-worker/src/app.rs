//! llm-worker on the worker skeleton: the GGUF model and the summarize
//! handler on its three queues.

use std::sync::Arc;

use anyhow::Context as _;
use ml_llm::Llm;
use ml_runtime::RuntimeArgs;
use ml_runtime::app::{Services, Serving, WorkerApp};

use crate::config::Config;
use crate::handler::{SUMMARIZE_LOCAL_TASK, SUMMARIZE_TASK, SummarizeHandler, VIDEO_COMBINED_TASK};

/// Summaries with a local quantized GGUF model.
pub struct LlmWorker;

impl WorkerApp for LlmWorker {
    const NAME: &'static str = "llm-worker";
    const WORKER_TYPE: &'static str = "summarize";
    type Config = Config;
    type Model = Llm;

    fn runtime(config: &Config) -> &RuntimeArgs {
        &config.runtime
    }

    fn load(config: &Config) -> anyhow::Result<Llm> {
        let llm_config = config.llm_config()?;
        let path = llm_config.model_path.display().to_string();
        Llm::load(&llm_config).with_context(|| format!("loading the language model from {path}"))
    }

    fn warm_up(llm: &Llm) -> anyhow::Result<()> {
        Ok(llm.warm_up()?)
    }

    fn build(config: &Config, llm: Llm, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(llm.name());
        let handler = Arc::new(SummarizeHandler::new(config, llm, services)?);
        Ok(serving
            .route(&config.queue, &[SUMMARIZE_TASK], &handler)
            .route(&config.local_queue, &[SUMMARIZE_LOCAL_TASK], &handler)
            .route(
                &config.video_combined_queue,
                &[VIDEO_COMBINED_TASK],
                &handler,
            ))
    }
}
