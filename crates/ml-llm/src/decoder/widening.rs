//! Widening the hidden state to whole 256-value blocks, so candle's tiled
//! int8 kernels take every product that reads it.
//!
//! candle's fastest x86 kernels for quantized weights (AVX-512-VNNI or
//! AVX-VNNI, weights repacked into tiles, for Q8_0, Q4_K and Q6_K) only
//! take matrices whose rows hold a multiple of 256 values; others fall back
//! to one generic dot product per row and column. SmolLM2-135M is 576 wide
//! and Qwen2.5-0.5B 896, so every projection reading the hidden state
//! misses them. Padding the hidden state with zeros to 768 (1024) costs a
//! third (an eighth) more multiplications and weight bytes, and makes
//! those products 2-9x faster on an AVX-512-VNNI CPU (Q8_0, one thread:
//! 576→768 × 1536 from 0.105 to 0.044 ms for one token and from 18.3 to
//! 7.0 ms for 256; 896→1024 × 4864 from 0.287 to 0.070 ms and from 91 to
//! 10 ms).
//!
//! The widened model computes the same function:
//! - the added columns of the embeddings and of every matrix reading the
//!   hidden state are zero, so the padding never contributes;
//! - the added rows of the matrices writing into it (attention output,
//!   feed-forward down) are zero, so the padding stays zero;
//! - an RMS norm averages the squares over `to` values instead of `from`:
//!   with `r = from / to`, scaling its weight by `√r` and its epsilon by
//!   `r` gives exactly the unpadded result, as
//!   `x / √(r·m + r·ε) · √r·w = x / √(m + ε) · w`.

use candle_core::quantized::{QTensor, ggml_file};
use candle_core::{D, Device, Result, Tensor};
use candle_nn::RmsNorm;

use crate::matmul::TiledMatMul;

/// The block the tiled kernels need the rows of a matrix to be made of.
const KERNEL_BLOCK: usize = 256;

/// How the hidden state is widened: from the model's width to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Widening {
    from: usize,
    to: usize,
}

impl Widening {
    /// Keeps the model's width.
    pub(crate) fn none(width: usize) -> Self {
        Self {
            from: width,
            to: width,
        }
    }

    /// Widens to the next multiple of 256.
    pub(crate) fn to_kernel_blocks(width: usize) -> Self {
        Self {
            from: width,
            to: width.next_multiple_of(KERNEL_BLOCK),
        }
    }

    /// Whether widening pays off on `device`: where candle runs the tiled
    /// int8 kernels (a CPU with AVX-512-VNNI or AVX-VNNI) and this crate's
    /// own, which take any whole number of 32-value blocks, do not.
    pub(crate) fn pays_off(device: &Device) -> bool {
        device.is_cpu() && cpu_has_int8_tiles() && !TiledMatMul::available()
    }

    /// The width the decoder computes with.
    pub(crate) fn width(self) -> usize {
        self.to
    }

    fn added(self) -> usize {
        self.to - self.from
    }

    /// A matrix reading the hidden state, `[n, from]`, as `[n, to]`.
    pub(crate) fn columns(self, matrix: QTensor) -> Result<QTensor> {
        if self.added() == 0 {
            return Ok(matrix);
        }
        let (rows, columns) = matrix.shape().dims2()?;
        self.check(columns, "columns")?;
        let dtype = matrix.dtype();
        let block = dtype.block_size();
        if !self.from.is_multiple_of(block) || !self.added().is_multiple_of(block) {
            candle_core::bail!("cannot widen {dtype:?} rows of {} values", self.from);
        }
        let bytes_per = |values: usize| values / block * dtype.type_size();
        let (row_bytes, added_bytes) = (bytes_per(self.from), bytes_per(self.added()));
        let data = matrix.data()?;
        let mut widened = Vec::with_capacity(rows * (row_bytes + added_bytes));
        for row in data.chunks_exact(row_bytes) {
            widened.extend_from_slice(row);
            // All-zero bytes are a block of zeros in every GGML type.
            widened.resize(widened.len() + added_bytes, 0);
        }
        ggml_file::qtensor_from_ggml(dtype, &widened, vec![rows, self.to], &matrix.device())
    }

    /// A matrix writing into the hidden state, `[from, k]`, as `[to, k]`.
    pub(crate) fn rows(self, matrix: QTensor) -> Result<QTensor> {
        if self.added() == 0 {
            return Ok(matrix);
        }
        let (rows, columns) = matrix.shape().dims2()?;
        self.check(rows, "rows")?;
        let mut widened = matrix.data()?.into_owned();
        widened.resize(widened.len() / rows * self.to, 0);
        ggml_file::qtensor_from_ggml(
            matrix.dtype(),
            &widened,
            vec![self.to, columns],
            &matrix.device(),
        )
    }

    /// A matrix both reading and writing the hidden state, `[from, from]`,
    /// as `[to, to]`.
    pub(crate) fn square(self, matrix: QTensor) -> Result<QTensor> {
        self.rows(self.columns(matrix)?)
    }

    /// Activations `[.., from]` (the attention's heads, put side by side)
    /// as `[.., to]`, for a matrix widened by [`Self::square`].
    pub(crate) fn activations(self, xs: &Tensor) -> Result<Tensor> {
        if self.added() == 0 {
            return Ok(xs.clone());
        }
        xs.pad_with_zeros(D::Minus1, 0, self.added())
    }

    /// An RMS norm over the hidden state, its weight `[from]` and epsilon
    /// adjusted so it normalises the widened state exactly as the model's.
    pub(crate) fn rms_norm(self, weight: &QTensor, eps: f64) -> Result<RmsNorm> {
        let weight = weight.dequantize(&weight.device())?;
        self.check(weight.dim(0)?, "norm weights")?;
        #[allow(clippy::cast_precision_loss)] // widths are far below 2^52
        let ratio = self.from as f64 / self.to as f64;
        let weight = (weight * ratio.sqrt())?.pad_with_zeros(0, 0, self.added())?;
        Ok(RmsNorm::new(weight, eps * ratio))
    }

    fn check(self, found: usize, what: &str) -> Result<()> {
        if found == self.from {
            Ok(())
        } else {
            candle_core::bail!("expected {} {what}, found {found}", self.from)
        }
    }
}

/// Whether candle picks its tiled int8 kernels on this CPU (the test
/// candle-core 0.11 makes, in `quantized::repack_x86`).
fn cpu_has_int8_tiles() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Module;
    use candle_core::quantized::GgmlDType;

    use super::*;

    fn matrix(rows: usize, columns: usize) -> Tensor {
        #[allow(clippy::cast_precision_loss)]
        let values: Vec<f32> = (0..rows * columns)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        Tensor::from_vec(values, (rows, columns), &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn widths_round_up_to_kernel_blocks() {
        assert_eq!(Widening::to_kernel_blocks(576).width(), 768);
        assert_eq!(Widening::to_kernel_blocks(896).width(), 1024);
        assert_eq!(Widening::to_kernel_blocks(1024).width(), 1024);
        assert_eq!(Widening::none(576).width(), 576);
    }

    #[test]
    fn widened_matrices_hold_the_same_values_and_zeros() -> Result<()> {
        let widening = Widening::to_kernel_blocks(64 * 9);
        let original = matrix(64 * 9, 64 * 9);
        for dtype in [GgmlDType::F32, GgmlDType::Q8_0, GgmlDType::Q4_1] {
            let quantized = QTensor::quantize(&original, dtype)?;
            let expected = quantized.dequantize(&Device::Cpu)?;
            let widened = widening
                .square(QTensor::quantize(&original, dtype)?)?
                .dequantize(&Device::Cpu)?;
            assert_eq!(widened.dims(), [768, 768]);
            let kept = widened.narrow(0, 0, 576)?.narrow(1, 0, 576)?;
            let difference = (kept - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(difference == 0.0, "{dtype:?}: {difference}");
            let added_rows = widened.narrow(0, 576, 192)?.abs()?.max_all()?;
            let added_columns = widened.narrow(1, 576, 192)?.abs()?.max_all()?;
            assert_eq!(added_rows.to_scalar::<f32>()?, 0.0, "{dtype:?} rows");
            assert_eq!(added_columns.to_scalar::<f32>()?, 0.0, "{dtype:?} columns");
        }
        Ok(())
    }

    #[test]
    fn the_widened_norm_gives_the_models_result() -> Result<()> {
        let widening = Widening::to_kernel_blocks(576);
        let weight = matrix(1, 576).flatten_all()?;
        let xs = matrix(3, 576);
        let eps = 1e-5;
        let expected = RmsNorm::new(weight.clone(), eps).forward(&xs)?;
        let widened = widening
            .rms_norm(&QTensor::quantize(&weight, GgmlDType::F32)?, eps)?
            .forward(&widening.activations(&xs)?)?;
        let kept = widened.narrow(1, 0, 576)?;
        let difference = (kept - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(difference < 1e-5, "{difference}");
        let padding = widened.narrow(1, 576, 192)?.abs()?.max_all()?;
        assert_eq!(padding.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
