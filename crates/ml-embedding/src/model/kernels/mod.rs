//! The encoder's operations besides the matrix products, fused for the CPU.
//!
//! Composed from candle's operations, one layer makes some twenty passes
//! over its activations, most of them allocating a new tensor, plus a
//! `batch × heads` loop of tiny matrix products and scalar `expf`/`erff`
//! calls; together they cost more than the products themselves. Here, on
//! the CPU, the bias, activation and residual of a dense layer are one
//! in-place pass over its output (`epilogue`), and attention is one
//! operation per (text, head) that reads the fused q/k/v projection
//! directly (`attention`), with vectorised `exp` and `erf` (`math`). On other
//! devices the same computations are composed from candle's operations
//! (`composed`), which the tests also use to check the CPU kernels.

mod attention;
mod epilogue;
mod math;

pub(super) use epilogue::Activation;

use candle_core::{
    CpuStorage, CustomOp1, InplaceOp2, InplaceOp3, Layout, Result, Shape, Tensor, bail,
};

use attention::Heads;

/// `activation(xs + bias)`, `bias` added to every row of the 2-D `xs`,
/// which is overwritten on the CPU.
pub(super) fn add_bias(xs: Tensor, bias: &Tensor, activation: Activation) -> Result<Tensor> {
    if !xs.device().is_cpu() {
        return composed::add_bias(&xs, bias, activation);
    }
    xs.inplace_op2(bias, &AddBias(activation))?;
    Ok(xs)
}

/// `xs + bias + residual`, `bias` added to every row of the 2-D `xs`, which
/// is overwritten on the CPU.
pub(super) fn add_bias_and_residual(
    xs: Tensor,
    bias: &Tensor,
    residual: &Tensor,
) -> Result<Tensor> {
    if !xs.device().is_cpu() {
        return composed::add_bias_and_residual(&xs, bias, residual);
    }
    xs.inplace_op3(bias, residual, &AddBiasAndResidual)?;
    Ok(xs)
}

/// Layer normalisation of each row of the 2-D `xs`, scaled by `weight`
/// and shifted by `shift`; `xs` is overwritten on the CPU.
pub(super) fn layer_norm(xs: Tensor, weight: &Tensor, shift: &Tensor, eps: f32) -> Result<Tensor> {
    if !xs.device().is_cpu() {
        return candle_nn::ops::layer_norm(&xs, weight, shift, eps);
    }
    xs.inplace_op3(weight, shift, &LayerNorm(eps))?;
    Ok(xs)
}

/// Multi-head self-attention over texts packed end to end: `qkv` is the
/// fused projection `(tokens, 3 × hidden)` with the queries pre-scaled,
/// text `i` owning the next `lengths[i]` rows; returns the context
/// `(tokens, hidden)`.
pub(super) fn attention(qkv: &Tensor, lengths: &[usize], heads: usize) -> Result<Tensor> {
    let sizes = Heads {
        heads,
        head_size: qkv.dim(1)? / 3 / heads,
    };
    if !qkv.device().is_cpu() {
        return composed::attention(qkv, lengths, sizes);
    }
    qkv.apply_op1_no_bwd(&Attention { sizes, lengths })
}

struct AddBias(Activation);

impl InplaceOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        out: &mut CpuStorage,
        out_l: &Layout,
        bias: &CpuStorage,
        bias_l: &Layout,
    ) -> Result<()> {
        let bias = values(bias, bias_l)?;
        let out = rows_of(out, out_l, bias.len(), self.name())?;
        epilogue::add_bias(out, bias, self.0);
        Ok(())
    }
}

struct AddBiasAndResidual;

impl InplaceOp3 for AddBiasAndResidual {
    fn name(&self) -> &'static str {
        "add-bias-and-residual"
    }

    fn cpu_fwd(
        &self,
        out: &mut CpuStorage,
        out_l: &Layout,
        bias: &CpuStorage,
        bias_l: &Layout,
        residual: &CpuStorage,
        residual_l: &Layout,
    ) -> Result<()> {
        let bias = values(bias, bias_l)?;
        let out = rows_of(out, out_l, bias.len(), self.name())?;
        let residual = values(residual, residual_l)?;
        if residual.len() != out.len() {
            bail!(
                "residual has {} values, the output {}",
                residual.len(),
                out.len()
            );
        }
        epilogue::add_bias_and_residual(out, bias, residual);
        Ok(())
    }
}

struct LayerNorm(f32);

impl InplaceOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        out: &mut CpuStorage,
        out_l: &Layout,
        weight: &CpuStorage,
        weight_l: &Layout,
        shift: &CpuStorage,
        shift_l: &Layout,
    ) -> Result<()> {
        let (weight, shift) = (values(weight, weight_l)?, values(shift, shift_l)?);
        if weight.len() != shift.len() {
            bail!(
                "layer norm: {} weights, {} shifts",
                weight.len(),
                shift.len()
            );
        }
        let out = rows_of(out, out_l, weight.len(), self.name())?;
        epilogue::layer_norm(out, weight, shift, self.0);
        Ok(())
    }
}

struct Attention<'a> {
    sizes: Heads,
    lengths: &'a [usize],
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, qkv: &CpuStorage, qkv_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let hidden = self.sizes.hidden();
        let rows: usize = self.lengths.iter().sum();
        let qkv = values(qkv, qkv_l)?;
        if qkv.len() != rows * 3 * hidden {
            bail!(
                "attention: q/k/v has {} values, expected {rows} rows of 3 × {hidden}",
                qkv.len()
            );
        }
        let context = attention::attend(qkv, self.lengths, self.sizes);
        Ok((CpuStorage::F32(context), Shape::from((rows, hidden))))
    }
}

/// The `f32` values of a contiguous tensor's storage.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused kernels need contiguous tensors")
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// [`values_mut`], checked to be whole rows of `width` values (the length
/// of the bias or norm weight the operation applies to every row).
fn rows_of<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    width: usize,
    operation: &str,
) -> Result<&'a mut [f32]> {
    let out = values_mut(storage, layout)?;
    if width == 0 || !out.len().is_multiple_of(width) {
        bail!(
            "{operation}: {} values are not whole rows of {width}",
            out.len()
        );
    }
    Ok(out)
}

/// [`values`], writable.
fn values_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused kernels need contiguous tensors")
    };
    let CpuStorage::F32(values) = storage else {
        bail!("fused kernels need f32 tensors")
    };
    Ok(&mut values[start..end])
}

/// The same operations from candle's own, for devices other than the CPU.
mod composed {
    use candle_core::{Result, Tensor};

    use super::{Activation, Heads};

    pub(super) fn add_bias(xs: &Tensor, bias: &Tensor, activation: Activation) -> Result<Tensor> {
        let xs = xs.broadcast_add(bias)?;
        match activation {
            Activation::Identity => Ok(xs),
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
        }
    }

    pub(super) fn add_bias_and_residual(
        xs: &Tensor,
        bias: &Tensor,
        residual: &Tensor,
    ) -> Result<Tensor> {
        xs.broadcast_add(bias)? + residual
    }

    /// One text at a time: `(length, 3, heads, head_size)` rows to
    /// `(heads, length, head_size)` queries, keys and values.
    pub(super) fn attention(qkv: &Tensor, lengths: &[usize], sizes: Heads) -> Result<Tensor> {
        let Heads { heads, head_size } = sizes;
        let mut contexts = Vec::with_capacity(lengths.len());
        let mut start = 0;
        for &length in lengths {
            let qkv = qkv
                .narrow(0, start, length)?
                .reshape((length, 3, heads, head_size))?
                .permute((1, 2, 0, 3))?;
            start += length;
            let query = qkv.get(0)?.contiguous()?;
            let key = qkv.get(1)?.contiguous()?;
            let value = qkv.get(2)?.contiguous()?;
            let scores = query.matmul(&key.t()?)?;
            contexts.push(
                candle_nn::ops::softmax_last_dim(&scores)?
                    .matmul(&value)?
                    .transpose(0, 1)?
                    .reshape((length, sizes.hidden()))?,
            );
        }
        Tensor::cat(&contexts, 0)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// Deterministic values in about `-scale..scale`.
    fn tensor(shape: (usize, usize), seed: u32, scale: f32) -> Result<Tensor> {
        let values: Vec<f32> = (0..shape.0 * shape.1)
            .map(|i| {
                #[allow(clippy::cast_precision_loss)]
                let x = (i as f32).mul_add(0.618_034, seed as f32 * 0.1).sin();
                x * scale
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> Result<f32> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
    }

    #[test]
    fn epilogues_match_the_composed_operations() -> Result<()> {
        // 70 rows of 1 100: more than one parallel chunk, rows not aligned to it.
        let xs = tensor((70, 1_100), 1, 4.0)?;
        let bias = tensor((1, 1_100), 2, 1.0)?.squeeze(0)?;
        let residual = tensor((70, 1_100), 3, 2.0)?;
        for activation in [
            Activation::Identity,
            Activation::Gelu,
            Activation::GeluTanh,
            Activation::Relu,
        ] {
            let fused = add_bias(xs.copy()?, &bias, activation)?;
            let reference = composed::add_bias(&xs, &bias, activation)?;
            let difference = max_difference(&fused, &reference)?;
            assert!(difference < 1e-5, "{activation:?}: {difference}");
        }
        let fused = add_bias_and_residual(xs.copy()?, &bias, &residual)?;
        let reference = composed::add_bias_and_residual(&xs, &bias, &residual)?;
        assert!(max_difference(&fused, &reference)? < 1e-6);
        let shift = tensor((1, 1_100), 5, 0.5)?.squeeze(0)?;
        let fused = layer_norm(xs.copy()?, &bias, &shift, 1e-12)?;
        let reference = candle_nn::ops::layer_norm(&xs, &bias, &shift, 1e-12)?;
        assert!(max_difference(&fused, &reference)? < 1e-5);
        Ok(())
    }

    #[test]
    fn parameters_of_the_wrong_width_are_refused() -> Result<()> {
        let xs = tensor((4, 10), 1, 1.0)?;
        let bias = tensor((1, 3), 2, 1.0)?.squeeze(0)?;
        let err = add_bias(xs.copy()?, &bias, Activation::Identity)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not whole rows of 3"), "{err}");
        let err = layer_norm(xs.copy()?, &bias, &bias, 1e-12)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not whole rows of 3"), "{err}");
        Ok(())
    }

    #[test]
    fn attention_matches_the_composed_operations() -> Result<()> {
        let (heads, head_size) = (4, 8);
        // Texts of 19, 14 and 1 tokens: blocks of 16 columns, a tail, and
        // a text that can only attend to itself.
        let lengths = [19, 14, 1];
        let qkv = tensor((34, 3 * heads * head_size), 4, 1.5)?;
        let fused = attention(&qkv, &lengths, heads)?;
        let reference = composed::attention(&qkv, &lengths, Heads { heads, head_size })?;
        assert_eq!(fused.dims(), reference.dims());
        let difference = max_difference(&fused, &reference)?;
        assert!(difference < 1e-5, "{difference}");
        Ok(())
    }
}
