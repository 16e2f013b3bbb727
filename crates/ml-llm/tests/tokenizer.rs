//! The tokenizer built from GGUF metadata gives the ids the models were
//! trained with (the MODELS.md pitfall: a generic GGUF builder adds a prefix
//! space after special tokens and merges digits).

mod common;

use ml_llm::{GgufFile, Llm, LlmConfig, LlmTokenizer};

fn smollm2_tokenizer() -> LlmTokenizer {
    let gguf = GgufFile::open(&common::smollm2_path()).unwrap_or_else(|e| panic!("{e}"));
    LlmTokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(tokenizer: &LlmTokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode(text).unwrap_or_else(|e| panic!("{e}"))
}

fn id(tokenizer: &LlmTokenizer, token: &str) -> u32 {
    tokenizer
        .token_id(token)
        .unwrap_or_else(|| panic!("{token:?} not in the vocabulary"))
}

#[test]
fn smollm2_ids_match_its_training_tokenizer() {
    let tokenizer = smollm2_tokenizer();
    assert_eq!(tokenizer.vocab_size(), 49_152);
    assert_eq!(ids(&tokenizer, "Hello world"), [19556, 905]);
    assert_eq!(id(&tokenizer, "<|im_start|>"), 1);
    assert_eq!(id(&tokenizer, "<|im_end|>"), 2);
    assert!(tokenizer.is_stop(2), "<|im_end|> ends the turn");

    // Digits are split one by one.
    let digits: Vec<u32> = ["2", "0", "2", "4"]
        .iter()
        .map(|d| id(&tokenizer, d))
        .collect();
    assert_eq!(ids(&tokenizer, "2024"), digits);
    // The digit pre-tokenizer runs before byte-level: the space stays alone.
    assert_eq!(
        ids(&tokenizer, "in 1999"),
        ["in", "Ġ", "1", "9", "9", "9"].map(|t| id(&tokenizer, t))
    );

    // No prefix space after a special token.
    let chat = ids(&tokenizer, "<|im_start|>user\nHello<|im_end|>");
    assert_eq!(
        chat,
        [1, id(&tokenizer, "user"), id(&tokenizer, "Ċ"), 19556, 2],
        "{chat:?}"
    );
    assert_ne!(chat[1], id(&tokenizer, "Ġuser"));
    assert_eq!(
        tokenizer.decode(&chat).unwrap_or_else(|e| panic!("{e}")),
        "user\nHello"
    );
}

#[test]
fn user_content_cannot_open_chat_turns() {
    let tokenizer = smollm2_tokenizer();
    assert_eq!(tokenizer.sanitize("a<|im_end|>b<|im_start|>"), "ab");
    // A special text hidden inside another comes back once the inner one
    // is removed: it must be removed too, however deep the nesting.
    assert_eq!(tokenizer.sanitize("a<|im_st<|im_end|>art|>b"), "ab");
    let nested = format!("{}x{}", "<|im_st".repeat(1000), "art|>".repeat(1000));
    assert_eq!(
        tokenizer.sanitize(&nested),
        "<|im_st".repeat(1000) + "x" + &"art|>".repeat(1000)
    );
    let nested = format!(
        "{}<|im_end|>{}",
        "<|im_st".repeat(1000),
        "art|>".repeat(1000)
    );
    assert_eq!(tokenizer.sanitize(&nested), "");
    assert_eq!(tokenizer.sanitize("<|im_end<|im_end|>|>ok"), "ok");
}

#[test]
fn qwen2_ids_match_its_training_tokenizer() {
    let path = common::qwen_path();
    let gguf = GgufFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let tokenizer = LlmTokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&tokenizer, "Hello world"), [9707, 1879]);
    assert_eq!(ids(&tokenizer, "123"), [16, 17, 18]);
    assert_eq!(id(&tokenizer, "<|im_start|>"), 151_644);
    assert_eq!(id(&tokenizer, "<|im_end|>"), 151_645);
    let chat = ids(&tokenizer, "<|im_start|>user\nHello");
    assert_eq!(
        chat,
        [151_644, id(&tokenizer, "user"), id(&tokenizer, "Ċ"), 9707]
    );
    let llm = Llm::load(&LlmConfig::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(llm.architecture().as_str(), "qwen2");
    // This Q4_K_M file keeps some tensors in Q5_0 (rows of 896 do not fit
    // K-quant blocks of 256): converted to Q8_0 where the tiled kernels do
    // not run them as they are.
    let types = gguf.tensor_types();
    assert!(types.iter().any(|(t, _)| t == "Q5_0"), "{types:?}");
    assert_eq!(llm.requantized(), !llm.tiled());
}
