//! Generation on the real SmolLM2 model: chat rendering, determinism,
//! seeded sampling, parallel sessions sharing one model, limits.

mod common;

use std::sync::Arc;

use ml_llm::{
    GenerationParams, Llm, LlmConfig, LlmError, Message, SamplingParams, StopReason,
    truncate_to_tokens,
};

const ARTICLE: &str = "Rust's ownership model lets the compiler prove memory safety without a garbage collector. Every value has a single owner, borrows are checked at compile time, and data races are rejected before the program ever runs.";

fn summarise(llm: &Llm, text: &str, params: &GenerationParams) -> ml_llm::Generation {
    let messages = [
        Message::system("You summarise text."),
        Message::user(format!(
            "{text}\n\nSummarise the text above in one sentence."
        )),
    ];
    llm.generate(&messages, params)
        .unwrap_or_else(|e| panic!("generation failed: {e}"))
}

fn greedy(max_new_tokens: usize) -> GenerationParams {
    GenerationParams {
        max_new_tokens,
        sampling: SamplingParams::default(),
    }
}

#[test]
fn the_chat_prompt_is_chatml() {
    let llm = common::smollm2();
    let tokenizer = llm.tokenizer();
    let ids = llm
        .template()
        .render(
            &[Message::system("Be brief."), Message::user("Hi")],
            tokenizer,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let text = tokenizer.decode(&ids).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, "system\nBe brief.\nuser\nHi\nassistant\n");
    assert_eq!(
        ids.iter().filter(|&&id| id == 1).count(),
        3,
        "three <|im_start|>"
    );
    assert_eq!(
        ids.iter().filter(|&&id| id == 2).count(),
        2,
        "two <|im_end|>"
    );
    assert_eq!(ids[0], 1);
}

#[test]
fn greedy_summaries_are_deterministic_and_about_the_input() {
    let llm = common::smollm2();
    assert_eq!(
        llm.requantized(),
        !llm.tiled(),
        "Q4_1 tensors are converted to Q8_0 at load where the tiled kernels do not run them"
    );
    let first = summarise(&llm, ARTICLE, &greedy(48));
    let second = summarise(&llm, ARTICLE, &greedy(48));
    assert_eq!(first.text, second.text);
    assert!(!first.text.is_empty());
    let lower = first.text.to_lowercase();
    assert!(
        ["rust", "memory", "ownership", "compiler", "garbage"]
            .iter()
            .any(|noun| lower.contains(noun)),
        "the summary mentions the subject: {:?}",
        first.text
    );
    assert!(first.generated_tokens <= 48);
    assert!(first.prompt_tokens > 40);
    assert!(first.prompt_tokens_per_second() > 0.0);
    eprintln!(
        "prompt {} tokens at {:.1}/s, generated {} at {:.1}/s: {:?}",
        first.prompt_tokens,
        first.prompt_tokens_per_second(),
        first.generated_tokens,
        first.generated_tokens_per_second(),
        first.text
    );
}

#[test]
fn seeded_sampling_repeats_and_max_tokens_stops() {
    let llm = common::smollm2();
    let sampled = |seed| GenerationParams {
        max_new_tokens: 24,
        sampling: SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            seed,
            ..SamplingParams::default()
        },
    };
    let a = summarise(&llm, ARTICLE, &sampled(7));
    let b = summarise(&llm, ARTICLE, &sampled(7));
    assert_eq!(a.text, b.text, "same seed, same output");
    let tiny = summarise(&llm, ARTICLE, &greedy(3));
    assert_eq!(tiny.generated_tokens, 3);
    assert_eq!(tiny.stop_reason, StopReason::MaxTokens);
}

#[test]
fn parallel_sessions_share_the_model_and_match_sequential_runs() {
    let llm = common::smollm2();
    let texts = [
        ARTICLE.to_owned(),
        "The city council approved a new bicycle lane network on Tuesday. The lanes will connect the train station, the university and the old harbour, and construction starts in spring.".to_owned(),
    ];
    let sequential: Vec<String> = texts
        .iter()
        .map(|text| summarise(&llm, text, &greedy(32)).text)
        .collect();
    let handles: Vec<_> = texts
        .iter()
        .cloned()
        .map(|text| {
            let llm = Arc::clone(&llm);
            std::thread::spawn(move || summarise(&llm, &text, &greedy(32)).text)
        })
        .collect();
    let parallel: Vec<String> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| panic!("generation thread panicked"))
        })
        .collect();
    assert_eq!(parallel, sequential);
}

#[test]
fn prompts_that_do_not_fit_are_refused_and_long_text_is_truncated() {
    let llm = common::smollm2();
    let long = ARTICLE.repeat(200);
    let error = llm
        .generate(&[Message::user(long.clone())], &greedy(8))
        .err()
        .unwrap_or_else(|| panic!("a prompt over the context must fail"));
    assert!(matches!(error, LlmError::InvalidRequest(_)), "{error}");
    assert!(error.to_string().contains("context"), "{error}");

    let fitted = truncate_to_tokens(&long, 300, llm.tokenizer()).unwrap_or_else(|e| panic!("{e}"));
    assert!(fitted.truncated);
    assert!(fitted.tokens <= 300, "{}", fitted.tokens);
    assert!(
        fitted.tokens > 200,
        "close to the budget: {}",
        fitted.tokens
    );
    assert!(fitted.text.ends_with('.'), "cut at a sentence end");
    let summary = summarise(&llm, &fitted.text, &greedy(16));
    assert!(summary.prompt_tokens < llm.context_tokens());
}

#[test]
fn the_larger_qwen2_model_summarises_too() {
    let mut config = LlmConfig::new(common::qwen_path());
    config.context_tokens = Some(1024);
    let llm = Llm::load(&config).unwrap_or_else(|e| panic!("loading Qwen2.5: {e}"));
    let summary = summarise(&llm, ARTICLE, &greedy(40));
    let lower = summary.text.to_lowercase();
    assert!(
        ["rust", "memory", "ownership", "compiler", "garbage"]
            .iter()
            .any(|noun| lower.contains(noun)),
        "the summary mentions the subject: {:?}",
        summary.text
    );
}
