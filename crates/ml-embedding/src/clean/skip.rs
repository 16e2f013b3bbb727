//! Which cleaned texts are not worth embedding.

/// The least share of letters and digits among the non-space characters of
/// a text worth embedding, in percent.
const MIN_ALPHANUMERIC_PERCENT: usize = 30;

/// Why a cleaned text should be recorded as skipped rather than embedded,
/// or `None` when it is worth embedding.
///
/// Reasons, checked in this order:
/// - `"empty text"`: nothing but whitespace;
/// - `"no meaningful text"`: fewer than two letters or digits;
/// - `"repeated character"`: one character repeated (`"aaaaaa"`);
/// - `"mostly symbols"`: under 30 % of the non-space characters are letters
///   or digits (emoji strings, ASCII art).
#[must_use]
pub fn skip_reason(cleaned: &str) -> Option<&'static str> {
    let mut non_space = 0_usize;
    let mut alphanumeric = 0_usize;
    let mut first = None;
    let mut all_same = true;
    for c in cleaned.chars().filter(|c| !c.is_whitespace()) {
        non_space += 1;
        if c.is_alphanumeric() {
            alphanumeric += 1;
        }
        match first {
            None => first = Some(c),
            Some(f) if f != c => all_same = false,
            Some(_) => {}
        }
    }
    if non_space == 0 {
        Some("empty text")
    } else if alphanumeric < 2 {
        Some("no meaningful text")
    } else if all_same {
        Some("repeated character")
    } else if alphanumeric * 100 < non_space * MIN_ALPHANUMERIC_PERCENT {
        Some("mostly symbols")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(skip_reason(""), Some("empty text"));
        assert_eq!(skip_reason(" \n\t "), Some("empty text"));
        assert_eq!(skip_reason("a"), Some("no meaningful text"));
        assert_eq!(skip_reason("!!! ??? 1"), Some("no meaningful text"));
        assert_eq!(skip_reason("aaaaaaa"), Some("repeated character"));
        assert_eq!(skip_reason("🔥🔥🔥🔥🔥🔥🔥 ok"), Some("mostly symbols"));
        assert_eq!(skip_reason("*** ### $$$ %% ab"), Some("mostly symbols"));
    }

    #[test]
    fn ordinary_text_is_kept() {
        assert_eq!(skip_reason("Best pasta ever"), None);
        assert_eq!(skip_reason("ok"), None);
        assert_eq!(skip_reason("Love this 😍😍😍"), None);
        assert_eq!(skip_reason("日本語のテキスト"), None);
        assert_eq!(skip_reason("42"), None);
    }
}
