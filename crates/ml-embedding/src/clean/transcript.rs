//! Rules for speech-to-text output.

/// Words inside parentheses that mark a sound rather than speech, as in
/// `(laughs)` or `(upbeat music)`.
const CUE_WORDS: &[&str] = &[
    "applause",
    "beep",
    "cheering",
    "cheers",
    "chuckles",
    "chuckling",
    "clapping",
    "cough",
    "coughs",
    "crosstalk",
    "foreign",
    "gasps",
    "groans",
    "inaudible",
    "indistinct",
    "laugh",
    "laughing",
    "laughs",
    "laughter",
    "music",
    "noise",
    "sigh",
    "sighs",
    "silence",
    "static",
    "unintelligible",
];

/// Hesitation sounds that carry no meaning.
const FILLERS: &[&str] = &[
    "erm", "hm", "hmm", "hmmm", "mhm", "mm", "mmm", "uh", "uhh", "uhm", "um", "umm", "ummm",
];

/// Punctuation that ends a clause or sentence.
const CLAUSE_PUNCTUATION: &[char] = &['.', ',', '!', '?', ';', ':', '…'];

/// The most words a parenthesised sound cue has.
const MAX_CUE_WORDS: usize = 4;

/// The most characters between a sound cue's parentheses: a `(` further
/// from its `)` is spoken text, and is not searched past this.
const MAX_CUE_CHARS: usize = 64;

/// Drops sound cues (`[Music]`, `(laughs)`, `♪`), speaker labels
/// (`SPEAKER 1:`, `SPEAKER_01:`, `>>`) and filler words (`um`, `uh`), and
/// returns the remaining words separated by single spaces.
pub(super) fn clean(text: &str) -> String {
    let without_cues = remove_cues(text);
    let words: Vec<&str> = without_cues.split_whitespace().collect();
    let mut kept: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while let Some(&word) = words.get(i) {
        i += 1;
        let word = word.trim_start_matches('>');
        if word.is_empty() || is_speaker_label(word) {
            continue;
        }
        if word.eq_ignore_ascii_case("speaker")
            && words.get(i).is_some_and(|next| is_label_tail(next))
        {
            i += 1;
            continue;
        }
        if is_stray_punctuation(word) {
            // Left behind by a removed cue or filler: glue it to the word before.
            if let Some(last) = kept.last_mut()
                && !last.ends_with(|c: char| CLAUSE_PUNCTUATION.contains(&c))
            {
                last.push_str(word);
            }
            continue;
        }
        if let Some(ending) = filler_ending(word) {
            // Keep a sentence end the filler carried, on the word before it.
            if let Some(last) = kept.last_mut()
                && !last.ends_with(|c: char| c.is_ascii_punctuation())
                && matches!(ending, '.' | '!' | '?')
            {
                last.push(ending);
            }
            continue;
        }
        kept.push(word.to_owned());
    }
    kept.join(" ")
}

/// Replaces `[…]` spans, parenthesised sound cues and music notes with a
/// space. An unclosed bracket is kept as text.
fn remove_cues(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Once a `[` has no `]` after it, no later one has: not searched again.
    let mut square_closes = true;
    while let Some(open) = rest.find(['[', '(', '♪', '♫', '♬', '♩']) {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let mut chars = from_open.chars();
        let opener = chars.next().unwrap_or(' ');
        let after_open = chars.as_str();
        let closer = match opener {
            '[' => Some(']'),
            '(' => Some(')'),
            _ => None,
        };
        let Some(closer) = closer else {
            // A music note on its own.
            out.push(' ');
            rest = after_open;
            continue;
        };
        let close = match opener {
            '[' if square_closes => after_open.find(closer),
            '[' => None,
            _ => after_open
                .char_indices()
                .take(MAX_CUE_CHARS + 1)
                .find(|&(_, c)| c == closer)
                .map(|(i, _)| i),
        };
        square_closes &= opener != '[' || close.is_some();
        match close {
            Some(close) if opener == '[' || is_sound_cue(&after_open[..close]) => {
                out.push(' ');
                rest = &after_open[close + closer.len_utf8()..];
            }
            _ => {
                out.push(opener);
                rest = after_open;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether the text inside parentheses is a short description of a sound.
fn is_sound_cue(inner: &str) -> bool {
    let words: Vec<String> = inner.split_whitespace().map(str::to_lowercase).collect();
    !words.is_empty()
        && words.len() <= MAX_CUE_WORDS
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || c == '-'))
        && words.iter().any(|w| CUE_WORDS.contains(&w.as_str()))
}

/// `SPEAKER_01:`, `Speaker1:` and the like, written as one word.
fn is_speaker_label(word: &str) -> bool {
    let Some(head) = word.get(..7) else {
        return false;
    };
    head.eq_ignore_ascii_case("speaker") && is_label_tail(&word[7..])
}

/// The part after `speaker` in a label: an optional `_` or `-`, one to three
/// letters or digits, and a colon.
fn is_label_tail(tail: &str) -> bool {
    let tail = tail.trim_start_matches(['_', '-']);
    let Some(id) = tail.strip_suffix(':') else {
        return false;
    };
    (1..=3).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A word made only of clause punctuation, such as the `.` left after
/// `(laughs).` is removed.
fn is_stray_punctuation(word: &str) -> bool {
    word.chars().all(|c| CLAUSE_PUNCTUATION.contains(&c))
}

/// If `word` is a filler, the punctuation that followed it (or a space when
/// none did).
fn filler_ending(word: &str) -> Option<char> {
    let core = word.trim_end_matches(|c: char| c.is_ascii_punctuation() || c == '…');
    let lower = core.to_lowercase();
    FILLERS
        .contains(&lower.as_str())
        .then(|| word[core.len()..].chars().next().unwrap_or(' '))
}

#[cfg(test)]
mod tests {
    use crate::{ContentType, clean};

    fn transcript(text: &str) -> String {
        clean(text, ContentType::Transcript)
    }

    #[test]
    fn pathological_brackets_are_cleaned_in_one_pass() {
        // Each once searched the whole rest of the text for its closer.
        let parens = "(".repeat(1_000_000);
        assert_eq!(transcript(&parens), parens);
        let squares = "[".repeat(1_000_000);
        assert_eq!(transcript(&squares), squares);
        let far = format!("({} laughs)", "word ".repeat(100_000));
        assert_eq!(
            transcript(&far),
            far.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert_eq!(transcript("a [[ b ] c"), "a c");
        assert_eq!(transcript("a [ b (laughs) c"), "a [ b c");
    }

    #[test]
    fn removes_cues() {
        assert_eq!(
            transcript("[Music] Welcome back [Applause] everyone (laughs) ♪ la ♪"),
            "Welcome back everyone la"
        );
        assert_eq!(
            transcript("(upbeat music) Hi (inaudible). Bye [Music] !"),
            "Hi. Bye!"
        );
    }

    #[test]
    fn keeps_spoken_parentheses_and_unclosed_brackets() {
        assert_eq!(
            transcript("It costs (about ten dollars) today [sic"),
            "It costs (about ten dollars) today [sic"
        );
    }

    #[test]
    fn removes_speaker_labels() {
        assert_eq!(
            transcript("SPEAKER 1: Hello. >> SPEAKER_02: Hi! >>Right. Speaker A: ok"),
            "Hello. Hi! Right. ok"
        );
        // A sentence that merely mentions a speaker is kept.
        assert_eq!(
            transcript("The speaker said hello"),
            "The speaker said hello"
        );
    }

    #[test]
    fn drops_fillers() {
        assert_eq!(
            transcript("So, um, um, we uh went home um. Then UH we left"),
            "So, we went home. Then we left"
        );
    }

    #[test]
    fn filler_only_text_becomes_empty() {
        assert_eq!(transcript("um uh [Music] hmm"), "");
    }
}
