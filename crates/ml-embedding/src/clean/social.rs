//! Rules for short social-media text: captions, tweets, comments.

use super::map_words;

/// Drops URLs and `@mentions` and turns `#hashtags` into plain words
/// (`#machine_learning` becomes `machine learning`), keeping whitespace.
pub(super) fn clean(text: &str) -> String {
    map_words(text, |word, out| {
        let bare = word.trim_start_matches(['(', '[', '"', '\'', '<']);
        if is_url(bare) || is_mention(bare) {
            return;
        }
        if bare.starts_with('#') {
            let words = bare.replace(['#', '_'], " ");
            out.push_str(words.trim());
        } else {
            out.push_str(word);
        }
    })
}

fn is_url(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    ["http://", "https://", "www."]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
}

fn is_mention(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next() == Some('@')
        && chars
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::{ContentType, clean};

    #[test]
    fn caption_rules() {
        assert_eq!(
            clean(
                "Best pasta ever 🍝 #italianfood #home_cooking by @chef.mario https://insta.gr/p/1 (www.site.com)",
                ContentType::Caption,
            ),
            "Best pasta ever 🍝 italianfood home cooking by"
        );
    }

    #[test]
    fn keeps_email_like_and_inner_hash() {
        assert_eq!(
            clean("write to me@example.com about C# now", ContentType::Comment),
            "write to me@example.com about C# now"
        );
    }

    #[test]
    fn glued_hashtags_split() {
        assert_eq!(
            clean("#travel#beach sun", ContentType::Tweet),
            "travel beach sun"
        );
        assert_eq!(clean("# alone", ContentType::Tweet), "alone");
    }

    #[test]
    fn lone_at_sign_stays() {
        assert_eq!(clean("meet @ noon", ContentType::Tweet), "meet @ noon");
    }
}
