//! The decoder's dimensions, read from `<architecture>.*` GGUF metadata.

use candle_core::Result;
use candle_core::quantized::gguf_file::Content;

use crate::gguf::Architecture;

/// Dimensions and constants of a decoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HyperParams {
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the hidden state.
    pub embedding: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Base of the rotary frequencies.
    pub rope_freq_base: f32,
}

impl HyperParams {
    /// Reads the dimensions of an `architecture` model.
    pub(crate) fn read(content: &Content, architecture: Architecture) -> Result<Self> {
        let prefix = architecture.as_str();
        let get = |name: &str| {
            let key = format!("{prefix}.{name}");
            content
                .metadata
                .get(&key)
                .ok_or_else(|| candle_core::Error::Msg(format!("the GGUF has no {key}")))
        };
        let count = |name: &str| get(name)?.to_u32().map(|n| n as usize);
        let embedding = count("embedding_length")?;
        let heads = count("attention.head_count")?;
        let kv_heads = count("attention.head_count_kv").unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || embedding % heads != 0 {
            candle_core::bail!(
                "inconsistent attention shape: {heads} heads, {kv_heads} key/value heads, width {embedding}"
            );
        }
        Ok(Self {
            layers: count("block_count")?,
            embedding,
            heads,
            kv_heads,
            head_dim: embedding / heads,
            rms_norm_eps: f64::from(get("attention.layer_norm_rms_epsilon")?.to_f32()?),
            rope_freq_base: get("rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
        })
    }
}
