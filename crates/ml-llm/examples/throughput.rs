//! Prompt and generation speed of one GGUF model under the load-time
//! options (re-quantisation, prompt chunk size), for before/after
//! measurements of speed work.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p ml-llm --example throughput -- MODEL.gguf [PROMPT_WORDS] [NEW_TOKENS]`
//!
//! Set `RAYON_NUM_THREADS` as the workers do (see `ml_runtime::cpu`): without
//! it candle reads `/proc/cpuinfo` on every f32 matrix product.

use std::time::Instant;

use ml_llm::{GenerationParams, Llm, LlmConfig, Message, SamplingParams};

const SENTENCES: [&str; 4] = [
    "The lighthouse keeper recorded the weather every morning at six.",
    "Storms from the north brought waves that reached the lighthouse door.",
    "Ships passing the lighthouse signalled the keeper with their horns.",
    "In winter the keeper repaired the great lamp and polished its lens.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: throughput MODEL.gguf [PROMPT_WORDS] [NEW_TOKENS]")?;
    let prompt_words: usize = args.next().map_or(Ok(400), |a| a.parse())?;
    let new_tokens: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let mut text = String::new();
    while text.split_whitespace().count() < prompt_words {
        for sentence in SENTENCES {
            text.push_str(sentence);
            text.push(' ');
        }
    }
    let messages = [Message::user(format!(
        "{text}\n\nSummarise the text above."
    ))];
    let params = GenerationParams {
        max_new_tokens: new_tokens,
        sampling: SamplingParams::default(),
    };
    println!(
        "| requantize | chunk | load s | prompt tokens | prompt tok/s | generated | gen tok/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (requantize, chunk) in [
        (false, 256),
        (true, 1),
        (true, 64),
        (true, 256),
        (true, 512),
    ] {
        let mut config = LlmConfig::new(&model);
        config.requantize = requantize;
        config.prompt_chunk_tokens = chunk;
        config.context_tokens = Some(4096);
        let started = Instant::now();
        let llm = Llm::load(&config)?;
        let load = started.elapsed().as_secs_f64();
        // Warm-up, then the measured run.
        llm.generate(
            &[Message::user("Hi")],
            &GenerationParams {
                max_new_tokens: 2,
                ..params
            },
        )?;
        let run = llm.generate(&messages, &params)?;
        println!(
            "| {requantize} | {chunk} | {load:.2} | {} | {:.1} | {} | {:.1} |",
            run.prompt_tokens,
            run.prompt_tokens_per_second(),
            run.generated_tokens,
            run.generated_tokens_per_second()
        );
    }
    Ok(())
}
