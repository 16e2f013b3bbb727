//! [`MediaSource`]: where a task's `mediaUrl` points, parsed and validated
//! before anything is read.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::error::MediaError;

/// A validated media location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// An absolute path on the shared media volume (checked against the
    /// media roots when fetched).
    Local(PathBuf),
    /// An `http://` or `https://` URL.
    Http(Url),
    /// An object of an S3(-compatible) bucket, from `s3://bucket/key`.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The object key, as written after `bucket/` (not percent-decoded,
        /// like the AWS CLI).
        key: String,
    },
}

const ACCEPTED: &str =
    "accepted: an absolute path inside the media roots, http(s)://..., s3://bucket/key";

fn invalid(url: &str, reason: impl Into<String>) -> MediaError {
    MediaError::InvalidSource {
        url: redact(url),
        reason: reason.into(),
    }
}

/// `url` without query string, fragment or user info, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            // Only fails for URLs that cannot have credentials anyway.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

impl MediaSource {
    /// Parses a task's `mediaUrl`.
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidSource`] (permanent) for an empty or relative
    /// path, a scheme other than `http`, `https` or `s3`, an HTTP URL without
    /// host, or an S3 URL whose bucket or key cannot be addressed safely.
    pub fn parse(url: &str) -> Result<Self, MediaError> {
        let text = url.trim();
        if text.is_empty() {
            return Err(invalid(url, "empty media URL"));
        }
        if text.contains('\0') {
            return Err(invalid(url, "contains a NUL byte"));
        }
        if text.starts_with('/') {
            return Ok(Self::Local(PathBuf::from(text)));
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "s3://") {
            return parse_s3(text, rest);
        }
        match Url::parse(text) {
            Ok(parsed) => match parsed.scheme() {
                "http" | "https" => {
                    if parsed.host_str().is_none_or(str::is_empty) {
                        return Err(invalid(text, "no host"));
                    }
                    Ok(Self::Http(parsed))
                }
                scheme => Err(invalid(
                    text,
                    format!("scheme {scheme}:// is not accepted ({ACCEPTED})"),
                )),
            },
            Err(url::ParseError::RelativeUrlWithoutBase) => Err(invalid(
                text,
                format!("relative path: media paths must be absolute ({ACCEPTED})"),
            )),
            Err(e) => Err(invalid(text, format!("not a valid URL: {e}"))),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn parse_s3(text: &str, rest: &str) -> Result<MediaSource, MediaError> {
    let Some((bucket, key)) = rest.split_once('/') else {
        return Err(invalid(text, "no object key (expected s3://bucket/key)"));
    };
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if !bucket_ok {
        return Err(invalid(
            text,
            format!("{bucket:?} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')"),
        ));
    }
    if key.is_empty() {
        return Err(invalid(text, "no object key (expected s3://bucket/key)"));
    }
    // Such keys cannot be put in a URL faithfully: `.`/`..` segments are
    // resolved away and could address another object or bucket.
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(invalid(text, "object key has a '.' or '..' segment"));
    }
    Ok(MediaSource::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

impl fmt::Display for MediaSource {
    /// The source without secrets (no query string or user info).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Http(url) => f.write_str(&redact(url.as_str())),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match MediaSource::parse(url) {
            Ok(source) => panic!("{url} accepted as {source:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepted_forms() -> Result<(), MediaError> {
        assert_eq!(
            MediaSource::parse("/tmp/bookmarkai-videos/a.mp4")?,
            MediaSource::Local("/tmp/bookmarkai-videos/a.mp4".into())
        );
        assert!(matches!(
            MediaSource::parse("https://cdn.example.org/v.mp4?sig=1")?,
            MediaSource::Http(_)
        ));
        assert_eq!(
            MediaSource::parse("s3://bookmarkai-media-development/temp/videos/7301234567890.mp4")?,
            MediaSource::S3 {
                bucket: "bookmarkai-media-development".into(),
                key: "temp/videos/7301234567890.mp4".into()
            }
        );
        Ok(())
    }

    #[test]
    fn refused_forms_say_why() {
        assert!(reason("file:///etc/passwd").contains("scheme file:// is not accepted"));
        assert!(reason("ftp://example.org/a.mp4").contains("scheme ftp://"));
        assert!(reason("videos/a.mp4").contains("relative path"));
        assert!(reason("../a.mp4").contains("relative path"));
        assert!(reason("").contains("empty"));
        assert!(reason("s3://bucket").contains("no object key"));
        assert!(reason("s3://bucket/").contains("no object key"));
        assert!(reason("s3://Bad_Bucket/k").contains("not a valid bucket name"));
        assert!(reason("s3://bucket/a/../../other/k").contains("'..' segment"));
        assert!(reason("http://:80/a.mp4").contains("host"));
    }

    #[test]
    fn display_and_errors_hide_secrets() {
        let source = MediaSource::parse("https://user:pw@example.org/v.mp4?token=s3cret");
        let text = source.map(|s| s.to_string()).unwrap_or_default();
        assert_eq!(text, "https://example.org/v.mp4");
        assert!(!reason("gopher://u:pw@example.org/?token=s3cret").contains("s3cret"));
    }
}
