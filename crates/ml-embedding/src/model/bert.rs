//! A BERT encoder for inference only, built for CPU speed: one fused
//! query/key/value projection with the attention scale folded into the query
//! weights, every projection as one 2-D matrix product over all tokens of
//! the batch, and the rest in the fused operations of [`super::kernels`].
//! candle-transformers' general BERT runs a five-pass softmax and a
//! division over the whole `batch × heads × tokens²` score tensor instead,
//! which dominates on long texts.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

use super::kernels::{self, Activation};

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

    /// `xs`: `(tokens, hidden)`, the texts' tokens one text after the
    /// other, text `i` having `lengths[i]` of them.
    fn forward(&self, xs: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let qkv = self.qkv.forward(xs, Activation::Identity)?;
        let context = kernels::attention(&qkv, lengths, self.heads)?;
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
        })
    }

    /// Token states `(tokens, hidden)` of texts packed end to end, without
    /// padding: `ids`, `type_ids` and `positions` (each token's index in
    /// its text) are `(tokens,)`, and text `i` has `lengths[i]` tokens.
    pub(super) fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        positions: &Tensor,
        lengths: &[usize],
    ) -> Result<Tensor> {
        let embedded = ((self.words.forward(ids)? + self.token_types.forward(type_ids)?)?
            + self.positions.forward(positions)?)?;
        let mut xs = self.embedding_norm.forward(embedded)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, lengths)?;
        }
        Ok(xs)
    }
}
