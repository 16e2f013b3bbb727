//! The activations quantized to 8 bits in blocks of 32, as llama.cpp's
//! `Q8_1`: the kernels multiply them with the weights in integers.

use super::tiles::BLOCK;

/// 32 activations as `d · qs[i]`, with `s = d · Σ qs` for the weights'
/// offset terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ActivationBlock {
    /// The quantized values.
    pub(super) qs: [i8; BLOCK],
    /// The scale.
    pub(super) d: f32,
    /// The scale times the sum of the quantized values.
    pub(super) s: f32,
}

impl ActivationBlock {
    const ZERO: Self = Self {
        qs: [0; BLOCK],
        d: 0.0,
        s: 0.0,
    };

    /// Quantizes 32 values: the largest magnitude maps to ±127.
    fn quantize(values: &[f32]) -> Self {
        let max = values.iter().fold(0f32, |max, v| max.max(v.abs()));
        let d = max / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut block = Self::ZERO;
        let mut sum = 0i32;
        for (q, v) in block.qs.iter_mut().zip(values) {
            // |v · inverse| <= 127, so the cast cannot saturate.
            *q = (v * inverse).round() as i8;
            sum += i32::from(*q);
        }
        block.d = d;
        block.s = d * sum as f32;
        block
    }
}

/// Quantizes `rows` rows of `k` values (a multiple of 32), row after row,
/// `k / 32` blocks each.
pub(super) fn quantize_rows(values: &[f32], k: usize) -> Vec<ActivationBlock> {
    let blocks = k / BLOCK;
    let rows = values.len() / k;
    let mut out = vec![ActivationBlock::ZERO; rows * blocks];
    let quantize_row = |row: usize, out: &mut [ActivationBlock]| {
        let values = &values[row * k..(row + 1) * k];
        for (block, chunk) in out.iter_mut().zip(values.chunks_exact(BLOCK)) {
            *block = ActivationBlock::quantize(chunk);
        }
    };
    if rows == 1 {
        quantize_row(0, &mut out);
        return out;
    }
    let rows_out: Vec<_> = out.chunks_mut(blocks).map(std::sync::Mutex::new).collect();
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        for row in range {
            let mut slot = rows_out[row].lock().unwrap_or_else(|e| e.into_inner());
            quantize_row(row, &mut slot);
        }
    });
    drop(rows_out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_keeps_its_values_within_half_a_step() {
        let values: Vec<f32> = (0..32).map(|i| (i as f32 - 13.5) * 0.37).collect();
        let block = ActivationBlock::quantize(&values);
        assert!(block.qs.iter().any(|q| q.unsigned_abs() == 127));
        let mut sum = 0.0;
        for (q, v) in block.qs.iter().zip(&values) {
            let restored = block.d * f32::from(*q);
            assert!(
                (restored - v).abs() <= block.d / 2.0 + 1e-6,
                "{restored} vs {v}"
            );
            sum += restored;
        }
        assert!((block.s - sum).abs() < 1e-3, "{} vs {sum}", block.s);
    }

    #[test]
    fn zeros_quantize_to_zeros() {
        let block = ActivationBlock::quantize(&[0.0; 32]);
        assert_eq!(block, ActivationBlock::ZERO);
    }

    #[test]
    fn rows_are_quantized_in_order() {
        let values: Vec<f32> = (0..3 * 64)
            .map(|i| (i % 7) as f32 - (i / 64) as f32)
            .collect();
        let blocks = quantize_rows(&values, 64);
        assert_eq!(blocks.len(), 6);
        for (i, chunk) in values.chunks_exact(32).enumerate() {
            assert_eq!(blocks[i], ActivationBlock::quantize(chunk));
        }
    }
}
