//! Prompts per style and content type, and reading the answer back:
//! clean-up, a cut at the last full sentence, key points.

use ml_embedding::ContentType;
use ml_llm::Message;

use crate::content::{Style, noun};

const SYSTEM: &str = "You are a careful assistant that summarises content. Use only facts stated in the content, keep its key names and terms, and never add commentary.";

/// The chat turns asking for a summary of `text`.
pub fn messages(
    text: &str,
    title: Option<&str>,
    content_type: ContentType,
    style: Style,
) -> Vec<Message> {
    let noun = noun(content_type);
    let instruction = match style {
        Style::Brief => format!("Summarise the {noun} above in one to three short sentences."),
        Style::Detailed => format!(
            "Write a detailed summary of the {noun} above in one paragraph that covers its main points."
        ),
        Style::Bullets => format!(
            "Summarise the {noun} above as 3 to 5 bullet points. Start each point on a new line with \"- \"."
        ),
    };
    let mut user = String::new();
    if let Some(title) = title.filter(|t| !t.trim().is_empty()) {
        user.push_str("Title: ");
        user.push_str(title.trim());
        user.push('\n');
    }
    user.push_str(text.trim());
    user.push_str("\n\n");
    user.push_str(&instruction);
    vec![Message::system(SYSTEM), Message::user(user)]
}

/// Labels small models put before the answer.
const LABELS: [&str; 4] = [
    "summary:",
    "here is a summary:",
    "here's a summary:",
    "bullet points:",
];

/// The answer as stored: labels stripped, and cut after the last complete
/// sentence or bullet when the token budget ended it mid-sentence.
pub fn clean_summary(raw: &str, hit_token_limit: bool) -> String {
    let mut text = raw.trim();
    for label in LABELS {
        // `get`, not indexing: the label's length may fall inside a
        // character of a non-ASCII answer.
        if text
            .get(..label.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(label))
        {
            text = text[label.len()..].trim_start();
        }
    }
    if hit_token_limit && let Some(end) = last_complete_end(text) {
        text = &text[..end];
    }
    text.trim().to_owned()
}

/// End of the last complete sentence or line in `text`, if any is left
/// with something before it.
fn last_complete_end(text: &str) -> Option<usize> {
    let sentence = text
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '!' | '?'))
        .map(|(i, _)| i + 1)
        .next_back();
    let line = text.rfind('\n');
    sentence
        .into_iter()
        .chain(line)
        .max()
        .filter(|&end| end > 0)
}

/// Key points of a summary: its bullet or numbered lines; without any,
/// its sentences.
pub fn key_points(summary: &str) -> Vec<String> {
    let bullets: Vec<String> = summary
        .lines()
        .filter_map(bullet_text)
        .filter(|point| !point.is_empty())
        .collect();
    if bullets.len() >= 2 {
        return bullets;
    }
    sentences(summary)
}

fn bullet_text(line: &str) -> Option<String> {
    let line = line.trim();
    let rest = if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("• "))
    {
        rest
    } else {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let after = &line[digits..];
        if digits == 0 {
            return None;
        }
        after
            .strip_prefix(". ")
            .or_else(|| after.strip_prefix(") "))?
    };
    Some(rest.trim().to_owned())
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let at_end =
            matches!(c, '.' | '!' | '?') && bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace);
        if at_end || c == '\n' {
            push_sentence(&mut out, &text[start..=i]);
            start = i + 1;
        }
    }
    push_sentence(&mut out, &text[start..]);
    out
}

fn push_sentence(out: &mut Vec<String>, sentence: &str) {
    let sentence = sentence.trim();
    if sentence.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        out.push(sentence.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bullets_become_key_points() {
        let summary =
            "Summary:\n- Rust checks ownership.\n* No garbage collector\n3. Faster services";
        let cleaned = clean_summary(summary, false);
        assert!(cleaned.starts_with("- Rust"));
        assert_eq!(
            key_points(&cleaned),
            [
                "Rust checks ownership.",
                "No garbage collector",
                "Faster services"
            ]
        );
    }

    #[test]
    fn sentences_are_the_fallback() {
        assert_eq!(
            key_points("Rust is safe. It is fast! Is it hard? Yes"),
            ["Rust is safe.", "It is fast!", "Is it hard?", "Yes"]
        );
    }

    #[test]
    fn non_ascii_answers_are_cleaned_without_panicking() {
        assert_eq!(
            clean_summary("日本語の要約です。", true),
            "日本語の要約です。"
        );
        assert_eq!(
            clean_summary("Summary: 豆腐のレシピ。", false),
            "豆腐のレシピ。"
        );
        // Every label cut at every length, then multibyte text of every
        // width, so a label's length lands inside a character each way.
        let tails = [
            "日本語",
            "é",
            "🦀🦀",
            "e\u{301}x",
            "Ωμέγα. Ζ",
            "\u{feff}\u{200b}",
        ];
        for label in LABELS {
            for cut in 0..=label.len() {
                for tail in tails {
                    let raw = format!("{}{tail}", &label[..cut]);
                    for hit_limit in [false, true] {
                        let cleaned = clean_summary(&raw, hit_limit);
                        assert!(raw.contains(cleaned.as_str()), "{raw:?} -> {cleaned:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_cut_answer_ends_at_its_last_sentence() {
        assert_eq!(clean_summary("One thing. Two thi", true), "One thing.");
        assert_eq!(
            clean_summary("One thing. Two thi", false),
            "One thing. Two thi"
        );
        assert_eq!(clean_summary("no sentence end", true), "no sentence end");
    }

    #[test]
    fn the_prompt_names_the_content_and_style() {
        let turns = messages(
            "Some text.",
            Some("A title"),
            ContentType::Reddit,
            Style::Bullets,
        );
        assert_eq!(turns.len(), 2);
        assert!(turns[1].content.starts_with("Title: A title\nSome text."));
        assert!(turns[1].content.contains("Reddit post"));
        assert!(turns[1].content.contains("bullet points"));
    }
}
