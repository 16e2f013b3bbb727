//! Loading: architectures other than llama/qwen2 and missing files are
//! refused with clear errors.

mod common;

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use ml_llm::{Llm, LlmConfig, LlmError};

fn write_gguf(path: &std::path::Path, metadata: &HashMap<&str, Value>) {
    let tensor = Tensor::zeros((2, 32), candle_core::DType::F32, &Device::Cpu)
        .and_then(|t| QTensor::quantize(&t, GgmlDType::F32))
        .unwrap_or_else(|e| panic!("{e}"));
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    gguf_file::write(&mut file, &metadata, &[("token_embd.weight", &tensor)])
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn other_architectures_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ml-llm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("phi.gguf");
    write_gguf(
        &path,
        &HashMap::from([("general.architecture", Value::String("phi3".into()))]),
    );
    let error = Llm::load(&LlmConfig::new(&path))
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        matches!(&error, LlmError::UnsupportedArchitecture { architecture, .. } if architecture == "phi3"),
        "{error}"
    );
    assert!(
        error.to_string().contains("supported: llama, qwen2"),
        "{error}"
    );

    let missing = dir.join("none.gguf");
    let error = Llm::load(&LlmConfig::new(&missing))
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(matches!(error, LlmError::Io { .. }), "{error}");
    assert!(error.to_string().contains("none.gguf"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tokenizer_json_can_replace_the_gguf_vocabulary() {
    let dir = std::env::temp_dir().join(format!("ml-llm-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.join("tokenizer.json");
    std::fs::write(&bad, "{not json").unwrap_or_else(|e| panic!("{e}"));
    let mut config = LlmConfig::new(common::smollm2_path());
    config.tokenizer_path = Some(bad);
    let error = Llm::load(&config).err().unwrap_or_else(|| panic!("loaded"));
    assert!(matches!(error, LlmError::Tokenizer(_)), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
