//! Cutting text into paragraphs and sentences.

use super::tokens::Span;

/// Lowercase words that end with a full stop without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "approx", "cf", "dr", "e.g", "fig", "i.e", "jr", "mr", "mrs", "ms", "mt", "prof", "sr", "st",
    "vs",
];

/// Characters that may follow a sentence's final punctuation and still
/// belong to the sentence, as in `He said "yes."`.
const CLOSERS: &[char] = &['"', '\'', '”', '’', ')', ']', '»'];

/// The paragraphs of `text`: runs of lines separated by blank lines, trimmed.
pub(super) fn paragraphs(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut position = 0;
    for line in text.split_inclusive('\n') {
        let line_end = position + line.len();
        if line.trim().is_empty() {
            out.extend(Span::trimmed(text, start, position));
            start = line_end;
        }
        position = line_end;
    }
    out.extend(Span::trimmed(text, start, text.len()));
    out
}

/// The sentences of `text`, never crossing a paragraph break. A sentence
/// ends at `.`, `!`, `?` or `…` (with any closing quotes or brackets) that
/// is followed by whitespace or the end of the text, except after a few
/// common abbreviations and single capital initials (`J. Smith`).
pub(super) fn sentences(text: &str) -> Vec<Span> {
    paragraphs(text)
        .into_iter()
        .flat_map(|paragraph| sentences_in(text, paragraph))
        .collect()
}

fn sentences_in(text: &str, paragraph: Span) -> Vec<Span> {
    let mut out = Vec::new();
    let Some(body) = text.get(paragraph.start..paragraph.end) else {
        return out;
    };
    let mut start = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, next)) = chars.peek() {
            if matches!(next, '.' | '!' | '?' | '…') || CLOSERS.contains(&next) {
                end = j + next.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let at_boundary = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if at_boundary && !(c == '.' && ends_with_abbreviation(&body[start..i])) {
            out.extend(Span::trimmed(
                text,
                paragraph.start + start,
                paragraph.start + end,
            ));
            start = end;
        }
    }
    out.extend(Span::trimmed(text, paragraph.start + start, paragraph.end));
    out
}

/// Whether the last word of `before` (the text up to a full stop) is an
/// abbreviation or a single capital letter.
fn ends_with_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default()
        .trim_start_matches(|c: char| !c.is_alphanumeric());
    let mut chars = word.chars();
    if let (Some(first), None) = (chars.next(), chars.next()) {
        return first.is_uppercase();
    }
    ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, spans: &[Span]) -> Vec<&'a str> {
        spans
            .iter()
            .map(|s| text.get(s.start..s.end).unwrap_or("<bad span>"))
            .collect()
    }

    #[test]
    fn splits_paragraphs_on_blank_lines() {
        let text = "\n  One\nstill one  \n\n \nTwo\n\n\nThree  ";
        assert_eq!(
            texts(text, &paragraphs(text)),
            ["One\nstill one", "Two", "Three"]
        );
        assert!(paragraphs("  \n\n ").is_empty());
    }

    #[test]
    fn splits_sentences() {
        let text = "Hello there! How are you? I'm fine. Pi is 3.14 today.";
        assert_eq!(
            texts(text, &sentences(text)),
            [
                "Hello there!",
                "How are you?",
                "I'm fine.",
                "Pi is 3.14 today."
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_initials_and_quotes() {
        let text = "Mr. Smith met Dr. Jones, e.g. at J. K. Rowling's place. He said \"wow!\" Then (he left.) Done";
        assert_eq!(
            texts(text, &sentences(text)),
            [
                "Mr. Smith met Dr. Jones, e.g. at J. K. Rowling's place.",
                "He said \"wow!\"",
                "Then (he left.)",
                "Done",
            ]
        );
    }

    #[test]
    fn sentences_stop_at_paragraph_breaks() {
        let text = "A heading\n\nFirst sentence... Second?!\nThird";
        assert_eq!(
            texts(text, &sentences(text)),
            ["A heading", "First sentence...", "Second?!", "Third"]
        );
    }
}
