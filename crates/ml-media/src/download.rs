//! Streams a response body into a temporary file under a size cap: the one
//! code path HTTP(S) and S3 downloads share.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::MediaError;

/// How often a long download logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Where and how much to download.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    pub(crate) temp_dir: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    /// The most a whole body may take to arrive.
    pub(crate) download_timeout: Duration,
}

impl Sink {
    /// Refuses a response whose declared length is over the cap, before any
    /// of its body is read.
    pub(crate) fn check_declared(
        &self,
        response: &reqwest::Response,
        shown: &str,
    ) -> Result<(), MediaError> {
        response
            .content_length()
            .map_or(Ok(()), |n| self.check_len(n, shown))
    }

    /// Refuses `len` bytes of `shown` when over the cap.
    pub(crate) fn check_len(&self, len: u64, shown: &str) -> Result<(), MediaError> {
        if len > self.max_bytes {
            return Err(self.too_large(shown, Some(len)));
        }
        Ok(())
    }

    fn too_large(&self, shown: &str, declared: Option<u64>) -> MediaError {
        MediaError::TooLarge {
            url: shown.to_owned(),
            limit: self.max_bytes,
            declared,
        }
    }

    /// Writes the body of `response` to a new temporary file named
    /// `ml-media-*<suffix>` in the temp dir and returns its path, which
    /// deletes the file when dropped. On any error (or when the future is
    /// dropped) the partial file is deleted.
    ///
    /// `shown` is the source as it may appear in logs and errors.
    pub(crate) async fn save(
        &self,
        mut response: reqwest::Response,
        shown: &str,
        suffix: &str,
    ) -> Result<(TempPath, u64), MediaError> {
        self.check_declared(&response, shown)?;
        let declared = response.content_length();
        let temp = tempfile::Builder::new()
            .prefix("ml-media-")
            .suffix(suffix)
            .tempfile_in(&self.temp_dir)
            .map_err(|source| MediaError::Io {
                action: "creating a temporary file in",
                path: self.temp_dir.clone(),
                source,
            })?;
        let (file, path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let started = Instant::now();
        let mut last_report = started;
        let mut written: u64 = 0;
        tracing::debug!(source = shown, declared, path = %path.display(), "download started");
        let deadline = tokio::time::Instant::now() + self.download_timeout;
        loop {
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .map_err(|_| MediaError::Timeout {
                    phase: "downloading",
                    url: shown.to_owned(),
                    timeout: self.download_timeout,
                })?
                .map_err(|e| self.transfer_error(e, shown))?;
            let Some(chunk) = chunk else { break };
            written += chunk.len() as u64;
            if written > self.max_bytes {
                tracing::warn!(
                    source = shown,
                    limit = self.max_bytes,
                    "download over the size cap"
                );
                return Err(self.too_large(shown, declared));
            }
            file.write_all(&chunk)
                .await
                .map_err(|source| write_error(&path, source))?;
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                tracing::info!(
                    source = shown,
                    bytes = written,
                    declared,
                    elapsed_s = started.elapsed().as_secs(),
                    "downloading media"
                );
            }
        }
        file.flush()
            .await
            .map_err(|source| write_error(&path, source))?;
        drop(file);
        tracing::info!(
            source = shown,
            bytes = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media downloaded"
        );
        Ok((path, written))
    }

    /// Maps a reqwest error to the [`MediaError`] an operator understands.
    pub(crate) fn transfer_error(&self, error: reqwest::Error, shown: &str) -> MediaError {
        if let Some(failure) = crate::resolver::find_failure(&error) {
            return failure.into();
        }
        if error.is_timeout() {
            let (phase, timeout) = if error.is_connect() {
                ("connecting to", self.connect_timeout)
            } else {
                ("reading from", self.read_timeout)
            };
            return MediaError::Timeout {
                phase,
                url: shown.to_owned(),
                timeout,
            };
        }
        MediaError::Connection {
            url: shown.to_owned(),
            reason: error_chain(&error.without_url()),
        }
    }
}

fn write_error(path: &Path, source: std::io::Error) -> MediaError {
    MediaError::Io {
        action: "writing temporary file",
        path: path.to_owned(),
        source,
    }
}

/// `error: cause: cause...`, without the URL reqwest puts in its own text
/// (it may carry a presigned signature).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = std::error::Error::source(error);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// A file-name suffix (`.mp4`) from the last segment of a URL path or key,
/// so decoders get the usual extension as a hint; empty when there is none
/// or it looks odd.
pub(crate) fn suffix_of(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or_default();
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=8).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        assert_eq!(suffix_of("/v/a.MP4"), ".mp4");
        assert_eq!(suffix_of("temp/videos/7301234567890.webm"), ".webm");
        assert_eq!(suffix_of("/v/noext"), "");
        assert_eq!(suffix_of("/v/.hidden"), "");
        assert_eq!(suffix_of("/v/a.tar;rm -rf"), "");
        assert_eq!(suffix_of("/v.d/a"), "");
    }
}
