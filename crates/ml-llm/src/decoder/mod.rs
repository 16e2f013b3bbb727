//! The decoder-only transformer of the supported GGUF families (`llama`,
//! `qwen2`), with the weights kept apart from the per-generation state.
//!
//! candle-transformers' quantized models keep the KV cache inside the
//! weights struct (and its qwen2 cannot be cloned), so one model could
//! serve one generation at a time. Here [`Decoder`] is immutable and
//! shared by every generation; each generation owns a [`KvCache`].
//! The arithmetic is the same as candle's models (tested against them).

mod attention;
mod hparams;
mod linear;
mod widening;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm};

use crate::gguf::{Architecture, ReadSeek};

use self::attention::{Attention, LayerCache, Rope};
use self::hparams::HyperParams;
use self::linear::{Linear, Linears};
pub(crate) use self::widening::Widening;

/// The weights of one model, shared (read-only) by every generation.
pub(crate) struct Decoder {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
}

/// One transformer block.
struct Layer {
    attention_norm: RmsNorm,
    attention: Attention,
    ffn_norm: RmsNorm,
    /// The feed-forward gate and up projections, one product.
    gate_up: Linears,
    down: Linear,
}

/// A generation's keys and values of every layer; its length is the
/// position of the next token.
pub(crate) struct KvCache {
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// Tokens the cache holds.
    pub(crate) fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::len)
    }
}

impl Decoder {
    /// Builds the decoder from a GGUF header and its tensor data, keeping
    /// room for rotary positions up to `context_tokens`; with `widen`, the
    /// hidden state is widened to whole kernel blocks (see [`Widening`]).
    pub(crate) fn from_gguf(
        content: &Content,
        reader: &mut dyn ReadSeek,
        device: &Device,
        architecture: Architecture,
        context_tokens: usize,
        widen: bool,
    ) -> Result<Self> {
        let hparams = HyperParams::read(content, architecture)?;
        let widening = match widen {
            true => Widening::to_kernel_blocks(hparams.embedding),
            false => Widening::none(hparams.embedding),
        };
        let mut reader = reader;
        let mut tensor = |name: &str| content.tensor(&mut reader, name, device);
        let embeddings_q = widening.columns(tensor("token_embd.weight")?)?;
        let embeddings = Embedding::new(embeddings_q.dequantize(device)?, widening.width());
        let eps = hparams.rms_norm_eps;
        let norm = widening.rms_norm(&tensor("output_norm.weight")?, eps)?;
        // Models with tied embeddings have no separate output matrix.
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => Linear::new(widening.columns(tensor("output.weight")?)?)?,
            false => Linear::new(embeddings_q)?,
        };
        let mut layers = Vec::with_capacity(hparams.layers);
        for index in 0..hparams.layers {
            let mut layer_tensor = |name: &str| tensor(&format!("blk.{index}.{name}"));
            let attention =
                Attention::from_tensors(&mut layer_tensor, &hparams, architecture, widening)?;
            layers.push(Layer {
                attention_norm: widening.rms_norm(&layer_tensor("attn_norm.weight")?, eps)?,
                attention,
                ffn_norm: widening.rms_norm(&layer_tensor("ffn_norm.weight")?, eps)?,
                gate_up: Linears::new(vec![
                    widening.columns(layer_tensor("ffn_gate.weight")?)?,
                    widening.columns(layer_tensor("ffn_up.weight")?)?,
                ])?,
                down: Linear::new(widening.rows(layer_tensor("ffn_down.weight")?)?)?,
            });
        }
        let rope = Rope::new(&hparams, architecture, context_tokens, device)?;
        Ok(Self {
            embeddings,
            layers,
            norm,
            output,
            rope,
        })
    }

    /// An empty cache for one generation.
    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.layers.len()).map(|_| LayerCache::new()).collect(),
        }
    }

    /// Reads `tokens` (shape `[1, len]`) after what `cache` holds, appends
    /// their keys and values to it, and returns the logits of the last one.
    pub(crate) fn forward(&self, tokens: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (_, seq_len) = tokens.dims2()?;
        let position = cache.len();
        let mask = (seq_len > 1)
            .then(|| attention::causal_mask(seq_len, position, tokens.device()))
            .transpose()?;
        let mut hidden = self.embeddings.forward(tokens)?;
        for (layer, layer_cache) in self.layers.iter().zip(&mut cache.layers) {
            let normed = layer.attention_norm.forward(&hidden)?;
            let attended = layer.attention.forward(
                &normed,
                &self.rope,
                mask.as_ref(),
                position,
                layer_cache,
            )?;
            hidden = (attended + hidden)?;
            let normed = layer.ffn_norm.forward(&hidden)?;
            let [gate, up] = layer.gate_up.forward_n(&normed)?;
            let mlp = layer.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)?;
            hidden = (mlp + hidden)?;
        }
        let last = self.norm.forward(&hidden)?.i((.., seq_len - 1, ..))?;
        self.output.forward(&last)
    }
}

#[cfg(test)]
mod tests;
