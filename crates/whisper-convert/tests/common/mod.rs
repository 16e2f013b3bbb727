//! A small synthetic Whisper in CTranslate2 layout, built in memory, with
//! values that tell every tensor (and every block of a fused tensor) apart.

#![allow(dead_code)]

use std::io::{Cursor, Write};

use whisper_convert::ct2::{Ct2Writer, DType};
use whisper_convert::npz::npy_bytes;

/// Sizes of the synthetic model.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub n_vocab: usize,
    pub audio_ctx: usize,
    pub text_ctx: usize,
    pub d: usize,
    pub heads: usize,
    pub enc_layers: usize,
    pub dec_layers: usize,
    pub n_mels: usize,
}

pub const SMALL: Dims = Dims {
    n_vocab: 12,
    audio_ctx: 6,
    text_ctx: 5,
    d: 8,
    heads: 2,
    enc_layers: 2,
    dec_layers: 1,
    n_mels: 4,
};

/// The value every element of block `block` of the synthetic tensor with
/// id `id` holds (exact in f16).
pub fn value(id: usize, block: usize) -> f32 {
    (id * 4 + block) as f32 / 8.0
}

pub fn f16_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values
        .into_iter()
        .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
        .collect()
}

/// Builder of a synthetic CTranslate2 Whisper; `ids` maps each variable to
/// its id (its position in insertion order).
pub struct Synthetic {
    pub dims: Dims,
    pub writer: Ct2Writer,
    pub ids: Vec<String>,
    /// Variables to leave out.
    pub skip: Vec<String>,
    /// Variables written with another dtype (data filled with zero bytes).
    pub dtype_override: Vec<(String, DType)>,
    /// Variables written with another shape.
    pub shape_override: Vec<(String, Vec<usize>)>,
    /// Make the key block of fused biases non-zero.
    pub nonzero_key_bias: bool,
}

impl Synthetic {
    pub fn new(dims: Dims) -> Self {
        Self {
            dims,
            writer: Ct2Writer::new(),
            ids: Vec::new(),
            skip: Vec::new(),
            dtype_override: Vec::new(),
            shape_override: Vec::new(),
            nonzero_key_bias: false,
        }
    }

    pub fn id(&self, name: &str) -> usize {
        self.ids
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    }

    /// A float16 tensor of `blocks` equal row blocks; block `b` holds
    /// `value(id, b)`, except a zero key block in fused biases.
    fn tensor(&mut self, name: &str, shape: &[usize], blocks: usize, zero_block: Option<usize>) {
        let id = self.ids.len();
        self.ids.push(name.to_owned());
        if self.skip.iter().any(|s| s == name) {
            return;
        }
        let shape = match self.shape_override.iter().find(|(n, _)| n == name) {
            Some((_, shape)) => shape.clone(),
            None => shape.to_vec(),
        };
        let shape = shape.as_slice();
        let numel: usize = shape.iter().product();
        let per_block = numel / blocks;
        let values = (0..numel).map(|i| {
            let b = i / per_block;
            if Some(b) == zero_block && !self.nonzero_key_bias {
                0.0
            } else {
                value(id, b)
            }
        });
        if let Some((_, dtype)) = self.dtype_override.iter().find(|(n, _)| n == name) {
            self.writer
                .variable(name, shape, *dtype, vec![0; numel * dtype.size()]);
        } else {
            self.writer
                .variable(name, shape, DType::F16, f16_bytes(values));
        }
    }

    fn scalar(&mut self, name: &str, dtype: DType, value: i64) {
        let data = match dtype {
            DType::I8 => vec![value as u8],
            DType::I16 => (value as i16).to_le_bytes().to_vec(),
            _ => (value as i32).to_le_bytes().to_vec(),
        };
        self.writer.variable(name, &[], dtype, data);
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize, blocks: usize, zero: Option<usize>) {
        self.tensor(&format!("{prefix}/weight"), &[out, inp], blocks, None);
        self.tensor(&format!("{prefix}/bias"), &[out], blocks, zero);
    }

    fn norm(&mut self, prefix: &str, d: usize) {
        self.tensor(&format!("{prefix}/gamma"), &[d], 1, None);
        self.tensor(&format!("{prefix}/beta"), &[d], 1, None);
    }

    /// The MLP and the self-attention every encoder and decoder layer
    /// `p` has (fused q|k|v whose key bias is zero), in file order.
    fn ffn_and_self_attention(&mut self, p: &str, d: usize) {
        self.norm(&format!("{p}/ffn/layer_norm"), d);
        self.linear(&format!("{p}/ffn/linear_0"), 4 * d, d, 1, None);
        self.linear(&format!("{p}/ffn/linear_1"), d, 4 * d, 1, None);
        self.norm(&format!("{p}/self_attention/layer_norm"), d);
        self.linear(
            &format!("{p}/self_attention/linear_0"),
            3 * d,
            d,
            3,
            Some(1),
        );
        self.linear(&format!("{p}/self_attention/linear_1"), d, d, 1, None);
    }

    /// The model's file bytes, variables in CTranslate2's (alphabetical) order.
    pub fn build(mut self) -> (Vec<u8>, Self) {
        let Dims {
            n_vocab,
            audio_ctx,
            text_ctx,
            d,
            heads,
            enc_layers,
            dec_layers,
            n_mels,
        } = self.dims;
        self.scalar("decoder/activation", DType::I8, 3);
        self.scalar("decoder/alibi", DType::I8, 0);
        self.tensor("decoder/embeddings/weight", &[n_vocab, d], 1, None);
        for i in 0..dec_layers {
            let p = format!("decoder/layer_{i}");
            self.norm(&format!("{p}/attention/layer_norm"), d);
            self.linear(&format!("{p}/attention/linear_0"), d, d, 1, None);
            self.linear(&format!("{p}/attention/linear_1"), 2 * d, d, 2, Some(0));
            self.linear(&format!("{p}/attention/linear_2"), d, d, 1, None);
            self.ffn_and_self_attention(&p, d);
        }
        self.norm("decoder/layer_norm", d);
        self.scalar("decoder/num_heads", DType::I16, heads as i64);
        self.tensor(
            "decoder/position_encodings/encodings",
            &[text_ctx, d],
            1,
            None,
        );
        self.scalar("decoder/pre_norm", DType::I8, 1);
        self.scalar("decoder/scale_embeddings", DType::I8, 0);
        self.tensor("encoder/conv1/bias", &[d], 1, None);
        self.tensor("encoder/conv1/weight", &[d, n_mels, 3], 1, None);
        self.tensor("encoder/conv2/bias", &[d], 1, None);
        self.tensor("encoder/conv2/weight", &[d, d, 3], 1, None);
        for i in 0..enc_layers {
            let p = format!("encoder/layer_{i}");
            self.ffn_and_self_attention(&p, d);
        }
        self.norm("encoder/layer_norm", d);
        self.scalar("encoder/num_heads", DType::I16, heads as i64);
        self.tensor(
            "encoder/position_encodings/encodings",
            &[audio_ctx, d],
            1,
            None,
        );
        self.writer
            .alias("decoder/projection/weight", "decoder/embeddings/weight");
        (self.writer.to_bytes(), self)
    }
}

/// `mel_filters.npz` with `mel_{n}` for each `n` in `n_mels` (201 columns;
/// row r holds r + column / 1000).
pub fn mel_npz(n_mels: &[usize]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for &n in n_mels {
        let data: Vec<f32> = (0..n * 201)
            .map(|i| (i / 201) as f32 + (i % 201) as f32 / 1000.0)
            .collect();
        assert!(zip.start_file(format!("mel_{n}.npy"), options).is_ok());
        assert!(zip.write_all(&npy_bytes(n, 201, &data)).is_ok());
    }
    match zip.finish() {
        Ok(cursor) => cursor.into_inner(),
        Err(e) => panic!("zip: {e}"),
    }
}

/// A `.tiktoken` of `n` tokens (token i = `t{i}`, listed in reverse order).
pub fn tiktoken(n: usize) -> Vec<u8> {
    use base64::Engine as _;
    (0..n)
        .rev()
        .map(|i| {
            format!(
                "{} {i}\n",
                base64::engine::general_purpose::STANDARD.encode(format!("t{i}"))
            )
        })
        .collect::<String>()
        .into_bytes()
}
