//! Multi-head self-attention on the CPU over texts packed end to end, read
//! straight out of the fused query/key/value projection: no padding, no
//! mask, no per-head copies of the whole batch, no score tensor; one task
//! per (text, head) pair.

use rayon::prelude::*;

use super::math::softmax;

/// The head layout of one attention call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub(super) heads: usize,
    pub(super) head_size: usize,
}

impl Heads {
    pub(super) fn hidden(self) -> usize {
        self.heads * self.head_size
    }
}

/// `softmax(q·kᵀ)·v` for every text and head, each text attending only to
/// its own tokens.
///
/// `qkv` is `(tokens, 3 × hidden)`, the texts' tokens one text after the
/// other, text `i` having `lengths[i]` of them: each row holds the token's
/// query, key and value, each split into `heads` runs of `head_size`
/// (queries already scaled by `1/√head_size`). Returns the context,
/// `(tokens, hidden)`, heads side by side as the output projection expects
/// them.
pub(super) fn attend(qkv: &[f32], lengths: &[usize], sizes: Heads) -> Vec<f32> {
    let Heads { heads, head_size } = sizes;
    let hidden = sizes.hidden();
    let starts: Vec<usize> = lengths
        .iter()
        .scan(0, |start, &length| {
            let this = *start;
            *start += length;
            Some(this)
        })
        .collect();
    let blocks: Vec<Vec<f32>> = (0..lengths.len() * heads)
        .into_par_iter()
        .map(|task| {
            let (text, head) = (task / heads, task % heads);
            let (start, length) = (starts[text], lengths[text]);
            let rows = &qkv[start * 3 * hidden..(start + length) * 3 * hidden];
            attend_one_head(rows, length, head * head_size, sizes)
        })
        .collect();
    let mut context = vec![0.0; lengths.iter().sum::<usize>() * hidden];
    for (task, block) in blocks.iter().enumerate() {
        let (text, head) = (task / heads, task % heads);
        for (token, values) in block.chunks_exact(head_size).enumerate() {
            let start = (starts[text] + token) * hidden + head * head_size;
            context[start..start + head_size].copy_from_slice(values);
        }
    }
    context
}

/// One head of one text: `rows` are the text's `tokens` rows of the fused
/// projection, `offset` where the head's columns start within each third.
/// Returns `(tokens, head_size)`.
fn attend_one_head(rows: &[f32], tokens: usize, offset: usize, sizes: Heads) -> Vec<f32> {
    let head_size = sizes.head_size;
    let hidden = sizes.hidden();
    let row = |token: usize, third: usize| {
        let start = token * 3 * hidden + third * hidden + offset;
        &rows[start..start + head_size]
    };
    // Keys transposed, `(head_size, tokens)`, and values, `(tokens,
    // head_size)`, each in one piece, so that both products below are
    // weighted sums of contiguous rows.
    let mut keys = vec![0.0; head_size * tokens];
    let mut values = Vec::with_capacity(tokens * head_size);
    for token in 0..tokens {
        for (dim, &value) in row(token, 1).iter().enumerate() {
            keys[dim * tokens + token] = value;
        }
        values.extend_from_slice(row(token, 2));
    }
    let mut context = vec![0.0; tokens * head_size];
    let mut scores = vec![0.0; tokens];
    for (query, out) in context.chunks_exact_mut(head_size).enumerate() {
        weighted_sum_of_rows(row(query, 0), &keys, &mut scores);
        softmax(&mut scores);
        weighted_sum_of_rows(&scores, &values, out);
    }
    context
}

/// Columns per block of [`weighted_sum_of_rows`]: sums for this many
/// columns stay in registers while the rows stream past.
const BLOCK: usize = 16;

/// `out = Σᵢ weights[i] · matrix[i]`, where `matrix` has `weights.len()`
/// rows of `out.len()` values: both `q·kᵀ` (a query's weights over the
/// transposed keys) and `p·v` (attention weights over the values).
fn weighted_sum_of_rows(weights: &[f32], matrix: &[f32], out: &mut [f32]) {
    let width = out.len();
    let full = width / BLOCK * BLOCK;
    for start in (0..full).step_by(BLOCK) {
        // Two interleaved sums (even and odd rows): twice the independent
        // multiply-add chains.
        let (mut even, mut odd) = ([0.0; BLOCK], [0.0; BLOCK]);
        let mut pairs = weights.chunks_exact(2).zip(matrix.chunks_exact(2 * width));
        for (pair, rows) in &mut pairs {
            let (first, second) = rows.split_at(width);
            accumulate(&mut even, pair[0], &first[start..start + BLOCK]);
            accumulate(&mut odd, pair[1], &second[start..start + BLOCK]);
        }
        if let [last] = weights.chunks_exact(2).remainder() {
            let row = &matrix[(weights.len() - 1) * width..];
            accumulate(&mut even, *last, &row[start..start + BLOCK]);
        }
        for ((out, even), odd) in out[start..].iter_mut().zip(even).zip(odd) {
            *out = even + odd;
        }
    }
    if full < width {
        let tail = &mut out[full..];
        tail.fill(0.0);
        for (&weight, row) in weights.iter().zip(matrix.chunks_exact(width)) {
            accumulate(tail, weight, &row[full..]);
        }
    }
}

/// `sums[j] += weight · row[j]`.
#[inline(always)]
fn accumulate(sums: &mut [f32], weight: f32, row: &[f32]) {
    for (sum, &value) in sums.iter_mut().zip(row) {
        *sum = weight.mul_add(value, *sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_sums_of_rows_for_every_width() {
        for (rows, width) in [(1, 1), (7, 5), (6, 16), (5, 33), (32, 64), (19, 50)] {
            #[allow(clippy::cast_precision_loss)]
            let matrix: Vec<f32> = (0..rows * width).map(|i| (i as f32 * 0.37).cos()).collect();
            #[allow(clippy::cast_precision_loss)]
            let weights: Vec<f32> = (0..rows).map(|i| (i as f32 * 1.3).sin()).collect();
            let mut out = vec![f32::NAN; width];
            weighted_sum_of_rows(&weights, &matrix, &mut out);
            for (column, got) in out.iter().enumerate() {
                let want: f32 = (0..rows)
                    .map(|r| weights[r] * matrix[r * width + column])
                    .sum();
                assert!(
                    (got - want).abs() < 1e-5,
                    "{rows}x{width}[{column}]: {got} vs {want}"
                );
            }
        }
    }
}
