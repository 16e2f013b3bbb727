//! Content hashes that identify a chunk's text.

use sha2::{Digest, Sha256};

/// The SHA-256 of `text`'s UTF-8 bytes as 64 lowercase hex digits.
///
/// Stored beside each vector so that unchanged text can be recognised without
/// comparing the text itself.
#[must_use]
pub fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            content_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn differs_by_text() {
        assert_ne!(content_hash("a"), content_hash("b"));
        assert_eq!(content_hash("héllo").len(), 64);
    }
}
