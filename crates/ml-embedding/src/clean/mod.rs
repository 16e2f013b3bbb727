//! Text clean-up before embedding, per [`ContentType`].
//!
//! Every type gets the same character hygiene (unicode whitespace becomes
//! plain spaces or newlines, control and invisible formatting characters
//! go, runs of spaces collapse); each type then gets its own rules:
//!
//! | content type | rules | layout kept |
//! |---|---|---|
//! | caption, tweet, comment | [`social`]: URLs and `@mentions` dropped, `#hashtags` become words | one line |
//! | transcript | [`transcript`]: cues, speaker labels and fillers dropped | one line |
//! | article | [`html`]: tags and entities removed | lines and paragraphs (`\n\n`) |
//! | composite | the social rules | lines and paragraphs |
//! | summary | none beyond the common ones | lines and paragraphs |
//!
//! [`skip_reason`] then decides whether what is left is worth embedding.

mod html;
mod skip;
mod social;
mod transcript;

pub use skip::skip_reason;

use crate::ContentType;

/// Cleans `text` for embedding according to its content type.
///
/// Deterministic and idempotent in practice: cleaning cleaned text changes
/// nothing. The result is trimmed and may be empty; check it with
/// [`skip_reason`] before embedding.
#[must_use]
pub fn clean(text: &str, content_type: ContentType) -> String {
    let text = normalise_chars(text);
    let text = match content_type {
        ContentType::Caption
        | ContentType::Tweet
        | ContentType::Comment
        | ContentType::Reddit
        | ContentType::Composite
        | ContentType::VideoCombined => social::clean(&text),
        ContentType::Transcript => transcript::clean(&text),
        ContentType::Article => html::clean(&text),
        ContentType::Summary | ContentType::Text => text,
    };
    match content_type {
        ContentType::Article
        | ContentType::Summary
        | ContentType::Composite
        | ContentType::Reddit
        | ContentType::VideoCombined
        | ContentType::Text => collapse_keeping_paragraphs(&text),
        ContentType::Caption
        | ContentType::Tweet
        | ContentType::Comment
        | ContentType::Transcript => collapse_to_one_line(&text),
    }
}

/// Maps line and paragraph separators to `\n`, every other whitespace
/// character to a space, and drops control and invisible formatting
/// characters (zero-width spaces, byte-order marks, soft hyphens,
/// bidirectional marks).
fn normalise_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                // CRLF and lone CR both end a line.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            c if c.is_whitespace() => out.push(' '),
            c if c.is_control() || is_invisible_format(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Format characters that render as nothing and only confuse tokenizers.
/// Zero-width joiners stay: they hold emoji sequences and some scripts
/// together.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Joins all words with single spaces.
fn collapse_to_one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collapses spaces within each line, drops blank lines at the ends, and
/// turns every run of blank lines into exactly one paragraph break (`\n\n`).
fn collapse_keeping_paragraphs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_break = false;
    for line in text.split('\n') {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            pending_break = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if pending_break { "\n\n" } else { "\n" });
        }
        pending_break = false;
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// Rewrites each whitespace-separated word of `text` with `rewrite`, which
/// appends the replacement (possibly nothing) to the output; whitespace
/// between words is copied unchanged.
fn map_words(text: &str, mut rewrite: impl FnMut(&str, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let space_end = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        let (space, after) = rest.split_at(space_end);
        out.push_str(space);
        let word_end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (word, after) = after.split_at(word_end);
        if !word.is_empty() {
            rewrite(word, &mut out);
        }
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_whitespace_and_controls() {
        let text = "a\u{00A0}b\u{3000}c\td\u{200B}e\u{FEFF}f\u{0007}g\r\nh";
        assert_eq!(clean(text, ContentType::Summary), "a b c defg\nh");
        assert_eq!(clean(text, ContentType::Caption), "a b c defg h");
    }

    #[test]
    fn collapses_spaces_and_keeps_paragraphs_for_articles() {
        let text = "  First   line\n  second line \n\n\n\n Next   para \r\n\r\n";
        assert_eq!(
            clean(text, ContentType::Article),
            "First line\nsecond line\n\nNext para"
        );
        assert_eq!(
            clean(text, ContentType::Tweet),
            "First line second line Next para"
        );
    }

    #[test]
    fn summary_keeps_text() {
        assert_eq!(
            clean("Key points:\n\n- one & two", ContentType::Summary),
            "Key points:\n\n- one & two"
        );
    }

    #[test]
    fn composite_applies_social_rules_but_keeps_paragraphs() {
        let text = "Title\n\nCaption with #cooking and https://x.co/a\n\n@chef";
        assert_eq!(
            clean(text, ContentType::Composite),
            "Title\n\nCaption with cooking and"
        );
    }

    #[test]
    fn cleaning_twice_changes_nothing() {
        let samples = [
            ("Check #this out @me https://a.b", ContentType::Caption),
            (
                "[Music] >> SPEAKER 1: um, hello there. Uh.",
                ContentType::Transcript,
            ),
            ("<p>Tom &amp; Jerry</p><p>Next</p>", ContentType::Article),
        ];
        for (text, kind) in samples {
            let once = clean(text, kind);
            assert_eq!(clean(&once, kind), once, "{kind}: {text}");
        }
    }

    #[test]
    fn map_words_keeps_separators() {
        let out = map_words(" a  b\nc ", |word, out| out.push_str(&word.to_uppercase()));
        assert_eq!(out, " A  B\nC ");
    }
}
