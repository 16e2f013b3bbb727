//! Chat prompts: the ChatML form (`<|im_start|>role\ncontent<|im_end|>\n`),
//! detected in the GGUF's `tokenizer.chat_template` and rendered straight
//! to token ids.
//!
//! A full Jinja engine is not needed for the models served here: both
//! SmolLM2 and Qwen2.5 use ChatML. Any other template is refused with a
//! clear error rather than rendered wrongly.

use crate::error::{LlmError, Result};
use crate::tokenizer::LlmTokenizer;

/// Who speaks in a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The request.
    User,
    /// A (previous) answer.
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system turn.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// A chat template this crate can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` per turn, then
    /// `<|im_start|>assistant\n`.
    ChatMl {
        /// Id of `<|im_start|>`.
        im_start: u32,
        /// Id of `<|im_end|>`.
        im_end: u32,
    },
}

impl ChatTemplate {
    /// Recognises the template text of a GGUF (`tokenizer.chat_template`).
    /// Without a template, ChatML is assumed when the vocabulary has its
    /// tokens.
    ///
    /// # Errors
    /// [`LlmError::ChatTemplate`] for a template that is not ChatML or a
    /// vocabulary without the ChatML tokens.
    pub fn detect(template: Option<&str>, tokenizer: &LlmTokenizer) -> Result<Self> {
        if let Some(template) = template
            && !(template.contains("<|im_start|>") && template.contains("<|im_end|>"))
        {
            let start: String = template.chars().take(80).collect();
            return Err(LlmError::ChatTemplate(format!(
                "only ChatML templates are supported; this model's template starts with {start:?}"
            )));
        }
        match (
            tokenizer.token_id("<|im_start|>"),
            tokenizer.token_id("<|im_end|>"),
        ) {
            (Some(im_start), Some(im_end)) => Ok(Self::ChatMl { im_start, im_end }),
            _ => Err(LlmError::ChatTemplate(
                "ChatML needs <|im_start|> and <|im_end|> in the vocabulary".into(),
            )),
        }
    }

    /// The token ids of `messages` followed by the opening of the
    /// assistant's turn. Message contents are sanitised: special-token
    /// texts inside them are dropped.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] if encoding fails.
    pub fn render(&self, messages: &[Message], tokenizer: &LlmTokenizer) -> Result<Vec<u32>> {
        let Self::ChatMl { im_start, im_end } = *self;
        let mut ids = Vec::new();
        for message in messages {
            ids.push(im_start);
            let body = format!(
                "{}\n{}",
                message.role.as_str(),
                tokenizer.sanitize(&message.content)
            );
            ids.extend(tokenizer.encode(&body)?);
            ids.push(im_end);
            ids.extend(tokenizer.encode("\n")?);
        }
        ids.push(im_start);
        ids.extend(tokenizer.encode("assistant\n")?);
        Ok(ids)
    }
}
