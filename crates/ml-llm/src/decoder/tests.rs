//! The decoder against candle-transformers' quantized models on the real
//! GGUF files.
//!
//! With the quantized weights the two give the same logits for the same
//! prompt. Reading the prompt in chunks changes them slightly with
//! quantized weights — candle's quantized matmul rounds the activations to
//! 8 bits and sums in another order for several rows than for one, and the
//! rounding differences grow through the layers (llama.cpp behaves the same
//! across batch sizes) — so the chunking itself (cache positions, causal
//! mask, rotary offsets) is checked on the same weights in f32, where any
//! chunking must give the whole prompt's logits. Widening the hidden state
//! (see [`super::Widening`]) is exact arithmetic, so it is checked in f32
//! too; the quantized model as served must still pick the f32 model's
//! next token.

use std::path::PathBuf;

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use super::{Decoder, Widening};
use crate::gguf::{Architecture, GgufFile};
use crate::matmul::TiledMatMul;
use crate::tokenizer::LlmTokenizer;

const PROMPT: &str = "The lighthouse keeper recorded the weather every morning at six. Storms from the north brought waves that reached the door, and 42 ships passed in 1999.";

/// Logits as plain rows: one per forward call compared.
type Logits = Vec<Vec<f32>>;

struct Case {
    path: PathBuf,
    architecture: Architecture,
}

impl Case {
    fn new(folder: &str, file: &str, architecture: Architecture) -> Self {
        let path = ml_testkit::env::models_dir().join(folder).join(file);
        assert!(
            path.is_file(),
            "{} is missing: run scripts/fetch-models",
            path.display()
        );
        Self { path, architecture }
    }

    fn prompt(&self) -> Vec<u32> {
        let gguf = GgufFile::open(&self.path).unwrap_or_else(|e| panic!("{e}"));
        LlmTokenizer::from_gguf(&gguf)
            .and_then(|tokenizer| tokenizer.encode(PROMPT))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads the weights with `f32` (every tensor dequantized) or as stored,
    /// and hands them to `build`.
    fn load<T>(
        &self,
        f32: bool,
        build: impl FnOnce(
            candle_core::quantized::gguf_file::Content,
            &mut dyn crate::gguf::ReadSeek,
            &Device,
        ) -> candle_core::Result<T>,
    ) -> T {
        let gguf = GgufFile::open(&self.path).unwrap_or_else(|e| panic!("{e}"));
        let convert = |dtype: GgmlDType| (f32 && dtype != GgmlDType::F32).then_some(GgmlDType::F32);
        gguf.load_converted(&Device::Cpu, convert, build)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Our logits for `ids` read in `chunk`-token pieces, then for one
    /// more token, with the hidden state widened or not.
    fn ours(&self, f32: bool, widen: bool, ids: &[u32], chunk: usize) -> Logits {
        let architecture = self.architecture;
        let decoder = self.load(f32, |content, reader, device| {
            Decoder::from_gguf(&content, reader, device, architecture, 256, widen)
        });
        let mut cache = decoder.new_cache();
        run(ids, chunk, &mut |piece, position| {
            assert_eq!(cache.len(), position);
            decoder.forward(&input(piece), &mut cache)
        })
    }

    /// candle-transformers' logits for the same.
    fn reference(&self, f32: bool, ids: &[u32], chunk: usize) -> Logits {
        self.load(f32, |content, mut reader, device| {
            Ok(match self.architecture {
                Architecture::Llama => {
                    let mut model =
                        quantized_llama::ModelWeights::from_gguf(content, &mut reader, device)?;
                    run(ids, chunk, &mut |piece, position| {
                        model.forward(&input(piece), position)
                    })
                }
                Architecture::Qwen2 => {
                    let mut model =
                        quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, device)?;
                    run(ids, chunk, &mut |piece, position| {
                        model.forward(&input(piece), position)
                    })
                }
            })
        })
    }

    /// Asserts that `a` and `b` differ by less than `tolerance` anywhere.
    fn assert_close(&self, a: &Logits, b: &Logits, tolerance: f32, what: &str) {
        let difference = max_difference(a, b);
        assert!(
            difference < tolerance,
            "{:?}: {what} differ by {difference}",
            self.architecture
        );
    }

    fn check(&self) {
        let ids = self.prompt();
        let whole = ids.len();

        let ours_f32 = self.ours(true, false, &ids, whole);
        let reference_f32 = self.reference(true, &ids, whole);
        self.assert_close(&ours_f32, &reference_f32, 1e-4, "ours and candle's in f32");

        let ours = self.ours(false, false, &ids, whole);
        let reference = self.reference(false, &ids, whole);
        if TiledMatMul::available() {
            // The tiled kernels keep the activations' scales in f32 where
            // candle (as ggml) rounds them to f16, so the logits differ
            // slightly; they must be no further from the exact (f32) ones.
            let ours_error = mean_difference(&ours, &ours_f32);
            let candle_error = mean_difference(&reference, &ours_f32);
            assert!(
                ours_error <= candle_error * 1.1,
                "{:?}: mean logit error {ours_error}, candle's {candle_error}",
                self.architecture
            );
        } else {
            self.assert_close(&ours, &reference, 1e-4, "ours and candle's");
        }
        let widened_f32 = self.ours(true, true, &ids, whole);
        self.assert_close(&widened_f32, &ours_f32, 1e-4, "widened and model-wide");
        for chunk in [1, 7] {
            let chunked = self.ours(true, false, &ids, chunk);
            let what = format!("{chunk}-token chunks and the whole prompt");
            self.assert_close(&chunked, &ours_f32, 1e-3, &what);
        }
        let served = self.ours(false, Widening::pays_off(&Device::Cpu), &ids, whole);
        assert_eq!(
            argmax(&served[0]),
            argmax(&ours_f32[0]),
            "f32 and quantized as served agree"
        );
    }
}

fn input(piece: &[u32]) -> Tensor {
    Tensor::new(piece, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Feeds `ids` in `chunk`-token pieces and then the first id once more
/// through `forward(piece, position)`; the logits after the prompt and
/// after the extra token.
fn run(
    ids: &[u32],
    chunk: usize,
    forward: &mut dyn FnMut(&[u32], usize) -> candle_core::Result<Tensor>,
) -> Logits {
    let mut position = 0;
    let mut last = None;
    for piece in ids.chunks(chunk) {
        last = Some(forward(piece, position).unwrap_or_else(|e| panic!("{e}")));
        position += piece.len();
    }
    let prompt = last.unwrap_or_else(|| panic!("empty prompt"));
    let next = forward(&ids[..1], position).unwrap_or_else(|e| panic!("{e}"));
    [prompt, next]
        .iter()
        .map(|t| {
            t.flatten_all()
                .and_then(|t| t.to_vec1())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn max_difference(a: &Logits, b: &Logits) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn mean_difference(a: &Logits, b: &Logits) -> f32 {
    let (sum, count) = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold((0.0, 0usize), |(sum, count), d| (sum + d, count + 1));
    sum / count.max(1) as f32
}

fn argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

#[test]
fn llama_matches_candle_and_chunking_keeps_the_logits() {
    Case::new(
        "smollm2-135m-instruct",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        Architecture::Llama,
    )
    .check();
}

#[test]
fn qwen2_matches_candle_and_chunking_keeps_the_logits() {
    Case::new(
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        Architecture::Qwen2,
    )
    .check();
}
