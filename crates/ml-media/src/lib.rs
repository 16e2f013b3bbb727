//! Media acquisition and decoding for the transcription worker.
//!
//! A task's `mediaUrl` becomes samples in three steps:
//!
//! 1. [`MediaSource::parse`] validates it: an absolute local path, an
//!    `http(s)://` URL or `s3://bucket/key`; anything else is refused.
//! 2. [`MediaFetcher::fetch`] makes it a local file ([`FetchedMedia`]):
//!    local paths must resolve inside `MEDIA_ROOTS`; HTTP(S) downloads refuse
//!    non-public addresses (checked on the addresses actually connected to,
//!    and again on every redirect), stop at a size cap and land in a temp
//!    file deleted on drop; S3 objects are fetched with a presigned GET.
//! 3. [`decode_audio`] (blocking) turns the file into 16 kHz mono `f32`
//!    samples, with symphonia or, for codecs it lacks such as Opus, ffmpeg.
//!
//! Errors say whether a retry can help ([`MediaError::is_transient`],
//! [`DecodeError::is_transient`]). Settings come from [`MediaArgs`].
//!
//! | module | concept |
//! |---|---|
//! | `config` | [`MediaArgs`]: settings, env names, defaults |
//! | `source` | [`MediaSource`]: parsing and validating `mediaUrl` |
//! | `fetch` | [`MediaFetcher`], [`FetchedMedia`] |
//! | `local` | media roots and path resolution |
//! | `policy`, `resolver` | the address policy and the DNS resolver enforcing it |
//! | `http` | HTTP(S) downloads with checked redirects |
//! | `s3` | presigned S3 downloads |
//! | `download` | streaming a body to a size-capped temp file |
//! | `decode` | [`decode_audio`]: symphonia, ffmpeg fallback, resampling, levels |
//! | `error` | [`MediaError`], [`DecodeError`] |

mod config;
mod decode;
mod download;
mod error;
mod fetch;
mod http;
mod local;
mod policy;
mod resolver;
mod s3;
mod source;

pub use config::{
    AddressList, DEFAULT_MAX_BYTES, DEFAULT_MAX_DURATION_SECS, DEFAULT_MEDIA_ROOT, MediaArgs,
};
pub use decode::{
    DecodeOptions, DecodedAudio, NORMALIZE_MAX_GAIN_DB, NORMALIZE_PEAK_CEILING_DBFS,
    NORMALIZE_TARGET_DBFS, TARGET_RATE, decode_audio, rms_dbfs,
};
pub use error::{DecodeError, MediaError, SAMPLE_RATES};
pub use fetch::{FetchedMedia, MediaFetcher};
pub use source::MediaSource;
