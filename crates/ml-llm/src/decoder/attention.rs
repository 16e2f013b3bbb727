//! Causal self-attention with rotary positions, grouped-query heads and a
//! per-generation key/value cache.

use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache as CandleKvCache;

use super::linear::{Linear, Linears};
use super::{HyperParams, Widening};
use crate::gguf::Architecture;

/// Positions a fresh layer cache has room for; it grows by as many again
/// when full, so short generations do not pay for the whole context.
const CACHE_STEP: usize = 512;

/// The rotary position tables.
pub(crate) struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// Rotates pairs `(2i, 2i+1)` (llama) instead of `(i, i + d/2)` (qwen2,
    /// GPT-NeoX style), as llama.cpp does for these architectures.
    interleaved: bool,
}

impl Rope {
    /// Tables for positions `0..positions`.
    pub(crate) fn new(
        hparams: &HyperParams,
        architecture: Architecture,
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let dim = hparams.head_dim;
        let inverse_frequencies: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| 1.0 / hparams.rope_freq_base.powf(i as f32 / dim as f32))
            .collect();
        let inverse_frequencies = Tensor::new(inverse_frequencies.as_slice(), device)?;
        let angles = Tensor::arange(0, positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?
            .matmul(&inverse_frequencies.reshape((1, dim / 2))?)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
            interleaved: architecture == Architecture::Llama,
        })
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`) for positions from `position`.
    fn apply(&self, x: &Tensor, position: usize) -> Result<Tensor> {
        let (_, _, seq_len, _) = x.dims4()?;
        let cos = self.cos.narrow(0, position, seq_len)?;
        let sin = self.sin.narrow(0, position, seq_len)?;
        if self.interleaved {
            candle_nn::rotary_emb::rope_i(x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(x, &cos, &sin)
        }
    }
}

/// The additive causal mask of `seq_len` new tokens after `position`
/// cached ones: `[seq_len, position + seq_len]`, `-inf` where a token
/// would see a later one.
pub(crate) fn causal_mask(seq_len: usize, position: usize, device: &Device) -> Result<Tensor> {
    let total = position + seq_len;
    let mask: Vec<f32> = (0..seq_len)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j > position + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_slice(&mask, (seq_len, total), device)
}

/// One layer's cached keys and values.
pub(crate) struct LayerCache(CandleKvCache);

impl LayerCache {
    pub(crate) fn new() -> Self {
        // Keys and values are `[batch, kv_heads, positions, head_dim]`.
        Self(CandleKvCache::new(2, CACHE_STEP))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.current_seq_len()
    }
}

/// One layer's attention weights.
pub(crate) struct Attention {
    /// The query, key and value projections, one product.
    qkv: Linears,
    /// Their biases (qwen2), in the same order.
    biases: Option<Vec<Tensor>>,
    output: Linear,
    widening: Widening,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    /// Reads `attn_{q,k,v,output}` through `tensor` (names within the
    /// block), for a hidden state widened by `widening`.
    pub(crate) fn from_tensors(
        tensor: &mut dyn FnMut(&str) -> Result<QTensor>,
        hparams: &HyperParams,
        architecture: Architecture,
        widening: Widening,
    ) -> Result<Self> {
        let mut weights = Vec::with_capacity(3);
        let mut biases = Vec::with_capacity(3);
        for name in ["attn_q", "attn_k", "attn_v"] {
            weights.push(widening.columns(tensor(&format!("{name}.weight"))?)?);
            if architecture == Architecture::Qwen2 {
                let bias = tensor(&format!("{name}.bias"))?;
                biases.push(bias.dequantize(&bias.device())?);
            }
        }
        Ok(Self {
            qkv: Linears::new(weights)?,
            biases: (!biases.is_empty()).then_some(biases),
            // Its input, the heads side by side, is as wide as the model.
            output: Linear::new(widening.square(tensor("attn_output.weight")?)?)?,
            widening,
            heads: hparams.heads,
            kv_heads: hparams.kv_heads,
            head_dim: hparams.head_dim,
        })
    }

    /// Attends `x` (`[1, seq, width]`, at `position`) over the cache plus
    /// itself, appending its keys and values to `cache`.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: Option<&Tensor>,
        position: usize,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let (batch, seq_len, _) = x.dims3()?;
        let mut projections = self.qkv.forward_n::<3>(x)?;
        if let Some(biases) = &self.biases {
            for (projection, bias) in projections.iter_mut().zip(biases) {
                *projection = projection.broadcast_add(bias)?;
            }
        }
        let [query, key, value] = projections;
        let heads = |projection: Tensor, count: usize| -> Result<Tensor> {
            projection
                .reshape((batch, seq_len, count, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let query = rope.apply(&heads(query, self.heads)?, position)?;
        let key = rope.apply(&heads(key, self.kv_heads)?, position)?;
        let value = heads(value, self.kv_heads)?;
        let (keys, values) = cache.0.append(&key, &value)?;
        let total = keys.dim(2)?;

        // Grouped-query attention without copying the keys per query head:
        // the query heads sharing a key/value head become extra rows.
        let group = self.heads / self.kv_heads;
        let query = query.reshape((batch, self.kv_heads, group * seq_len, self.head_dim))?;
        let scores = (query.matmul(&keys.t()?)? / (self.head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(mask) => scores
                .reshape((batch, self.kv_heads, group, seq_len, total))?
                .broadcast_add(mask)?
                .reshape((batch, self.kv_heads, group * seq_len, total))?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let attended = weights
            .matmul(&values)?
            .reshape((batch, self.heads, seq_len, self.head_dim))?
            .transpose(1, 2)?
            .reshape((batch, seq_len, self.heads * self.head_dim))?;
        self.output.forward(&self.widening.activations(&attended)?)
    }
}
