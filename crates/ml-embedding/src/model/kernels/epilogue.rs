//! What follows a dense layer's matrix product, in place over its output:
//! the bias, then either the activation or the residual, in one pass; and
//! the layer normalisation that follows a residual.

use rayon::prelude::*;

use super::math::{gelu, gelu_tanh, sum, sum_of_squares};

/// The activation a dense layer ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::model) enum Activation {
    /// None: the projection is linear.
    Identity,
    /// Exact GELU (`hidden_act = "gelu"`).
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// Values per parallel task: below it, handing work to another thread
/// costs more than the work.
const CHUNK: usize = 16 * 1024;

/// `out[r] = activation(out[r] + bias)` for every row `r`.
pub(super) fn add_bias(out: &mut [f32], bias: &[f32], activation: Activation) {
    match activation {
        Activation::Identity => map_rows(out, bias, |x, b| x + b),
        Activation::Gelu => map_rows(out, bias, |x, b| gelu(x + b)),
        Activation::GeluTanh => map_rows(out, bias, |x, b| gelu_tanh(x + b)),
        Activation::Relu => map_rows(out, bias, |x, b| (x + b).max(0.0)),
    }
}

/// `out[r] = out[r] + bias + residual[r]` for every row `r`; `residual`
/// has `out`'s shape.
pub(super) fn add_bias_and_residual(out: &mut [f32], bias: &[f32], residual: &[f32]) {
    for_row_chunks(out, bias.len(), |offset, chunk| {
        let residual = &residual[offset..offset + chunk.len()];
        for (row, residual) in chunk
            .chunks_exact_mut(bias.len())
            .zip(residual.chunks_exact(bias.len()))
        {
            for ((x, &b), &r) in row.iter_mut().zip(bias).zip(residual) {
                *x += b + r;
            }
        }
    });
}

/// Normalises each row of `out` to mean 0 and variance 1 (`eps` added to
/// the variance), then scales by `weight` and shifts by `shift`.
pub(super) fn layer_norm(out: &mut [f32], weight: &[f32], shift: &[f32], eps: f32) {
    let width = weight.len();
    #[allow(clippy::cast_precision_loss)] // widths are small
    let count = width as f32;
    for_row_chunks(out, width, |_, chunk| {
        for row in chunk.chunks_exact_mut(width) {
            let mean = sum(row) / count;
            for x in row.iter_mut() {
                *x -= mean;
            }
            let scale = 1.0 / (sum_of_squares(row) / count + eps).sqrt();
            for ((x, &w), &b) in row.iter_mut().zip(weight).zip(shift) {
                *x = (*x * scale).mul_add(w, b);
            }
        }
    });
}

/// `out[r][i] = f(out[r][i], bias[i])`; generic over `f`, so each use
/// gets its own vectorised loop.
fn map_rows(out: &mut [f32], bias: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    for_row_chunks(out, bias.len(), |_, chunk| {
        for row in chunk.chunks_exact_mut(bias.len()) {
            for (x, &b) in row.iter_mut().zip(bias) {
                *x = f(*x, b);
            }
        }
    });
}

/// Calls `work(offset, chunk)` on chunks of whole rows of `width` values,
/// in parallel when `out` is large enough to pay for it.
fn for_row_chunks(out: &mut [f32], width: usize, work: impl Fn(usize, &mut [f32]) + Sync) {
    let rows_per_chunk = (CHUNK / width.max(1)).max(1);
    let chunk = rows_per_chunk * width;
    if out.len() <= chunk {
        work(0, out);
        return;
    }
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(index, values)| work(index * chunk, values));
}
