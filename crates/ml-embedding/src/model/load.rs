//! Reading a sentence-transformers model directory: which files must be
//! there, what their settings mean, and how the weights are named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;
use serde::de::DeserializeOwned;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::EmbedderConfig;
use super::bert::Bert;
use crate::EmbeddingError;

/// The model's window when neither the caller nor
/// `sentence_bert_config.json` sets one (what all-MiniLM-L6-v2 was trained
/// with).
const DEFAULT_MAX_TOKENS: usize = 256;

/// The smallest usable window: `[CLS]`, one token, `[SEP]`.
const MIN_MAX_TOKENS: usize = 3;

/// `dir/name`, or [`EmbeddingError::ModelMissing`] if it is not a file.
pub(super) fn required_file(dir: &Path, name: &str) -> Result<PathBuf, EmbeddingError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbeddingError::ModelMissing { path })
    }
}

/// Reads and parses a JSON file of the model.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, EmbeddingError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmbeddingError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| EmbeddingError::BadConfig {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Reads the BERT settings in `config.json`, recognising the pooling
/// settings that a flat unzip (`unzip -j`) writes over it.
pub(super) fn read_bert_config(path: &Path) -> Result<BertConfig, EmbeddingError> {
    let value: serde_json::Value = read_json(path)?;
    if value.get("pooling_mode_mean_tokens").is_some() {
        return Err(EmbeddingError::BadConfig {
            path: path.to_path_buf(),
            reason: "this is the pooling configuration (1_Pooling/config.json), not the model's: \
                     the archive was unpacked flat; run `scripts/setup` again"
                .into(),
        });
    }
    serde_json::from_value(value).map_err(|err| EmbeddingError::BadConfig {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Refuses a model whose `1_Pooling/config.json` asks for anything but mean
/// pooling. Without that file, mean pooling is assumed.
pub(super) fn check_pooling(dir: &Path) -> Result<(), EmbeddingError> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.is_file() {
        return Ok(());
    }
    let pooling: serde_json::Map<String, serde_json::Value> = read_json(&path)?;
    let enabled: Vec<&str> = pooling
        .iter()
        .filter(|(key, value)| key.starts_with("pooling_mode_") && value.as_bool() == Some(true))
        .map(|(key, _)| key.as_str())
        .collect();
    if enabled == ["pooling_mode_mean_tokens"] {
        Ok(())
    } else {
        Err(EmbeddingError::BadConfig {
            path,
            reason: format!(
                "only mean pooling is supported (pooling_mode_mean_tokens alone), \
                 but the model enables {enabled:?}"
            ),
        })
    }
}

/// The model's window: the caller's choice, else `max_seq_length` from
/// `sentence_bert_config.json`, else 256; capped at the position embeddings.
pub(super) fn resolve_max_tokens(
    dir: &Path,
    config: EmbedderConfig,
    bert: &BertConfig,
) -> Result<usize, EmbeddingError> {
    let from_model = {
        let path = dir.join("sentence_bert_config.json");
        if path.is_file() {
            let settings: serde_json::Value = read_json(&path)?;
            settings
                .get("max_seq_length")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        } else {
            None
        }
    };
    let max_tokens = config
        .max_tokens
        .or(from_model)
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .min(bert.max_position_embeddings);
    if max_tokens < MIN_MAX_TOKENS {
        return Err(EmbeddingError::BadConfig {
            path: dir.to_path_buf(),
            reason: format!("max_tokens {max_tokens} is below the minimum of {MIN_MAX_TOKENS}"),
        });
    }
    Ok(max_tokens)
}

/// The truncating tokenizer (cuts texts at `max_tokens`) and the plain
/// one (does not), both from `tokenizer.json` and neither padding: the
/// encoder packs a batch's texts end to end instead.
pub(super) fn load_tokenizers(
    path: &Path,
    max_tokens: usize,
) -> Result<(Tokenizer, Tokenizer), EmbeddingError> {
    let tokenizer_error = |source| EmbeddingError::Tokenizer {
        context: "loading tokenizer.json",
        source,
    };
    let mut plain = Tokenizer::from_file(path).map_err(tokenizer_error)?;
    plain.with_padding(None);
    plain.with_truncation(None).map_err(tokenizer_error)?;

    let mut truncating = plain.clone();
    truncating
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(tokenizer_error)?;
    Ok((truncating, plain))
}

/// Loads the weights into a BERT model, accepting tensor names with or
/// without a `bert.` prefix.
pub(super) fn load_weights(
    path: &Path,
    config: &BertConfig,
    device: &Device,
) -> Result<Bert, EmbeddingError> {
    let weights_error = |source| EmbeddingError::Weights {
        path: path.to_path_buf(),
        source,
    };
    let tensors = candle_core::safetensors::load(path, device).map_err(weights_error)?;
    let tensors = strip_prefix(tensors).ok_or_else(|| {
        weights_error(candle_core::Error::Msg(
            "no embeddings.word_embeddings.weight tensor: not a BERT model".into(),
        ))
    })?;
    let weights = VarBuilder::from_tensors(tensors, DType::F32, device);
    Bert::load(&weights, config).map_err(weights_error)
}

/// Renames the tensors so that names start at `embeddings.` and `encoder.`,
/// whatever prefix (such as `bert.`) the file uses; `None` if the word
/// embeddings are not found.
fn strip_prefix(tensors: HashMap<String, Tensor>) -> Option<HashMap<String, Tensor>> {
    const ANCHOR: &str = "embeddings.word_embeddings.weight";
    let prefix = tensors
        .keys()
        .filter_map(|name| name.strip_suffix(ANCHOR))
        .min_by_key(|prefix| prefix.len())?
        .to_owned();
    if prefix.is_empty() {
        return Some(tensors);
    }
    Some(
        tensors
            .into_iter()
            .filter_map(|(name, tensor)| {
                name.strip_prefix(&prefix)
                    .map(|short| (short.to_owned(), tensor))
            })
            .collect(),
    )
}

/// The name of the model directory, following `.` and `..` if need be.
pub(super) fn model_name(dir: &Path) -> String {
    dir.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .or_else(|| {
            dir.canonicalize()
                .ok()?
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_pooling_config_is_recognised() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("ml-embedding-flat-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}"#,
        )?;
        let err = read_bert_config(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unpacked flat"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn pooling_must_be_mean() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("ml-embedding-pooling-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("1_Pooling"))?;
        let config = dir.join("1_Pooling").join("config.json");

        std::fs::write(
            &config,
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
                "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
        )?;
        assert!(check_pooling(&dir).is_ok());

        std::fs::write(
            &config,
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )?;
        let err = check_pooling(&dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("only mean pooling"), "{err}");
        assert!(err.contains("pooling_mode_cls_token"), "{err}");

        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn prefixes_are_stripped() -> candle_core::Result<()> {
        let tensor = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
        let named = |names: &[&str]| -> HashMap<String, Tensor> {
            names
                .iter()
                .map(|name| ((*name).to_owned(), tensor.clone()))
                .collect()
        };
        let mut plain: Vec<String> = strip_prefix(named(&[
            "embeddings.word_embeddings.weight",
            "encoder.layer.0.x",
        ]))
        .map(|t| t.into_keys().collect())
        .unwrap_or_default();
        plain.sort();
        assert_eq!(
            plain,
            ["embeddings.word_embeddings.weight", "encoder.layer.0.x"]
        );

        let mut prefixed: Vec<String> = strip_prefix(named(&[
            "bert.embeddings.word_embeddings.weight",
            "bert.encoder.layer.0.x",
            "cls.predictions.bias",
        ]))
        .map(|t| t.into_keys().collect())
        .unwrap_or_default();
        prefixed.sort();
        assert_eq!(
            prefixed,
            ["embeddings.word_embeddings.weight", "encoder.layer.0.x"]
        );

        assert!(strip_prefix(named(&["something.else"])).is_none());
        Ok(())
    }

    #[test]
    fn model_name_is_the_directory_name() {
        assert_eq!(
            model_name(Path::new("/models/all-MiniLM-L6-v2/")),
            "all-MiniLM-L6-v2"
        );
    }
}
