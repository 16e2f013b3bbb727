//! A BERT encoder for inference only, built for CPU speed: one fused
//! query/key/value projection with the attention scale folded into the query
//! weights, every projection as one 2-D matrix product over all tokens of
//! the batch, and the rest in the fused operations of [`super::kernels`].
//! candle-transformers' general BERT runs a five-pass softmax and a
//! division over the whole `batch × heads × tokens²` score tensor instead,
//! which dominates on long texts.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

use super::kernels::{self, Activation};

/// How far padding positions are pushed down before the softmax (finite, so
/// no NaN can appear).
const MASK_PENALTY: f64 = 1e9;

/// A dense layer whose weight is stored transposed, `(in, out)`, contiguous.
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder, input: usize, output: usize) -> Result<Self> {
        let weight = vb.get((output, input), "weight")?;
        let bias = vb.get(output, "bias")?;
        Self::from_parts(&weight, bias)
    }

    fn from_parts(weight: &Tensor, bias: Tensor) -> Result<Self> {
        Ok(Self {
            weight: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// `(rows, in) -> (rows, out)`, then `activation`.
    fn forward(&self, xs: &Tensor, activation: Activation) -> Result<Tensor> {
        kernels::add_bias(xs.matmul(&self.weight)?, &self.bias, activation)
    }

    /// `(rows, in) -> (rows, out)`, plus `residual` `(rows, out)`.
    fn forward_plus(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        kernels::add_bias_and_residual(xs.matmul(&self.weight)?, &self.bias, residual)
    }
}

/// Layer normalisation over the last dimension.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        // Old checkpoints call the parameters gamma/beta.
        let weight = vb.get(size, "weight").or_else(|_| vb.get(size, "gamma"))?;
        let bias = vb.get(size, "bias").or_else(|_| vb.get(size, "beta"))?;
        #[allow(clippy::cast_possible_truncation)] // epsilons are tiny
        let eps = eps as f32;
        Ok(Self { weight, bias, eps })
    }

    /// Normalises `xs` `(rows, size)`, which it consumes.
    fn forward(&self, xs: Tensor) -> Result<Tensor> {
        kernels::layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
    heads: usize,
    activation: Activation,
}

impl Layer {
    fn load(vb: &VarBuilder, config: &Config) -> Result<Self> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        let head_size = hidden / heads;
        let own = vb.pp("attention").pp("self");
        let part = |name: &str| -> Result<(Tensor, Tensor)> {
            let layer = own.pp(name);
            Ok((
                layer.get((hidden, hidden), "weight")?,
                layer.get(hidden, "bias")?,
            ))
        };
        let (q_weight, q_bias) = part("query")?;
        let (k_weight, k_bias) = part("key")?;
        let (v_weight, v_bias) = part("value")?;
        // softmax(q·kᵀ/√d): scaling q's projection once is exact and free.
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (head_size as f64).sqrt();
        let weight = Tensor::cat(&[(q_weight * scale)?, k_weight, v_weight], 0)?;
        let bias = Tensor::cat(&[(q_bias * scale)?, k_bias, v_bias], 0)?;
        let eps = config.layer_norm_eps;
        Ok(Self {
            qkv: Dense::from_parts(&weight, bias)?,
            attention_out: Dense::load(
                &vb.pp("attention").pp("output").pp("dense"),
                hidden,
                hidden,
            )?,
            attention_norm: Norm::load(
                &vb.pp("attention").pp("output").pp("LayerNorm"),
                hidden,
                eps,
            )?,
            intermediate: Dense::load(
                &vb.pp("intermediate").pp("dense"),
                hidden,
                config.intermediate_size,
            )?,
            output: Dense::load(
                &vb.pp("output").pp("dense"),
                config.intermediate_size,
                hidden,
            )?,
            output_norm: Norm::load(&vb.pp("output").pp("LayerNorm"), hidden, eps)?,
            heads,
            activation: match config.hidden_act {
                HiddenAct::Gelu => Activation::Gelu,
                HiddenAct::GeluApproximate => Activation::GeluTanh,
                HiddenAct::Relu => Activation::Relu,
            },
        })
    }

    /// `xs`: `(batch × tokens, hidden)`; `mask`: `(batch, tokens)`, added
    /// to the attention scores.
    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let qkv = self.qkv.forward(xs, Activation::Identity)?;
        let context = kernels::attention(&qkv, mask, self.heads)?;
        let attended = self
            .attention_norm
            .forward(self.attention_out.forward_plus(&context, xs)?)?;
        let inner = self.intermediate.forward(&attended, self.activation)?;
        self.output_norm
            .forward(self.output.forward_plus(&inner, &attended)?)
    }
}

/// The encoder: embeddings plus the transformer layers.
pub(super) struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
}

impl Bert {
    /// Loads the weights named like Hugging Face's BERT (`embeddings.*`,
    /// `encoder.layer.N.*`, no model prefix).
    pub(super) fn load(vb: &VarBuilder, config: &Config) -> Result<Self> {
        let hidden = config.hidden_size;
        let embeddings = vb.pp("embeddings");
        let table = |name: &str, rows: usize| -> Result<Embedding> {
            Ok(Embedding::new(
                embeddings.pp(name).get((rows, hidden), "weight")?,
                hidden,
            ))
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&vb.pp("encoder").pp("layer").pp(i.to_string()), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words: table("word_embeddings", config.vocab_size)?,
            positions: table("position_embeddings", config.max_position_embeddings)?,
            token_types: table("token_type_embeddings", config.type_vocab_size)?,
            embedding_norm: Norm::load(&embeddings.pp("LayerNorm"), hidden, config.layer_norm_eps)?,
            layers,
            hidden,
        })
    }

    /// `(batch, tokens)` ids, type ids and attention mask (1 = real token)
    /// to `(batch, tokens, hidden)` token states.
    pub(super) fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let device = ids.device();
        #[allow(clippy::cast_possible_truncation)] // positions < max_position_embeddings
        let positions = Tensor::arange(0u32, tokens as u32, device)?;
        let embedded = (self.words.forward(ids)? + self.token_types.forward(type_ids)?)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        let mut xs = self
            .embedding_norm
            .forward(embedded.reshape((batch * tokens, self.hidden))?)?;
        // 0 for real tokens, -1e9 for padding, added to every score row.
        let mask = ((mask.to_dtype(DType::F32)? - 1.0)? * MASK_PENALTY)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask)?;
        }
        xs.reshape((batch, tokens, self.hidden))
    }
}
