//! The two error enums of the crate: [`MediaError`] (acquiring media) and
//! [`DecodeError`] (turning it into samples). Each says whether a retry can
//! help, so a worker maps it to retry or dead-letter without inspecting it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Why media could not be acquired.
///
/// Messages name the offending path, URL (without its query string, which may
/// hold credentials), address or object, so an operator can act on the line
/// alone. [`MediaError::is_transient`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The media URL is not one of the accepted forms.
    #[error("media URL {url:?} refused: {reason}")]
    InvalidSource {
        /// The URL as given (query string removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local path that does not resolve inside any media root.
    #[error("media path {path} is outside the media roots [{roots}]")]
    OutsideRoots {
        /// The path as given, or where its symlinks lead.
        path: PathBuf,
        /// The configured roots, comma-separated.
        roots: String,
    },
    /// A local path that does not exist (or a dangling symlink).
    #[error("media path {path} does not exist")]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A local path that exists but is not a regular file.
    #[error("media path {path} is not a regular file")]
    NotAFile {
        /// The resolved path.
        path: PathBuf,
    },
    /// Reading local media, or writing the temporary copy of remote media, failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing temporary file", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A host resolved to (or is) an address the policy refuses.
    #[error("address {addr}{} is {class}: refused (allow it with MEDIA_ALLOW_ADDRESSES)", host_text(host, *addr))]
    AddressRefused {
        /// The host name or literal from the URL.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Its class, e.g. "link-local/metadata" or "private (RFC 1918)".
        class: &'static str,
    },
    /// The host name did not resolve to any address.
    #[error("could not resolve {host}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// A redirect that cannot be followed.
    #[error("redirect from {from} refused: {reason}")]
    BadRedirect {
        /// The URL that answered with the redirect.
        from: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More redirects than `MEDIA_MAX_REDIRECTS`.
    #[error("too many redirects fetching {url} (limit {limit})")]
    TooManyRedirects {
        /// The URL first requested.
        url: String,
        /// The configured limit.
        limit: usize,
    },
    /// The server answered with a status that is not a success.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Connecting, or waiting for data, took longer than the configured timeout.
    #[error("timed out {phase} {url} (after {timeout:?})")]
    Timeout {
        /// "connecting to" or "reading from".
        phase: &'static str,
        /// The URL requested.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection failed or broke (refused, reset, TLS failure, ...).
    #[error("fetching {url} failed: {reason}")]
    Connection {
        /// The URL requested.
        url: String,
        /// The error chain, flattened.
        reason: String,
    },
    /// The media is larger than `MEDIA_MAX_BYTES`.
    #[error("{url} is larger than the {limit}-byte cap (MEDIA_MAX_BYTES){}", declared_text(*.declared))]
    TooLarge {
        /// The URL or path requested.
        url: String,
        /// The configured cap.
        limit: u64,
        /// The size the server declared or the local file has, when known.
        declared: Option<u64>,
    },
    /// The S3 endpoint answered with an error.
    #[error("s3://{bucket}/{key}: HTTP {status}{}", s3_code_text(code.as_deref(), message.as_deref()))]
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// The HTTP status.
        status: u16,
        /// The S3 error code, e.g. `NoSuchKey`, when the body carried one.
        code: Option<String>,
        /// The S3 error message, when the body carried one.
        message: Option<String>,
    },
    /// The configuration cannot work (bad S3 endpoint, temp dir, ...).
    #[error("media configuration: {0}")]
    Config(String),
}

fn host_text(host: &str, addr: IpAddr) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok_and(|h| h == addr) {
        String::new()
    } else {
        format!(" (of {host})")
    }
}

fn declared_text(declared: Option<u64>) -> String {
    declared.map_or_else(String::new, |n| format!(": {n} bytes"))
}

fn s3_code_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" {c}: {m}"),
        (Some(c), None) => format!(" {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

/// Is an HTTP status worth retrying? 408, 425, 429 and every 5xx are.
pub(crate) fn status_is_transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

impl MediaError {
    /// `true` when retrying later can succeed (server or network trouble, a
    /// timeout, a full disk); `false` when the same input will always fail
    /// (bad URL, refused address, missing object, over the size cap).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::HttpStatus { status, .. } | Self::S3 { status, .. } => {
                status_is_transient(*status)
            }
            Self::Timeout { .. } | Self::Connection { .. } | Self::Resolve { .. } => true,
            Self::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            Self::InvalidSource { .. }
            | Self::OutsideRoots { .. }
            | Self::NotFound { .. }
            | Self::NotAFile { .. }
            | Self::AddressRefused { .. }
            | Self::BadRedirect { .. }
            | Self::TooManyRedirects { .. }
            | Self::TooLarge { .. }
            | Self::Config(_) => false,
        }
    }
}

/// Why media could not be decoded to samples.
///
/// Almost always permanent: the same bytes fail the same way.
/// [`DecodeError::is_transient`] is `true` only for resource trouble on this
/// machine (reading the file, starting ffmpeg).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The media file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path} is empty (0 bytes)")]
    Empty {
        /// The media file.
        path: PathBuf,
    },
    /// Neither symphonia nor ffmpeg recognises the file as media, or it is
    /// damaged beyond decoding.
    #[error("{path} is not decodable media: {detail}")]
    NotMedia {
        /// The media file.
        path: PathBuf,
        /// What each decoder said.
        detail: String,
    },
    /// The container has no audio track (e.g. a silent video).
    #[error("{path} has no audio track")]
    NoAudioTrack {
        /// The media file.
        path: PathBuf,
    },
    /// The audio codec needs ffmpeg, which is not available.
    #[error("no decoder for codec {codec} and ffmpeg is not installed ({ffmpeg})")]
    NoDecoder {
        /// The codec's name, e.g. "opus".
        codec: String,
        /// The ffmpeg program that was looked for.
        ffmpeg: String,
    },
    /// The media is longer than the configured cap.
    #[error("media is {} long, over the {} cap", fmt_secs(*.duration), fmt_secs(*.max))]
    TooLong {
        /// The declared or decoded duration (a lower bound when decoding stopped at the cap).
        duration: Duration,
        /// The configured cap.
        max: Duration,
    },
    /// ffmpeg ran and failed.
    #[error("ffmpeg failed on {path} ({status}): {stderr}")]
    Ffmpeg {
        /// The media file.
        path: PathBuf,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// ffmpeg could not be started (other than "not installed").
    #[error("starting {program}: {source}")]
    FfmpegSpawn {
        /// The ffmpeg program.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// ffmpeg ran longer than its timeout and was killed.
    #[error("ffmpeg took longer than {timeout:?} on {path}: killed")]
    FfmpegTimeout {
        /// The media file.
        path: PathBuf,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The stream claims a sample rate no real audio has (a crafted header
    /// would otherwise size the resampler: gigabytes for a 48 KB file).
    #[error("a sample rate of {rate} Hz is outside {} to {} Hz", SAMPLE_RATES.start(), SAMPLE_RATES.end())]
    SampleRate {
        /// The claimed rate.
        rate: u32,
    },
    /// Resampling failed (an internal error).
    #[error("resampling from {from} Hz: {reason}")]
    Resample {
        /// The input sample rate.
        from: u32,
        /// The resampler's error.
        reason: String,
    },
}

/// The sample rates audio is decoded at, in Hz: telephone-band 1 kHz up
/// to studio 384 kHz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl DecodeError {
    /// `true` only when this machine failed (a read error, ffmpeg could not
    /// start); the media itself being bad, long or unsupported is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::FfmpegSpawn { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_retry_and_dead_letter() {
        let err = |status| MediaError::HttpStatus {
            url: "https://example.org/a.mp4".into(),
            status,
        };
        for status in [404, 403, 410, 400, 401] {
            assert!(!err(status).is_transient(), "{status}");
        }
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(err(status).is_transient(), "{status}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let err = MediaError::S3 {
            bucket: "b".into(),
            key: "k.mp4".into(),
            status: 404,
            code: Some("NoSuchKey".into()),
            message: Some("The specified key does not exist.".into()),
        };
        assert_eq!(
            err.to_string(),
            "s3://b/k.mp4: HTTP 404 NoSuchKey: The specified key does not exist."
        );
        let err = DecodeError::TooLong {
            duration: Duration::from_secs(90),
            max: Duration::from_secs(60),
        };
        assert_eq!(err.to_string(), "media is 90.0 s long, over the 60.0 s cap");
    }
}
