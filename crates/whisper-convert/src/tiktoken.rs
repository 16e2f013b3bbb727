//! openai-whisper's vocabularies (`gpt2.tiktoken`, `multilingual.tiktoken`):
//! one `base64(token bytes) rank` per line.

use std::path::Path;

use base64::Engine as _;

use crate::error::{Error, Result};

/// Tokens in `gpt2.tiktoken` (the English-only models' vocabulary).
pub const GPT2_TOKENS: usize = 50_256;
/// Tokens in `multilingual.tiktoken`.
pub const MULTILINGUAL_TOKENS: usize = 50_257;

/// Parses a `.tiktoken` file into its tokens in rank order (index = rank).
/// Ranks must be exactly `0..n`, each once.
pub fn parse(text: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut ranked: Vec<(usize, Vec<u8>)> = Vec::new();
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::Vocab(format!("line {line_no}: not text")))?;
        let mut fields = line.split_ascii_whitespace();
        let (Some(token), Some(rank), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(Error::Vocab(format!(
                "line {line_no}: expected `<base64 token> <rank>`, got `{line}`"
            )));
        };
        // Padding is optional, and `=` alone is the empty token
        // (multilingual.tiktoken's rank 50256), as Python's b64decode reads it.
        let token = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| Error::Vocab(format!("line {line_no}: bad base64 `{token}`: {e}")))?;
        let rank: usize = rank
            .parse()
            .map_err(|_| Error::Vocab(format!("line {line_no}: bad rank `{rank}`")))?;
        ranked.push((rank, token));
    }
    if ranked.is_empty() {
        return Err(Error::Vocab("no tokens".into()));
    }
    ranked.sort_by_key(|(rank, _)| *rank);
    for (expected, (rank, _)) in ranked.iter().enumerate() {
        if *rank != expected {
            return Err(Error::Vocab(format!(
                "ranks are not 0..{}: rank {expected} is {}",
                ranked.len(),
                if *rank > expected {
                    "missing"
                } else {
                    "repeated"
                }
            )));
        }
    }
    Ok(ranked.into_iter().map(|(_, token)| token).collect())
}

/// Reads and parses the `.tiktoken` file at `path`.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|e| match e {
        Error::Vocab(m) => Error::Vocab(format!("{}: {m}", path.display())),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(token: &[u8], rank: usize) -> String {
        format!(
            "{} {rank}\n",
            base64::engine::general_purpose::STANDARD.encode(token)
        )
    }

    #[test]
    fn returns_tokens_in_rank_order() -> Result<()> {
        let text = [line(b" the", 2), line(b"!", 0), line(b"\xff\x00", 1)].concat();
        let tokens = parse(format!("{text}\n").as_bytes())?;
        assert_eq!(
            tokens,
            [b"!".to_vec(), b"\xff\x00".to_vec(), b" the".to_vec()]
        );
        Ok(())
    }

    #[test]
    fn reads_the_empty_token_and_unpadded_base64() -> Result<()> {
        // multilingual.tiktoken has `= 50256`: an empty token.
        let tokens = parse(b"IQ== 0\n= 1\nIQ 2\n")?;
        assert_eq!(tokens, [b"!".to_vec(), Vec::new(), b"!".to_vec()]);
        Ok(())
    }

    #[test]
    fn rejects_gaps_duplicates_and_garbage() {
        let gap = [line(b"a", 0), line(b"b", 2)].concat();
        assert!(
            matches!(parse(gap.as_bytes()), Err(Error::Vocab(m)) if m.contains("rank 1 is missing"))
        );
        let dup = [line(b"a", 0), line(b"b", 0)].concat();
        assert!(matches!(parse(dup.as_bytes()), Err(Error::Vocab(m)) if m.contains("repeated")));
        assert!(matches!(parse(b"IQ== 0\n%%% 1\n"), Err(Error::Vocab(m)) if m.contains("line 2")));
        assert!(matches!(parse(b"IQ== x\n"), Err(Error::Vocab(m)) if m.contains("bad rank")));
        assert!(matches!(parse(b"IQ==\n"), Err(Error::Vocab(m)) if m.contains("line 1")));
        assert!(matches!(parse(b"\n\n"), Err(Error::Vocab(m)) if m.contains("no tokens")));
    }
}
