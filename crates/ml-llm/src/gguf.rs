//! Reading a GGUF file: its metadata, its architecture, and its tensors,
//! re-quantising on the way the types candle only has scalar CPU kernels for.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};

use crate::error::{LlmError, Result};
use crate::matmul::TiledMatMul;

/// Tensor types candle 0.11 runs with scalar code on x86: re-quantised to
/// Q8_0 (which has AVX2 dot products) when the model runs on the CPU,
/// except where [`crate::matmul`]'s kernels run them as they are.
pub const SCALAR_ONLY_TYPES: [GgmlDType; 3] = [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// The types re-quantised to Q8_0 on this CPU (see [`SCALAR_ONLY_TYPES`]).
fn requantized_types() -> &'static [GgmlDType] {
    if TiledMatMul::available() {
        &[]
    } else {
        &SCALAR_ONLY_TYPES
    }
}

/// The model families this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `llama` (SmolLM2 and other Llama-shaped models).
    Llama,
    /// `qwen2` (Qwen2 and Qwen2.5).
    Qwen2,
}

impl Architecture {
    /// The `general.architecture` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
        }
    }
}

/// A GGUF file's header (metadata and tensor index), read without the
/// tensor data.
pub struct GgufFile {
    path: String,
    content: Content,
    architecture: Architecture,
}

impl GgufFile {
    /// Reads the header of the GGUF file at `path` and checks its architecture.
    ///
    /// # Errors
    /// [`LlmError::Io`] when the file cannot be read, [`LlmError::InvalidModel`]
    /// when it is not GGUF, [`LlmError::UnsupportedArchitecture`] for anything
    /// but `llama` and `qwen2`.
    pub fn open(path: &Path) -> Result<Self> {
        let display = path.display().to_string();
        let mut reader = open_reader(path)?;
        let content = Content::read(&mut reader).map_err(|e| LlmError::InvalidModel {
            path: display.clone(),
            reason: e.to_string(),
        })?;
        let architecture = match content.metadata.get("general.architecture") {
            Some(Value::String(name)) => match name.as_str() {
                "llama" => Architecture::Llama,
                "qwen2" => Architecture::Qwen2,
                other => {
                    return Err(LlmError::UnsupportedArchitecture {
                        path: display,
                        architecture: other.to_owned(),
                    });
                }
            },
            _ => {
                return Err(LlmError::InvalidModel {
                    path: display,
                    reason: "no general.architecture in the metadata".into(),
                });
            }
        };
        Ok(Self {
            path: display,
            content,
            architecture,
        })
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// All metadata.
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// The metadata value at `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// A numeric metadata value as `u32`.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        numeric_u32(self.get(key)?)
    }

    /// `<architecture>.<suffix>` as `u32` (e.g. `context_length`).
    pub fn arch_u32(&self, suffix: &str) -> Option<u32> {
        self.get_u32(&format!("{}.{suffix}", self.architecture.as_str()))
    }

    /// The model's name for results and logs: `general.name`, else the file
    /// stem.
    pub fn model_name(&self) -> String {
        self.get_str("general.name").map_or_else(
            || {
                Path::new(&self.path)
                    .file_stem()
                    .map_or_else(|| self.path.clone(), |s| s.to_string_lossy().into_owned())
            },
            str::to_owned,
        )
    }

    /// How many tensors of each type the file holds, for logs.
    pub fn tensor_types(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for info in self.content.tensor_infos.values() {
            *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort();
        counts
    }

    /// Whether any tensor is of a type re-quantised on this CPU (see
    /// [`SCALAR_ONLY_TYPES`]).
    pub fn has_requantized_tensors(&self) -> bool {
        self.content
            .tensor_infos
            .values()
            .any(|info| requantized_types().contains(&info.ggml_dtype))
    }

    /// Builds the model weights with `build`, which gets the header and a
    /// reader over the tensor data. With `requantize`, tensors of the
    /// types re-quantised on this CPU (see [`SCALAR_ONLY_TYPES`]) are first
    /// converted to Q8_0 in memory, so
    /// `build` reads the converted file.
    ///
    /// # Errors
    /// I/O, malformed tensors, or whatever `build` returns.
    pub fn load_weights<T>(
        self,
        device: &Device,
        requantize: bool,
        build: impl FnOnce(Content, &mut dyn ReadSeek, &Device) -> candle_core::Result<T>,
    ) -> Result<T> {
        let convert = |dtype: GgmlDType| {
            (requantize && requantized_types().contains(&dtype)).then_some(GgmlDType::Q8_0)
        };
        self.load_converted(device, convert, build)
    }

    /// Like [`GgufFile::load_weights`], converting every tensor whose type
    /// `convert` maps to another type (where the rows fit its blocks).
    pub(crate) fn load_converted<T>(
        self,
        device: &Device,
        convert: impl Fn(GgmlDType) -> Option<GgmlDType>,
        build: impl FnOnce(Content, &mut dyn ReadSeek, &Device) -> candle_core::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let invalid = |e: candle_core::Error| LlmError::InvalidModel {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut reader = open_reader(Path::new(&self.path))?;
        let converts_any = self
            .content
            .tensor_infos
            .values()
            .any(|info| convert(info.ggml_dtype).is_some());
        if !converts_any {
            return build(self.content, &mut reader, device).map_err(invalid);
        }
        let bytes = converted_file(&self.content, &mut reader, convert).map_err(&invalid)?;
        drop(reader);
        let mut cursor = Cursor::new(bytes);
        let content = Content::read(&mut cursor).map_err(&invalid)?;
        build(content, &mut cursor, device).map_err(invalid)
    }
}

/// A reader the model builders can take as a trait object.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

fn open_reader(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| LlmError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Writes a GGUF image of `content` in memory with every tensor whose type
/// `convert` maps to another converted (others copied as they are).
fn converted_file<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    convert: impl Fn(GgmlDType) -> Option<GgmlDType>,
) -> candle_core::Result<Vec<u8>> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(reader, name, &Device::Cpu)?;
        let target = convert(tensor.dtype()).filter(|target| {
            tensor
                .shape()
                .dims()
                .last()
                .is_some_and(|k| k % target.block_size() == 0)
        });
        let tensor = match target {
            Some(target) => QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, target)?,
            None => tensor,
        };
        tensors.push((name.clone(), tensor));
    }
    let mut metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value))
        .collect();
    metadata.sort_by_key(|(key, _)| *key);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors
        .iter()
        .map(|(name, tensor)| (name.as_str(), tensor))
        .collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    Ok(out.into_inner())
}

/// A GGUF numeric value as `u32`, if it is one and fits.
pub(crate) fn numeric_u32(value: &Value) -> Option<u32> {
    match value {
        Value::U8(v) => Some(u32::from(*v)),
        Value::U16(v) => Some(u32::from(*v)),
        Value::U32(v) => Some(*v),
        Value::U64(v) => u32::try_from(*v).ok(),
        Value::I8(v) => u32::try_from(*v).ok(),
        Value::I16(v) => u32::try_from(*v).ok(),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}
