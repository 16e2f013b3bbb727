//! Prompt and generation speed of our candle LLM against llama.cpp, in the
//! same run, on the same GGUF files, threads and token counts.
//!
//! - **peer**: llama.cpp's own `llama-bench` (built by `scripts/bench` from
//!   the llama.cpp sources that llama-cpp-python's PyPI sdist vendors):
//!   `pp PROMPT_TOKENS` (a fresh context reads the prompt) and
//!   `tg GENERATED_TOKENS` (tokens generated one at a time), each repeated.
//! - **ours**: `ml_llm::Llm` as the worker loads it (Q4_1/Q5_x re-quantised
//!   to Q8_0, prompt read in 256-token chunks, a fresh KV cache per call):
//!   the same prompt length read with a one-token answer, and a generation
//!   of up to `GENERATED_TOKENS` after a short prompt.
//!
//! The two alternate `ROUNDS` times, so drift in the machine's speed hits
//! both; each side reports its median. Goal: ours / llama.cpp ≥ 1.0 for
//! prompt and for generation.
//!
//! Run: `scripts/bench summarization_throughput`. `LLAMA_BENCH` names
//! another llama-bench binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use ml_llm::{GenerationParams, Llm, LlmConfig, Message};
use ml_testkit::env;
use serde_json::Value;

use crate::common::median;

/// Both sides use this many threads.
const THREADS: usize = 2;
/// Prompt length of the prompt test.
const PROMPT_TOKENS: usize = 512;
/// Tokens of the generation test.
const GENERATED_TOKENS: usize = 128;
/// Alternating rounds; ours runs `REPEATS` times per round, llama-bench
/// `-r REPEATS`.
const ROUNDS: usize = 2;
const REPEATS: usize = 3;
/// Ours / peer at or over this meets the goal.
const GOAL: f64 = 1.0;

/// The benchmarked models: name, file under `$MODELS_DIR`.
const MODELS: [(&str, &str); 2] = [
    (
        "SmolLM2-135M Q4_1",
        "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    (
        "Qwen2.5-Coder-0.5B Q4_K_M",
        "qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ),
];

/// Tokens per second: prompt reading and generation.
#[derive(Debug, Clone, Copy)]
struct Rates {
    prompt: f64,
    generation: f64,
}

/// The peer's program: `LLAMA_BENCH`, else scripts/bench's build.
fn llama_bench() -> Result<PathBuf> {
    let path = std::env::var_os("LLAMA_BENCH").map_or_else(
        || env::cache_dir().join("llama.cpp/build/bin/llama-bench"),
        PathBuf::from,
    );
    ensure!(
        path.is_file(),
        "{} is missing: run `scripts/bench summarization_throughput` (it builds llama-bench)",
        path.display()
    );
    Ok(path)
}

/// One `llama-bench` run (`REPEATS` repetitions of each test): its mean
/// rates.
fn run_peer(bench: &Path, model: &Path) -> Result<Rates> {
    let output = Command::new(bench)
        .arg("-m")
        .arg(model)
        .args(["-p", &PROMPT_TOKENS.to_string()])
        .args(["-n", &GENERATED_TOKENS.to_string()])
        .args(["-t", &THREADS.to_string()])
        .args(["-r", &REPEATS.to_string()])
        .args(["-o", "json"])
        .output()
        .with_context(|| format!("running {}", bench.display()))?;
    ensure!(
        output.status.success(),
        "llama-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tests: Vec<Value> = serde_json::from_slice(&output.stdout).context("llama-bench JSON")?;
    let rate = |prompt: usize, generated: usize| {
        tests
            .iter()
            .find(|t| t["n_prompt"] == prompt && t["n_gen"] == generated)
            .and_then(|t| t["avg_ts"].as_f64())
            .with_context(|| format!("no pp{prompt}/tg{generated} result in llama-bench's output"))
    };
    Ok(Rates {
        prompt: rate(PROMPT_TOKENS, 0)?,
        generation: rate(0, GENERATED_TOKENS)?,
    })
}

/// A prompt of exactly `PROMPT_TOKENS` tokens of plain prose.
fn prompt_tokens(llm: &Llm) -> Result<Vec<u32>> {
    let sentence = "The lighthouse keeper recorded the weather every morning, and storms from the north brought waves that reached the door. ";
    let mut ids = llm
        .tokenizer()
        .encode(&sentence.repeat(PROMPT_TOKENS / 10))?;
    ensure!(ids.len() >= PROMPT_TOKENS, "the prompt text is too short");
    ids.truncate(PROMPT_TOKENS);
    Ok(ids)
}

/// Our median rates over `REPEATS` calls.
fn run_ours(llm: &Llm, prompt: &[u32]) -> Result<Rates> {
    let mut prompt_rates = Vec::new();
    let mut generation_rates = Vec::new();
    let story = [Message::user(
        "Write a long story about a lighthouse keeper and the storms of one winter.",
    )];
    for _ in 0..REPEATS {
        let read = llm.generate_from_tokens(
            prompt,
            &GenerationParams {
                max_new_tokens: 1,
                ..GenerationParams::default()
            },
        )?;
        prompt_rates.push(read.prompt_tokens_per_second());
        let written = llm.generate(
            &story,
            &GenerationParams {
                max_new_tokens: GENERATED_TOKENS,
                ..GenerationParams::default()
            },
        )?;
        ensure!(
            written.generated_tokens >= GENERATED_TOKENS / 2,
            "the story stopped after {} tokens",
            written.generated_tokens
        );
        generation_rates.push(written.generated_tokens_per_second());
    }
    Ok(Rates {
        prompt: median(prompt_rates),
        generation: median(generation_rates),
    })
}

#[allow(unsafe_code)]
fn main() -> Result<()> {
    // SAFETY: the first statement of `main`: no other thread runs yet.
    unsafe { common::compute_with_threads(THREADS) };
    if !std::env::args().any(|a| a == "--bench") {
        println!("summarization_throughput: run with `cargo bench` (skipped under cargo test)");
        return Ok(());
    }
    let bench = llama_bench()?;
    println!(
        "LLM speed, tokens/s: pp{PROMPT_TOKENS} (prompt) and tg{GENERATED_TOKENS} (generation), \
         {THREADS} threads, median of {ROUNDS} alternating rounds; ours/llama.cpp"
    );
    let mut worst = f64::INFINITY;
    for (name, file) in MODELS {
        let path = env::models_dir().join(file);
        ensure!(
            path.is_file(),
            "{} is missing: run scripts/fetch-models",
            path.display()
        );
        let mut config = LlmConfig::new(&path);
        config.context_tokens = Some(2048);
        let llm = Llm::load(&config)?;
        let prompt = prompt_tokens(&llm)?;
        run_ours(&llm, &prompt[..64])?; // warm-up
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            peer.push(run_peer(&bench, &path)?);
            ours.push(run_ours(&llm, &prompt)?);
        }
        let pick =
            |rates: &[Rates], field: fn(&Rates) -> f64| median(rates.iter().map(field).collect());
        for (test, field) in [
            ("prompt", (|r: &Rates| r.prompt) as fn(&Rates) -> f64),
            ("generation", |r: &Rates| r.generation),
        ] {
            let (ours, peer) = (pick(&ours, field), pick(&peer, field));
            let ratio = ours / peer;
            worst = worst.min(ratio);
            println!(
                "{name:<28} {test:<10} ours {ours:>8.1}  llama.cpp {peer:>8.1}  ratio {ratio:.2}"
            );
        }
    }
    let verdict = if worst >= GOAL { "met" } else { "NOT met" };
    println!("goal (ours >= {GOAL:.1} x llama.cpp): {verdict}, worst ratio {worst:.2}");
    Ok(())
}
