//! How big an embed task may be (`EMBED_MAX_*`): the text, the metadata
//! stored with every chunk, the items of a batch.

use ml_runtime::TaskError;
use ml_runtime::arguments::invalid;

use crate::request::{BatchRequest, EmbedRequest};

/// How big an embed task may be; larger ones are refused for good.
#[derive(Debug, Clone, Copy)]
pub struct TaskLimits {
    /// `EMBED_MAX_TEXT_BYTES`.
    pub max_text_bytes: usize,
    /// `EMBED_MAX_METADATA_BYTES`.
    pub max_metadata_bytes: usize,
    /// `EMBED_MAX_BATCH_TASKS`.
    pub max_batch_tasks: usize,
}

impl TaskLimits {
    /// Refuses a request whose text or metadata is over its cap.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the field and the setting.
    pub fn check(&self, request: &EmbedRequest) -> Result<(), TaskError> {
        let text = request.text.len();
        if text > self.max_text_bytes {
            return Err(invalid(format!(
                "content.text is {text} bytes, over the {}-byte cap (EMBED_MAX_TEXT_BYTES)",
                self.max_text_bytes
            )));
        }
        let metadata = serde_json::to_string(&request.metadata).map_or(0, |json| json.len());
        if metadata > self.max_metadata_bytes {
            return Err(invalid(format!(
                "content.metadata is {metadata} bytes of JSON, over the {}-byte cap (EMBED_MAX_METADATA_BYTES)",
                self.max_metadata_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a batch of more items than its cap.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the setting.
    pub fn check_batch(&self, batch: &BatchRequest) -> Result<(), TaskError> {
        let items = batch.tasks.len();
        if items > self.max_batch_tasks {
            return Err(invalid(format!(
                "tasks has {items} items, over the cap of {} (EMBED_MAX_BATCH_TASKS)",
                self.max_batch_tasks
            )));
        }
        Ok(())
    }
}
