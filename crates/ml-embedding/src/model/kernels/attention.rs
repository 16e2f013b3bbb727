//! Multi-head self-attention on the CPU, read straight out of the fused
//! query/key/value projection: no per-head copies of the whole batch, no
//! `batch × heads × tokens²` score tensor, one task per (text, head) pair.

use rayon::prelude::*;

use super::math::softmax_with_bias;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub(super) batch: usize,
    pub(super) tokens: usize,
    pub(super) heads: usize,
    pub(super) head_size: usize,
}

impl Heads {
    pub(super) fn hidden(self) -> usize {
        self.heads * self.head_size
    }
}

/// `softmax(q·kᵀ + mask)·v` for every text and head.
///
/// `qkv` is `(batch × tokens, 3 × hidden)`: each row holds the token's
/// query, key and value, each split into `heads` runs of `head_size`
/// (queries already scaled by `1/√head_size`). `mask` is `(batch, tokens)`,
/// added to every score row of its text (0 for real tokens, a large
/// negative number for padding). Returns the context, `(batch × tokens,
/// hidden)`, heads side by side as the output projection expects them.
pub(super) fn attend(qkv: &[f32], mask: &[f32], sizes: Heads) -> Vec<f32> {
    let Heads {
        batch,
        tokens,
        heads,
        head_size,
    } = sizes;
    let hidden = sizes.hidden();
    let blocks: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|task| {
            let (text, head) = (task / heads, task % heads);
            let rows = &qkv[text * tokens * 3 * hidden..(text + 1) * tokens * 3 * hidden];
            let bias = &mask[text * tokens..(text + 1) * tokens];
            attend_one_head(rows, bias, head * head_size, sizes)
        })
        .collect();
    let mut context = vec![0.0; batch * tokens * hidden];
    for (task, block) in blocks.iter().enumerate() {
        let (text, head) = (task / heads, task % heads);
        for (token, values) in block.chunks_exact(head_size).enumerate() {
            let start = (text * tokens + token) * hidden + head * head_size;
            context[start..start + head_size].copy_from_slice(values);
        }
    }
    context
}

/// One head of one text: `rows` are the text's `tokens` rows of the fused
/// projection, `offset` where the head's columns start within each third.
/// Returns `(tokens, head_size)`.
fn attend_one_head(rows: &[f32], bias: &[f32], offset: usize, sizes: Heads) -> Vec<f32> {
    let Heads {
        tokens, head_size, ..
    } = sizes;
    let hidden = sizes.hidden();
    let row = |token: usize, third: usize| {
        let start = token * 3 * hidden + third * hidden + offset;
        &rows[start..start + head_size]
    };
    // Keys transposed, `(head_size, tokens)`, so a score row is built from
    // whole-row multiply-adds, which vectorise, instead of dot products.
    let mut keys = vec![0.0; head_size * tokens];
    for token in 0..tokens {
        for (dim, &value) in row(token, 1).iter().enumerate() {
            keys[dim * tokens + token] = value;
        }
    }
    let mut context = vec![0.0; tokens * head_size];
    let mut scores = vec![0.0; tokens];
    for (query, out) in context.chunks_exact_mut(head_size).enumerate() {
        scores.fill(0.0);
        for (&q, keys) in row(query, 0).iter().zip(keys.chunks_exact(tokens)) {
            for (score, &key) in scores.iter_mut().zip(keys) {
                *score = q.mul_add(key, *score);
            }
        }
        softmax_with_bias(&mut scores, bias);
        for (key, &weight) in scores.iter().enumerate() {
            for (out, &value) in out.iter_mut().zip(row(key, 2)) {
                *out = weight.mul_add(value, *out);
            }
        }
    }
    context
}
