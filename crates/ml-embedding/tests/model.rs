//! Tests against the real all-MiniLM-L6-v2 model.
//!
//! The model is looked up in `$MODELS_DIR/all-MiniLM-L6-v2` (default
//! `$HOME/.cache/ml-workers/models`); `scripts/setup` fetches it. Without it
//! these tests fail: they are the only check that the numbers are right.
//!
//! Reference figures come from the sentence-transformers model card and
//! `MODELS.md`; speed is printed (`--nocapture`), never asserted.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use ml_embedding::{
    ChunkConfig, ChunkStrategy, ContentType, Embedder, EmbedderConfig, PassLimits, chunk, clean,
};

const MODEL: &str = "all-MiniLM-L6-v2";

fn model_dir() -> PathBuf {
    let models = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/ml-workers/models"))
        })
        .unwrap_or_else(|| PathBuf::from(".cache/ml-workers/models"));
    models.join(MODEL)
}

/// The model, loaded once for all tests; panics with the reason if it
/// cannot be loaded.
fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Result<Embedder, String>> = OnceLock::new();
    let loaded = EMBEDDER.get_or_init(|| {
        let dir = model_dir();
        Embedder::load(&dir, EmbedderConfig::default())
            .map_err(|err| format!("the model tests need {MODEL} in {}: {err}", dir.display()))
    });
    match loaded {
        Ok(embedder) => embedder,
        Err(message) => panic!("{message}"),
    }
}

fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    match embedder().embed(texts) {
        Ok(vectors) => vectors,
        Err(err) => panic!("embedding failed: {err}"),
    }
}

fn embed_one(text: &str) -> Vec<f32> {
    embed(&[text]).into_iter().next().unwrap_or_default()
}

/// [`Embedder::embed_in_passes`], with the number of texts of each pass,
/// smallest first (passes may run side by side and finish in any order).
fn embed_in_passes(texts: &[&str], limits: &PassLimits) -> (Vec<Vec<f32>>, Vec<usize>) {
    let passes = Mutex::new(Vec::new());
    let vectors = embedder()
        .embed_in_passes(texts, limits, |count, _| {
            passes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(count);
        })
        .unwrap_or_else(|err| panic!("embedding failed: {err}"));
    let mut passes = passes.into_inner().unwrap_or_else(PoisonError::into_inner);
    passes.sort_unstable();
    (vectors, passes)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn long_text(words: usize) -> String {
    let sentence =
        "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.";
    sentence
        .split(' ')
        .cycle()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn reports_its_shape() {
    let embedder = embedder();
    assert_eq!(embedder.dimension(), 384);
    assert_eq!(embedder.max_tokens(), 256);
    assert_eq!(embedder.max_content_tokens(), 254);
    assert_eq!(embedder.model_name(), MODEL);
}

#[test]
fn vectors_have_the_dimension_and_unit_length() {
    let vectors = embed(&[
        "Hello world",
        "",
        "A much longer sentence about cooking pasta at home.",
    ]);
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        assert!((norm(vector) - 1.0).abs() < 1e-5, "norm {}", norm(vector));
        assert!(vector.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn empty_batch_gives_nothing() {
    assert!(embed(&[]).is_empty());
}

#[test]
fn similarity_matches_the_reference() {
    let vectors = embed(&[
        "A man is eating food.",
        "Someone is having a meal.",
        "The stock market fell sharply today.",
    ]);
    let [food, meal, market] = [&vectors[0], &vectors[1], &vectors[2]];
    let similar = cosine(food, meal);
    let unrelated = cosine(food, market);
    println!("cos(food, meal) = {similar:.4}, cos(food, market) = {unrelated:.4}");
    assert!((similar - 0.69).abs() < 0.05, "cos(food, meal) = {similar}");
    assert!(unrelated < 0.2, "cos(food, market) = {unrelated}");
}

#[test]
fn padding_does_not_change_a_vector() {
    let short = "A man is eating food.";
    let long = long_text(150);
    let alone = embed_one(short);
    let batched = embed(&[long.as_str(), short, "Hi"]);
    let together = cosine(&alone, &batched[1]);
    assert!(
        together > 0.9999,
        "cosine alone vs in a padded batch: {together}"
    );
    let hi = cosine(&embed_one("Hi"), &batched[2]);
    assert!(hi > 0.9999, "cosine alone vs in a padded batch: {hi}");
}

#[test]
fn passes_keep_the_order_and_the_vectors() {
    let long = long_text(120);
    let texts = [
        long.as_str(),
        "Hi",
        "A man is eating food.",
        long.as_str(),
        "Rust",
    ];
    // Two texts per pass at most: three passes.
    let limits = PassLimits {
        max_tokens: 2048,
        max_texts: 2,
    };
    let (vectors, passes) = embed_in_passes(&texts, &limits);
    assert_eq!(passes, [1, 2, 2]);
    assert_eq!(vectors.len(), texts.len());
    for (text, vector) in texts.iter().zip(&vectors) {
        let similarity = cosine(&embed_one(text), vector);
        assert!(similarity > 0.9999, "{text:.20}: cosine {similarity}");
    }
}

#[test]
fn a_batch_that_fits_one_pass_is_shared_by_the_threads() {
    let texts: Vec<String> = (0..8)
        .map(|i| format!("Caption number {i} about a harbour at dawn."))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (vectors, passes) = embed_in_passes(&texts, &PassLimits::default());
    // As many passes as threads (at most one per text), as even as can be.
    let per_pass = texts.len().div_ceil(rayon::current_num_threads());
    assert_eq!(passes.len(), texts.len().div_ceil(per_pass), "{passes:?}");
    assert_eq!(passes.iter().sum::<usize>(), texts.len());
    for (text, vector) in texts.iter().zip(&vectors) {
        let similarity = cosine(&embed_one(text), vector);
        assert!(similarity > 0.9999, "{text}: cosine {similarity}");
    }
}

#[test]
fn long_text_is_truncated_not_refused() {
    let text = long_text(2_000);
    let embedder = embedder();
    let tokens = embedder.count_tokens(&text).unwrap_or_default();
    assert!(tokens > 2_000, "{tokens} tokens");
    let vector = embed_one(&text);
    assert_eq!(vector.len(), 384);
    assert!((norm(&vector) - 1.0).abs() < 1e-5);
    // Everything past the window is ignored: the vector equals that of the
    // text cut at 254 word pieces.
    let offsets = embedder.token_offsets(&text).unwrap_or_default();
    let cut = offsets.get(253).map_or(text.len(), |&(_, end)| end);
    let prefix = embed_one(&text[..cut]);
    let same = cosine(&vector, &prefix);
    assert!(same > 0.9999, "cosine truncated vs prefix: {same}");
}

#[test]
fn token_counts_and_offsets() {
    let embedder = embedder();
    assert_eq!(embedder.count_tokens("A man is eating food.").ok(), Some(6));
    assert_eq!(embedder.count_tokens("").ok(), Some(0));
    let text = "Héllo, unbelievable world!";
    let offsets = embedder.token_offsets(text).unwrap_or_default();
    assert_eq!(
        offsets.len(),
        embedder.count_tokens(text).unwrap_or_default()
    );
    let pieces: Vec<&str> = offsets.iter().map(|&(s, e)| &text[s..e]).collect();
    // Word pieces of one word are contiguous and cover it.
    assert_eq!(pieces.first(), Some(&"Héllo"));
    assert_eq!(pieces.last(), Some(&"!"));
    assert_eq!(pieces.concat(), "Héllo,unbelievableworld!");
}

#[test]
fn chunks_fit_the_window() {
    let embedder = embedder();
    let text = clean(&long_text(1_000), ContentType::Article);
    let config = ChunkConfig {
        max_tokens: embedder.max_content_tokens(),
        ..ChunkConfig::default()
    };
    for strategy in [ChunkStrategy::Sentence, ChunkStrategy::Fixed] {
        let chunks = chunk(&text, strategy, None, embedder, &config).unwrap_or_default();
        assert!(chunks.len() > 1, "{strategy}: {} chunks", chunks.len());
        for c in &chunks {
            assert!(
                c.token_count <= config.max_tokens,
                "{strategy}: {}",
                c.token_count
            );
            assert_eq!(embedder.count_tokens(&c.text).ok(), Some(c.token_count));
        }
    }
}

#[test]
fn max_tokens_is_capped_at_the_position_embeddings() {
    let loaded = Embedder::load(
        &model_dir(),
        EmbedderConfig {
            max_tokens: Some(4_096),
        },
    );
    assert_eq!(loaded.map(|e| e.max_tokens()).ok(), Some(512));
    let short = Embedder::load(
        &model_dir(),
        EmbedderConfig {
            max_tokens: Some(16),
        },
    );
    assert_eq!(short.map(|e| e.max_tokens()).ok(), Some(16));
}

/// Prints the speed of a batch of 32 short sentences; asserts nothing about it.
#[test]
fn throughput_of_a_batch_of_32() {
    let sentences: Vec<String> = (0..32)
        .map(|i| format!("Sentence number {i} is about cooking pasta and travelling to Italy."))
        .collect();
    let batch: Vec<&str> = sentences.iter().map(String::as_str).collect();
    embed(&batch); // warm-up
    let rounds = 5;
    let started = Instant::now();
    for _ in 0..rounds {
        assert_eq!(embed(&batch).len(), 32);
    }
    let elapsed = started.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "batch of 32 short sentences: {:.1} ms per batch, {:.0} sentences/s",
        elapsed * 1_000.0,
        32.0 / elapsed
    );
}

/// The crate's own encoder gives the same vectors as candle-transformers'
/// reference BERT on the same weights, tokens and pooling.
#[test]
fn own_encoder_matches_the_reference_bert() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::{BertModel, Config};

    let dir = model_dir();
    let config: Config = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let reference = BertModel::load(
        VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
        &config,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    tokenizer.with_padding(Some(tokenizers::PaddingParams::default()));
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 256,
            ..Default::default()
        }))
        .unwrap_or_else(|e| panic!("{e}"));
    let long = long_text(400);
    let texts = ["A man is eating food.", "Short.", long.as_str()];
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .unwrap_or_else(|e| panic!("{e}"));
    let tensor = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| {
        let rows: Vec<Vec<u32>> = encodings.iter().map(f).collect();
        Tensor::new(rows, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    };
    let ids = tensor(&|e| e.get_ids().to_vec());
    let types = tensor(&|e| e.get_type_ids().to_vec());
    let mask = tensor(&|e| e.get_attention_mask().to_vec());
    let hidden = reference
        .forward(&ids, &types, Some(&mask))
        .unwrap_or_else(|e| panic!("{e}"));
    let mask_f = mask
        .to_dtype(DType::F32)
        .and_then(|m| m.unsqueeze(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let pooled = hidden
        .broadcast_mul(&mask_f)
        .and_then(|h| h.sum(1))
        .and_then(|s| s.broadcast_div(&mask_f.sum(1)?))
        .and_then(|m| m.to_vec2::<f32>())
        .unwrap_or_else(|e| panic!("{e}"));
    let ours = embed(&texts);
    for ((text, expected), got) in texts.iter().zip(&pooled).zip(&ours) {
        let expected: Vec<f32> = {
            let n = norm(expected);
            expected.iter().map(|x| x / n).collect()
        };
        let similarity = cosine(&expected, got);
        assert!(similarity > 0.99999, "{text:.30}: cosine {similarity}");
    }
}
