//! CTranslate2 Whisper → whisper.cpp ggml.
//!
//! The CTranslate2 `WhisperSpec` keeps the PyTorch weights, renamed, with
//! two fusions: self-attention query|key|value are stacked row-wise in
//! `self_attention/linear_0` (the key part of its bias is zero, Whisper's
//! key projection has none) and cross-attention key|value in
//! `attention/linear_1`. The conversion splits them again and writes
//! openai-whisper's tensor names, which whisper.cpp's loader expects, in
//! PyTorch's `state_dict` order, as `models/convert-pt-to-ggml.py` does:
//! 2-D and conv weights F16; 1-D tensors, conv biases (as `[n, 1]`) and
//! positional embeddings F32.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use tracing::{debug, info, warn};

use crate::ct2::{Ct2Model, DType};
use crate::error::{Error, Result};
use crate::ggml::{GgmlType, GgmlWriter, HParams};
use crate::npz::{self, Array2};
use crate::tiktoken::{self, GPT2_TOKENS, MULTILINGUAL_TOKENS};

/// Where a ggml tensor's data comes from: part `part` of `parts` equal
/// row blocks of the CTranslate2 variable `source` (one part: all of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPlan {
    /// whisper.cpp's name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// Shape written, outermost first (PyTorch order).
    pub shape: Vec<usize>,
    /// Type written.
    pub ty: GgmlType,
    /// The CTranslate2 variable.
    pub source: String,
    /// The shape the CTranslate2 variable must have.
    pub source_shape: Vec<usize>,
    /// Which row block of the source.
    pub part: usize,
    /// Into how many row blocks the source is split.
    pub parts: usize,
}

/// A fused CTranslate2 bias whose block `part` of `parts` is the key bias,
/// which must be zero (dropped in the conversion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroBlock {
    /// The CTranslate2 variable.
    pub source: String,
    /// Which row block.
    pub part: usize,
    /// Into how many row blocks the source is split.
    pub parts: usize,
}

/// The whole conversion plan: tensors in write order plus the dropped
/// blocks to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The tensors, in file order.
    pub tensors: Vec<TensorPlan>,
    /// Key biases that must be zero.
    pub zero_blocks: Vec<ZeroBlock>,
}

struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    fn push(
        &mut self,
        name: String,
        shape: &[usize],
        source: String,
        source_shape: &[usize],
        part: usize,
        parts: usize,
    ) {
        // convert-pt-to-ggml.py: F16 unless 1-D, a conv bias or a positional embedding.
        let f32 = shape.len() < 2
            || name.ends_with("conv1.bias")
            || name.ends_with("conv2.bias")
            || name.ends_with("positional_embedding");
        self.plan.tensors.push(TensorPlan {
            name,
            shape: shape.to_vec(),
            ty: if f32 { GgmlType::F32 } else { GgmlType::F16 },
            source,
            source_shape: source_shape.to_vec(),
            part,
            parts,
        });
    }

    fn whole(&mut self, name: String, source: String, shape: &[usize]) {
        self.push(name, shape, source, shape, 0, 1);
    }

    /// Weight `[d, d]` and bias `[d]` of a plain linear layer.
    fn linear(&mut self, name: &str, source: &str, out: usize, inp: usize) {
        self.whole(
            format!("{name}.weight"),
            format!("{source}/weight"),
            &[out, inp],
        );
        self.whole(format!("{name}.bias"), format!("{source}/bias"), &[out]);
    }

    /// LayerNorm: CTranslate2 gamma/beta → weight/bias.
    fn norm(&mut self, name: &str, source: &str, d: usize) {
        self.whole(format!("{name}.weight"), format!("{source}/gamma"), &[d]);
        self.whole(format!("{name}.bias"), format!("{source}/beta"), &[d]);
    }

    /// Self-attention of block `block` (`{block}.attn`, `{block}.attn_ln`)
    /// from `{source}/self_attention`: fused q|k|v in `linear_0`, output in
    /// `linear_1`, then its layer norm.
    fn self_attention(&mut self, block: &str, source: &str, d: usize) {
        let (name, source) = (
            &format!("{block}.attn"),
            &format!("{source}/self_attention"),
        );
        let w = format!("{source}/linear_0/weight");
        let b = format!("{source}/linear_0/bias");
        self.push(
            format!("{name}.query.weight"),
            &[d, d],
            w.clone(),
            &[3 * d, d],
            0,
            3,
        );
        self.push(
            format!("{name}.query.bias"),
            &[d],
            b.clone(),
            &[3 * d],
            0,
            3,
        );
        self.key_value(name, &format!("{source}/linear_0"), d, 1, 3);
        self.linear(&format!("{name}.out"), &format!("{source}/linear_1"), d, d);
        self.norm(
            &format!("{block}.attn_ln"),
            &format!("{source}/layer_norm"),
            d,
        );
    }

    /// Cross-attention of decoder block `block` (`{block}.cross_attn`,
    /// `{block}.cross_attn_ln`) from `{source}/attention`: query in
    /// `linear_0`, fused k|v in `linear_1`, output in `linear_2`, then its
    /// layer norm.
    fn cross_attention(&mut self, block: &str, source: &str, d: usize) {
        let (name, source) = (
            &format!("{block}.cross_attn"),
            &format!("{source}/attention"),
        );
        self.linear(
            &format!("{name}.query"),
            &format!("{source}/linear_0"),
            d,
            d,
        );
        self.key_value(name, &format!("{source}/linear_1"), d, 0, 2);
        self.linear(&format!("{name}.out"), &format!("{source}/linear_2"), d, d);
        self.norm(
            &format!("{block}.cross_attn_ln"),
            &format!("{source}/layer_norm"),
            d,
        );
    }

    /// Key and value of an attention block from parts `key_part` and
    /// `key_part + 1` of the fused linear layer `source` (`parts` parts of
    /// `d` rows). The key has no bias in Whisper: CTranslate2 stores zeros
    /// there, which must be zero.
    fn key_value(&mut self, name: &str, source: &str, d: usize, key_part: usize, parts: usize) {
        let w = format!("{source}/weight");
        let b = format!("{source}/bias");
        self.push(
            format!("{name}.key.weight"),
            &[d, d],
            w.clone(),
            &[parts * d, d],
            key_part,
            parts,
        );
        self.plan.zero_blocks.push(ZeroBlock {
            source: b.clone(),
            part: key_part,
            parts,
        });
        self.push(
            format!("{name}.value.weight"),
            &[d, d],
            w,
            &[parts * d, d],
            key_part + 1,
            parts,
        );
        self.push(
            format!("{name}.value.bias"),
            &[d],
            b,
            &[parts * d],
            key_part + 1,
            parts,
        );
    }

    fn mlp(&mut self, name: &str, source: &str, d: usize) {
        self.linear(
            &format!("{name}.mlp.0"),
            &format!("{source}/ffn/linear_0"),
            4 * d,
            d,
        );
        self.linear(
            &format!("{name}.mlp.2"),
            &format!("{source}/ffn/linear_1"),
            d,
            4 * d,
        );
        self.norm(
            &format!("{name}.mlp_ln"),
            &format!("{source}/ffn/layer_norm"),
            d,
        );
    }
}

/// The conversion plan for a model with hyper-parameters `hp`.
pub fn plan(hp: &HParams) -> Plan {
    let dim = |v: i32| usize::try_from(v).unwrap_or(0);
    let (d, n_mels) = (dim(hp.n_audio_state), dim(hp.n_mels));
    let mut b = PlanBuilder {
        plan: Plan {
            tensors: Vec::new(),
            zero_blocks: Vec::new(),
        },
    };

    b.whole(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings".into(),
        &[dim(hp.n_audio_ctx), d],
    );
    b.whole(
        "encoder.conv1.weight".into(),
        "encoder/conv1/weight".into(),
        &[d, n_mels, 3],
    );
    b.push(
        "encoder.conv1.bias".into(),
        &[d, 1],
        "encoder/conv1/bias".into(),
        &[d],
        0,
        1,
    );
    b.whole(
        "encoder.conv2.weight".into(),
        "encoder/conv2/weight".into(),
        &[d, d, 3],
    );
    b.push(
        "encoder.conv2.bias".into(),
        &[d, 1],
        "encoder/conv2/bias".into(),
        &[d],
        0,
        1,
    );
    for i in 0..dim(hp.n_audio_layer) {
        let (name, source) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        b.self_attention(&name, &source, d);
        b.mlp(&name, &source, d);
    }
    b.norm("encoder.ln_post", "encoder/layer_norm", d);

    let d = dim(hp.n_text_state);
    b.whole(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings".into(),
        &[dim(hp.n_text_ctx), d],
    );
    b.whole(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight".into(),
        &[dim(hp.n_vocab), d],
    );
    for i in 0..dim(hp.n_text_layer) {
        let (name, source) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        b.self_attention(&name, &source, d);
        b.cross_attention(&name, &source, d);
        b.mlp(&name, &source, d);
    }
    b.norm("decoder.ln", "decoder/layer_norm", d);
    b.plan
}

/// Derives the hyper-parameters from the CTranslate2 tensors' shapes and the
/// encoder/decoder `num_heads` scalars.
pub fn hparams<R: Read + Seek>(model: &mut Ct2Model<R>) -> Result<HParams> {
    let shape = |model: &Ct2Model<R>, name: &str, rank: usize| -> Result<Vec<usize>> {
        let v = model.variable(name)?;
        if v.shape.len() != rank {
            return Err(Error::Ct2Format(format!(
                "`{name}` has shape {:?}, expected {rank} dimensions",
                v.shape
            )));
        }
        Ok(v.shape.clone())
    };
    let to_i32 = |v: usize, what: &str| {
        i32::try_from(v).map_err(|_| Error::Model(format!("{what} {v} is too large")))
    };

    let enc_pos = shape(model, "encoder/position_encodings/encodings", 2)?;
    let conv1 = shape(model, "encoder/conv1/weight", 3)?;
    let dec_pos = shape(model, "decoder/position_encodings/encodings", 2)?;
    let embed = shape(model, "decoder/embeddings/weight", 2)?;
    let count_layers = |model: &Ct2Model<R>, side: &str| {
        (0..)
            .take_while(|i| {
                model.contains(&format!("{side}/layer_{i}/self_attention/linear_0/weight"))
            })
            .count()
    };
    let n_audio_layer = count_layers(model, "encoder");
    let n_text_layer = count_layers(model, "decoder");
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err(Error::MissingTensor(format!(
            "{}/layer_0/self_attention/linear_0/weight",
            if n_audio_layer == 0 {
                "encoder"
            } else {
                "decoder"
            }
        )));
    }

    let (n_audio_state, n_text_state) = (enc_pos[1], dec_pos[1]);
    if n_audio_state != n_text_state || embed[1] != n_text_state {
        return Err(Error::Model(format!(
            "encoder width {n_audio_state}, decoder width {n_text_state}, embedding width {}: \
             whisper.cpp needs them equal",
            embed[1]
        )));
    }
    let heads = |model: &mut Ct2Model<R>, side: &str, width: usize| -> Result<usize> {
        let name = format!("{side}/num_heads");
        match model.read_int_scalar(&name)? {
            Some(n) if n > 0 && width.is_multiple_of(n as usize) => Ok(n as usize),
            Some(n) => Err(Error::Model(format!(
                "`{name}` is {n}, which does not divide the width {width}"
            ))),
            None => {
                // Every Whisper size uses 64-wide heads.
                warn!(
                    "no `{name}` in the model: assuming 64-wide heads ({} heads)",
                    width / 64
                );
                Ok(width / 64)
            }
        }
    };
    let n_audio_head = heads(model, "encoder", n_audio_state)?;
    let n_text_head = heads(model, "decoder", n_text_state)?;

    Ok(HParams {
        n_vocab: to_i32(embed[0], "n_vocab")?,
        n_audio_ctx: to_i32(enc_pos[0], "n_audio_ctx")?,
        n_audio_state: to_i32(n_audio_state, "n_audio_state")?,
        n_audio_head: to_i32(n_audio_head, "n_audio_head")?,
        n_audio_layer: to_i32(n_audio_layer, "n_audio_layer")?,
        n_text_ctx: to_i32(dec_pos[0], "n_text_ctx")?,
        n_text_state: to_i32(n_text_state, "n_text_state")?,
        n_text_head: to_i32(n_text_head, "n_text_head")?,
        n_text_layer: to_i32(n_text_layer, "n_text_layer")?,
        n_mels: to_i32(conv1[1], "n_mels")?,
        ftype: 1,
    })
}

/// Rejects CTranslate2 decoder options whisper.cpp does not implement.
fn check_options<R: Read + Seek>(model: &mut Ct2Model<R>) -> Result<()> {
    for (name, expected) in [
        ("decoder/scale_embeddings", 0),
        ("decoder/alibi", 0),
        ("decoder/start_from_zero_embedding", 0),
        ("decoder/pre_norm", 1),
    ] {
        if let Some(value) = model.read_int_scalar(name)?
            && value != expected
        {
            return Err(Error::Model(format!(
                "`{name}` is {value}, but whisper.cpp implements only {expected}"
            )));
        }
    }
    Ok(())
}

/// What a `config.json` next to `model.bin` (faster-whisper's) says that
/// matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelConfig {
    /// The language token ids (`lang_ids`), when listed.
    pub lang_ids: Option<Vec<u64>>,
}

impl ModelConfig {
    /// Parses a faster-whisper `config.json`.
    pub fn parse(text: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let lang_ids = match value.get("lang_ids") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Array(ids)) => Some(
                ids.iter()
                    .map(|id| {
                        id.as_u64().ok_or_else(|| {
                            Error::Config(format!("lang_ids: `{id}` is not a token id"))
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(other) => return Err(Error::Config(format!("lang_ids is not a list: {other}"))),
        };
        Ok(Self { lang_ids })
    }

    /// Checks the config against the hyper-parameters: a multilingual
    /// model's language count fixes whisper.cpp's special token ids.
    pub fn check(&self, hp: &HParams) -> Result<()> {
        if let (true, Some(ids)) = (hp.is_multilingual(), &self.lang_ids) {
            let expected = i64::from(hp.n_vocab) - 51_765 - 1;
            if ids.len() as i64 != expected {
                return Err(Error::Config(format!(
                    "{} languages in lang_ids, but whisper.cpp derives {expected} from n_vocab {}",
                    ids.len(),
                    hp.n_vocab
                )));
            }
        }
        Ok(())
    }
}

/// Checks that the vocabulary fits the model.
fn check_vocab(tokens: &[Vec<u8>], hp: &HParams) -> Result<()> {
    let n_vocab = usize::try_from(hp.n_vocab).unwrap_or(0);
    if tokens.len() > n_vocab {
        return Err(Error::Vocab(format!(
            "{} tokens, more than the model's n_vocab {n_vocab}",
            tokens.len()
        )));
    }
    // A real Whisper vocabulary: the text tokens of gpt2 (English-only
    // models) or multilingual; whisper.cpp adds the special tokens.
    if n_vocab >= 51_864 {
        let (expected, file) = if hp.is_multilingual() {
            (MULTILINGUAL_TOKENS, "multilingual.tiktoken")
        } else {
            (GPT2_TOKENS, "gpt2.tiktoken")
        };
        if tokens.len() != expected {
            return Err(Error::Vocab(format!(
                "{} tokens, but this {} model (n_vocab {n_vocab}) needs openai-whisper's {file} ({expected} tokens)",
                tokens.len(),
                if hp.is_multilingual() {
                    "multilingual"
                } else {
                    "English-only"
                },
            )));
        }
    }
    Ok(())
}

fn f32_values(data: &[u8], dtype: DType, name: &str) -> Result<Vec<f32>> {
    Ok(match dtype {
        DType::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F16 => data
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => data
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::UnsupportedDtype {
                name: name.to_owned(),
                dtype: other.name().to_owned(),
            });
        }
    })
}

/// Converts raw CTranslate2 elements to the bytes of a ggml tensor of type `ty`.
pub fn convert_data(data: &[u8], dtype: DType, ty: GgmlType, name: &str) -> Result<Vec<u8>> {
    match (dtype, ty) {
        (DType::F16, GgmlType::F16) | (DType::F32, GgmlType::F32) => Ok(data.to_vec()),
        (_, GgmlType::F16) => Ok(f32_values(data, dtype, name)?
            .into_iter()
            .flat_map(|v| f16::from_f32(v).to_le_bytes())
            .collect()),
        (_, GgmlType::F32) => Ok(f32_values(data, dtype, name)?
            .into_iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()),
    }
}

/// Row block `part` of `parts` of `data` (equal blocks).
fn block(data: &[u8], part: usize, parts: usize) -> &[u8] {
    let len = data.len() / parts;
    &data[part * len..(part + 1) * len]
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The hyper-parameters written.
    pub hparams: HParams,
    /// Tensors written.
    pub tensors: usize,
    /// Tokens in the vocabulary written.
    pub vocab: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Converts an open CTranslate2 model, with the mel filter bank `mel` (all
/// banks of the `.npz`: the one for the model's `n_mels` is chosen) and the
/// vocabulary `vocab` (rank order), writing the ggml file to `out`.
pub fn convert<R, W>(
    model: &mut Ct2Model<R>,
    mel: &dyn Fn(usize) -> Result<Array2>,
    vocab: &[Vec<u8>],
    config: Option<&ModelConfig>,
    out: W,
) -> Result<(Summary, W)>
where
    R: Read + Seek,
    W: Write,
{
    let hp = hparams(model)?;
    info!(
        "model: whisper {} ({}), n_vocab {}, {} mels, width {}, {}+{} layers, {}/{} heads, ctx {}/{}",
        hp.model_type(),
        if hp.is_multilingual() {
            "multilingual"
        } else {
            "English-only"
        },
        hp.n_vocab,
        hp.n_mels,
        hp.n_audio_state,
        hp.n_audio_layer,
        hp.n_text_layer,
        hp.n_audio_head,
        hp.n_text_head,
        hp.n_audio_ctx,
        hp.n_text_ctx
    );
    check_options(model)?;
    if let Some(config) = config {
        config.check(&hp)?;
    }
    check_vocab(vocab, &hp)?;
    let filters = mel(usize::try_from(hp.n_mels).unwrap_or(0))?;

    // Check every source before writing anything.
    let plan = plan(&hp);
    for t in &plan.tensors {
        let v = model.variable(&t.source)?;
        if v.shape != t.source_shape {
            return Err(Error::BadShape {
                name: t.source.clone(),
                found: v.shape.clone(),
                expected: t.source_shape.clone(),
            });
        }
        if !matches!(v.dtype, DType::F16 | DType::F32 | DType::BF16) {
            return Err(Error::UnsupportedDtype {
                name: t.source.clone(),
                dtype: v.dtype.name().to_owned(),
            });
        }
    }
    for z in &plan.zero_blocks {
        let dtype = model.variable(&z.source)?.dtype;
        let data = model.read_bytes(&z.source)?;
        let values = f32_values(block(&data, z.part, z.parts), dtype, &z.source)?;
        if values.iter().any(|v| *v != 0.0) {
            return Err(Error::NonZeroKeyBias {
                name: z.source.clone(),
            });
        }
    }

    let mut w = GgmlWriter::new(out);
    let werr = |e| Error::read("writing the ggml file", e);
    w.header(&hp).map_err(werr)?;
    w.mel_filters(filters.rows, filters.cols, &filters.data)
        .map_err(werr)?;
    w.vocab(vocab).map_err(werr)?;
    info!(
        "wrote the header, mel filters ({}x{}) and vocabulary ({} tokens); writing {} tensors",
        filters.rows,
        filters.cols,
        vocab.len(),
        plan.tensors.len()
    );

    // Fused sources are read once for all their blocks.
    let mut cached: Option<(String, Vec<u8>)> = None;
    for (index, t) in plan.tensors.iter().enumerate() {
        let dtype = model.variable(&t.source)?.dtype;
        if cached.as_ref().is_none_or(|(name, _)| *name != t.source) {
            cached = Some((t.source.clone(), model.read_bytes(&t.source)?));
        }
        let data = cached.as_ref().map_or(&[][..], |(_, data)| data.as_slice());
        let data = convert_data(block(data, t.part, t.parts), dtype, t.ty, &t.source)?;
        w.tensor(&t.name, &t.shape, t.ty, &data).map_err(werr)?;
        debug!(
            "[{}/{}] {} {:?} {:?} <- {}",
            index + 1,
            plan.tensors.len(),
            t.name,
            t.shape,
            t.ty,
            t.source
        );
    }
    let bytes = w.written();
    let out = w.finish().map_err(werr)?;
    Ok((
        Summary {
            hparams: hp,
            tensors: plan.tensors.len(),
            vocab: vocab.len(),
            bytes,
        },
        out,
    ))
}

/// The input and output files of [`convert_files`].
#[derive(Debug, Clone)]
pub struct Paths {
    /// CTranslate2 `model.bin`.
    pub ct2: PathBuf,
    /// openai-whisper's `mel_filters.npz`.
    pub mel_filters: PathBuf,
    /// `gpt2.tiktoken` or `multilingual.tiktoken`.
    pub vocab: PathBuf,
    /// faster-whisper's `config.json`; `None`: the one next to `model.bin`, if any.
    pub config: Option<PathBuf>,
    /// The ggml file to write.
    pub out: PathBuf,
}

/// Removes a temporary file unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Converts the files named in `paths`. The output appears complete or not
/// at all: it is written to a temporary file next to it, synced, then renamed.
pub fn convert_files(paths: &Paths) -> Result<Summary> {
    info!("reading {}", paths.ct2.display());
    let mut model = Ct2Model::open(&paths.ct2).map_err(|e| in_file(&paths.ct2, e))?;
    info!(
        "CTranslate2 {} revision {}: {} variables",
        model.spec,
        model.revision,
        model.variables().count()
    );

    let config_path = match &paths.config {
        Some(path) => Some(path.clone()),
        None => Some(paths.ct2.with_file_name("config.json")).filter(|p| p.is_file()),
    };
    let config = match &config_path {
        Some(path) => {
            info!("reading {}", path.display());
            let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let config = ModelConfig::parse(&text).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
                other => other,
            })?;
            Some(config)
        }
        None => None,
    };

    info!("reading {}", paths.vocab.display());
    let vocab = tiktoken::read(&paths.vocab)?;
    let mel_path = paths.mel_filters.clone();
    let mel = move |n_mels: usize| {
        info!("reading {} (mel_{n_mels})", mel_path.display());
        npz::read_mel_filters(&mel_path, n_mels)
    };

    let out = &paths.out;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| Error::io(out, std::io::Error::other("no file name")))?;
    let mut temp = TempFile {
        path: dir.join(format!(
            ".{}.tmp-{}",
            file_name.to_string_lossy(),
            std::process::id()
        )),
        keep: false,
    };
    let file = File::create(&temp.path).map_err(|e| Error::io(&temp.path, e))?;
    let (summary, writer) = convert(
        &mut model,
        &mel,
        &vocab,
        config.as_ref(),
        BufWriter::with_capacity(1 << 20, file),
    )
    .map_err(|e| in_file(&paths.ct2, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(&temp.path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&temp.path, e))?;
    drop(file);
    fs::rename(&temp.path, out).map_err(|e| Error::io(out, e))?;
    temp.keep = true;
    info!(
        "wrote {} ({} bytes, {} tensors, whisper.cpp type {})",
        out.display(),
        summary.bytes,
        summary.tensors,
        summary.hparams.model_type()
    );
    Ok(summary)
}

/// Prefixes format errors of an input with its path.
fn in_file(path: &Path, e: Error) -> Error {
    let p = path.display();
    match e {
        Error::Ct2Format(m) => Error::Ct2Format(format!("{p}: {m}")),
        Error::Model(m) => Error::Model(format!("{p}: {m}")),
        other => other,
    }
}
