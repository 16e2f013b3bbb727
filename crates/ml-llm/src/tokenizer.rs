//! The tokenizer, built from a GGUF file's `tokenizer.ggml.*` metadata or
//! loaded from a `tokenizer.json`.
//!
//! The GGUF carries the BPE vocabulary and merges but not the
//! pre-tokenizer; `tokenizer.ggml.pre` names it. Each known name is mapped
//! to the pre-tokenizer of the model's own `tokenizer.json`:
//! - `smollm`: digits split one by one, then byte-level WITHOUT a prefix
//!   space (a generic GPT-2 set-up would add a space after every special
//!   token and merge digits, giving wrong ids);
//! - `qwen2`: NFC, Qwen's split regex (digits one by one), then byte-level;
//! - `gpt2` (or absent): GPT-2's byte-level regex without a prefix space.
//!
//! Any other name is refused: pass a `tokenizer.json` instead.

use std::collections::HashSet;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::tokenizer::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{LlmError, Result, tokenizer_error};
use crate::gguf::{GgufFile, numeric_u32};

/// Qwen2's pre-tokenizer split pattern (from its `tokenizer.json`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF `token_type` of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
const TOKEN_TYPE_CONTROL: u32 = 3;
/// GGUF `token_type` of user-defined tokens, matched in text like specials.
const TOKEN_TYPE_USER_DEFINED: u32 = 4;

/// A tokenizer plus the special tokens generation needs.
#[derive(Clone)]
pub struct LlmTokenizer {
    inner: Tokenizer,
    /// Texts of tokens that must never come from user content.
    special_texts: Vec<String>,
    /// Ids that end the assistant's turn.
    stop_ids: HashSet<u32>,
}

impl LlmTokenizer {
    /// Builds the tokenizer from the GGUF metadata.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] when the metadata lacks the vocabulary or
    /// merges, the model is not BPE, or the pre-tokenizer is unknown.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let model = gguf.get_str("tokenizer.ggml.model").unwrap_or_default();
        if model != "gpt2" {
            return Err(LlmError::Tokenizer(format!(
                "{}: tokenizer model {model:?} is not byte-level BPE (\"gpt2\"); pass a tokenizer.json",
                gguf.path()
            )));
        }
        let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
        let merges = string_array(gguf, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|merge| {
                merge
                    .split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| LlmError::Tokenizer(format!("malformed merge {merge:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), to_u32(id)))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| tokenizer_error("building BPE", e))?;
        let mut inner = Tokenizer::new(bpe);
        let pre = gguf.get_str("tokenizer.ggml.pre").unwrap_or("gpt2");
        match pre {
            "smollm" => {
                inner.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    Digits::new(true).into(),
                    ByteLevel::new(false, true, true).into(),
                ]))));
            }
            "qwen2" => {
                inner
                    .with_normalizer(Some(NFC))
                    .map_err(|e| tokenizer_error("normalizer", e))?;
                let split = Split::new(
                    SplitPattern::Regex(QWEN2_SPLIT.to_owned()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| tokenizer_error("qwen2 split pattern", e))?;
                inner.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, false, false).into(),
                ]))));
            }
            "gpt2" | "default" => {
                inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            }
            other => {
                return Err(LlmError::Tokenizer(format!(
                    "{}: unknown pre-tokenizer tokenizer.ggml.pre = {other:?} (known: smollm, qwen2, gpt2); pass a tokenizer.json",
                    gguf.path()
                )));
            }
        }
        inner.with_decoder(Some(ByteLevelDecoder::default()));

        let token_types = match gguf.get("tokenizer.ggml.token_type") {
            Some(Value::Array(types)) => types.iter().filter_map(numeric_u32).collect(),
            _ => Vec::new(),
        };
        let added: Vec<AddedToken> = token_types
            .iter()
            .zip(&tokens)
            .filter_map(|(kind, token)| match *kind {
                TOKEN_TYPE_CONTROL => Some(AddedToken::from(token.clone(), true)),
                TOKEN_TYPE_USER_DEFINED => {
                    Some(AddedToken::from(token.clone(), false).normalized(false))
                }
                _ => None,
            })
            .collect();
        let special_texts = added.iter().map(|t| t.content.clone()).collect();
        inner
            .add_special_tokens(added)
            .map_err(|e| tokenizer_error("adding special tokens", e))?;

        let mut stop_ids = HashSet::new();
        if let Some(eos) = gguf.get_u32("tokenizer.ggml.eos_token_id") {
            stop_ids.insert(eos);
        }
        if let Some(eot) = gguf.get_u32("tokenizer.ggml.eot_token_id") {
            stop_ids.insert(eot);
        }
        let mut tokenizer = Self {
            inner,
            special_texts,
            stop_ids,
        };
        tokenizer.add_chat_stop_ids();
        Ok(tokenizer)
    }

    /// Loads a `tokenizer.json`; `eos` (the GGUF's eos id, when known) is
    /// added to the stop tokens.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] when the file cannot be read or parsed.
    pub fn from_file(path: &Path, eos: Option<u32>) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| tokenizer_error(&format!("loading {}", path.display()), e))?;
        let special_texts = inner
            .get_added_tokens_decoder()
            .values()
            .filter(|t| t.special)
            .map(|t| t.content.clone())
            .collect();
        let mut tokenizer = Self {
            inner,
            special_texts,
            stop_ids: eos.into_iter().collect(),
        };
        tokenizer.add_chat_stop_ids();
        Ok(tokenizer)
    }

    fn add_chat_stop_ids(&mut self) {
        for text in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
            if let Some(id) = self.inner.token_to_id(text) {
                self.stop_ids.insert(id);
            }
        }
    }

    /// Token ids of `text`. Special-token texts inside `text` are matched as
    /// specials: pass user content through [`Self::sanitize`] first.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] if encoding fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| tokenizer_error("encoding", e))
    }

    /// Token ids of `text` with each token's end offset in bytes.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] if encoding fails.
    pub fn encode_with_ends(&self, text: &str) -> Result<Vec<(u32, usize)>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| tokenizer_error("encoding", e))?;
        Ok(encoding
            .get_ids()
            .iter()
            .zip(encoding.get_offsets())
            .map(|(id, (_, end))| (*id, *end))
            .collect())
    }

    /// The text of `ids`, special tokens left out.
    ///
    /// # Errors
    /// [`LlmError::Tokenizer`] if decoding fails.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| tokenizer_error("decoding", e))
    }

    /// The id of a token given by its text.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether `id` ends the assistant's turn.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    /// `text` with every special token's text removed, so content cannot
    /// open or close chat turns. Removing one can join its neighbours into
    /// another (`<|im_st<|im_end|>art|>`), so none is left in the result
    /// either; linear in the length of `text`.
    pub fn sanitize(&self, text: &str) -> String {
        let mut clean = String::with_capacity(text.len());
        for c in text.chars() {
            clean.push(c);
            // `clean` held no special text before this character: any there
            // is now ends here, and what is left after removing it is a
            // prefix of what was there, so still free of them.
            while let Some(special) = self
                .special_texts
                .iter()
                .find(|special| !special.is_empty() && clean.ends_with(special.as_str()))
            {
                clean.truncate(clean.len() - special.len());
            }
        }
        clean
    }

    /// The vocabulary size (including added tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

fn string_array(gguf: &GgufFile, key: &str) -> Result<Vec<String>> {
    let Some(Value::Array(values)) = gguf.get(key) else {
        return Err(LlmError::Tokenizer(format!(
            "{}: metadata {key} is missing; pass a tokenizer.json",
            gguf.path()
        )));
    };
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => Ok(text.clone()),
            other => Err(LlmError::Tokenizer(format!(
                "{key} holds a non-string {other:?}"
            ))),
        })
        .collect()
}

fn to_u32(id: usize) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX)
}
