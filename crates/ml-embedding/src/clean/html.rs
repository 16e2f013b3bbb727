//! Rules for articles: HTML left in the text.

/// Elements whose content is never readable text.
const HIDDEN_ELEMENTS: &[&str] = &["script", "style", "noscript", "template"];

/// Elements that start a new paragraph.
const PARAGRAPH_ELEMENTS: &[&str] = &[
    "article",
    "blockquote",
    "div",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// Elements that start a new line.
const LINE_ELEMENTS: &[&str] = &["br", "dd", "dt", "li", "tr"];

/// The longest entity reference decoded, `&` and `;` excluded.
const MAX_ENTITY_LEN: usize = 10;

/// Removes HTML comments, tags and hidden elements (scripts, styles), turns
/// block elements into line or paragraph breaks, and decodes character
/// entities.
pub(super) fn clean(text: &str) -> String {
    decode_entities(&strip_tags(text))
}

fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let after_open = &from_open[1..];
        if let Some(comment) = after_open.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let looks_like_tag = after_open
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        if !looks_like_tag {
            // A literal `<`, as in "a < b".
            out.push('<');
            rest = after_open;
            continue;
        }
        let Some(close) = after_open.find('>') else {
            // No `>` anywhere after: no tag either, the rest is text (and
            // is not searched again for every `<` in it).
            out.push_str(from_open);
            return out;
        };
        let tag = &after_open[..close];
        rest = &after_open[close + 1..];
        let name = tag_name(tag);
        if !tag.starts_with('/') && HIDDEN_ELEMENTS.contains(&name.as_str()) {
            rest = skip_element(rest, &name);
        } else if PARAGRAPH_ELEMENTS.contains(&name.as_str()) {
            out.push_str("\n\n");
        } else if LINE_ELEMENTS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    out
}

/// The lowercase element name of a tag's inside, e.g. `p` for `/p` or
/// `p class="x"`.
fn tag_name(tag: &str) -> String {
    tag.trim_start_matches(['/', '!'])
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// What follows the closing tag of element `name`, or nothing if it is
/// never closed.
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let closing = format!("</{name}");
    // Case-insensitively, without a lowercased copy of the rest per element.
    let start = rest.match_indices('<').map(|(i, _)| i).find(|&i| {
        rest.as_bytes()
            .get(i..i + closing.len())
            .is_some_and(|tag| tag.eq_ignore_ascii_case(closing.as_bytes()))
    });
    let Some(start) = start else {
        return "";
    };
    let after = &rest[start..];
    after.find('>').map_or("", |end| &after[end + 1..])
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let (before, from_amp) = rest.split_at(amp);
        out.push_str(before);
        let after_amp = &from_amp[1..];
        // Only the next few bytes can hold the `;` of an entity.
        let decoded = after_amp
            .bytes()
            .take(MAX_ENTITY_LEN + 1)
            .position(|b| b == b';')
            .and_then(|end| entity(&after_amp[..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after_amp[end + 1..];
            }
            None => {
                out.push('&');
                rest = after_amp;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character an entity name (between `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        // Numeric references to control characters are noise, like the raw ones.
        return char::from_u32(code).filter(|c| !c.is_control() || *c == '\n');
    }
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "times" => '×',
        "aacute" => 'á',
        "agrave" => 'à',
        "auml" => 'ä',
        "ccedil" => 'ç',
        "eacute" => 'é',
        "egrave" => 'è',
        "ecirc" => 'ê',
        "iacute" => 'í',
        "ntilde" => 'ñ',
        "oacute" => 'ó',
        "ouml" => 'ö',
        "szlig" => 'ß',
        "uacute" => 'ú',
        "uuml" => 'ü',
        _ => return None,
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use crate::{ContentType, clean};

    fn article(text: &str) -> String {
        clean(text, ContentType::Article)
    }

    #[test]
    fn strips_tags_and_keeps_paragraphs() {
        assert_eq!(
            article("<h1>Title</h1><p>First <b>bold</b> line<br/>next line</p><p>Second</p>"),
            "Title\n\nFirst bold line\nnext line\n\nSecond"
        );
    }

    #[test]
    fn drops_scripts_styles_and_comments() {
        assert_eq!(
            article(
                "a<script type=\"x\">var x = 1 < 2;</script> b <style>p{}</style>c<!-- hidden -->d"
            ),
            "a b cd"
        );
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(
            article("Tom &amp; Jerry &lt;3 &quot;hi&quot; &#39;x&#x27; caf&eacute; &bogus; AT&T;"),
            "Tom & Jerry <3 \"hi\" 'x' café &bogus; AT&T;"
        );
        assert_eq!(article("a&nbsp;b"), "a b");
    }

    #[test]
    fn literal_angle_brackets_stay() {
        assert_eq!(article("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
    }

    #[test]
    fn pathological_markup_is_cleaned_in_one_pass() {
        // Each of these once took from 35 s to minutes: every `<` or `&`
        // searched the whole rest of the text.
        let open_tags = "<a".repeat(500_000);
        assert_eq!(article(&open_tags), open_tags);
        let ampersands = "&".repeat(1_000_000);
        assert_eq!(article(&ampersands), ampersands);
        let scripts = "<script>x</script>y".repeat(50_000);
        assert_eq!(article(&scripts), "y".repeat(50_000));
        assert_eq!(article("a<SCRIPT>1</Script >b<style>"), "ab");
        assert_eq!(article("x <b>bold"), "x bold");
        assert_eq!(article("x <b"), "x <b");
    }

    #[test]
    fn collapses_many_newlines() {
        assert_eq!(article("a\n\n\n\n\nb\n\n\nc"), "a\n\nb\n\nc");
    }
}
