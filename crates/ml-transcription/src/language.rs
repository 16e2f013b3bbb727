//! ISO 639-1 language codes as whisper.cpp names them.

/// Normalises a language option (`"EN"`, `"en-US"`, `"pt_BR"`) to the code
/// whisper.cpp knows (`"en"`, `"pt"`), or `None` when it knows none.
pub fn normalise(language: &str) -> Option<&'static str> {
    let code = language
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let id = whisper_rs::get_lang_id(&code)?;
    whisper_rs::get_lang_str(id)
}

/// The code of whisper.cpp's language `id` (e.g. from detection).
pub fn code(id: i32) -> Option<&'static str> {
    whisper_rs::get_lang_str(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_regional_and_cased_codes() {
        assert_eq!(normalise("en"), Some("en"));
        assert_eq!(normalise(" EN-us "), Some("en"));
        assert_eq!(normalise("pt_BR"), Some("pt"));
        assert_eq!(normalise("klingon"), None);
        assert_eq!(normalise(""), None);
    }
}
