//! Decoding media to what Whisper takes: 16 kHz mono `f32` samples.
//!
//! symphonia first (pure Rust: MP4/M4A/MOV with AAC or ALAC, MP3, WAV,
//! FLAC, Ogg Vorbis, MKV/WebM with those codecs, AIFF, CAF); ffmpeg as a
//! subprocess only for what symphonia cannot decode (Opus in WebM/Ogg, AC-3,
//! MPEG-TS, ...). Blocking: call [`decode_audio`] from `spawn_blocking` or a
//! dedicated thread.

mod ffmpeg;
mod level;
mod native;
mod resample;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use level::{
    NORMALIZE_MAX_GAIN_DB, NORMALIZE_PEAK_CEILING_DBFS, NORMALIZE_TARGET_DBFS, rms_dbfs,
};

use crate::error::DecodeError;
use ffmpeg::FfmpegFailure;
use native::Outcome;

/// The sample rate of [`DecodedAudio::samples`].
pub const TARGET_RATE: u32 = 16_000;

/// How to decode.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Longest audio accepted; longer media fails with [`DecodeError::TooLong`]
    /// (checked against the container's declared duration, then while decoding).
    pub max_duration: Duration,
    /// Apply RMS loudness normalisation (see [`NORMALIZE_TARGET_DBFS`]).
    pub normalize: bool,
    /// The ffmpeg program for codecs symphonia lacks; `None` means `ffmpeg`
    /// looked up on `PATH`.
    pub ffmpeg: Option<PathBuf>,
    /// How long one ffmpeg run may take before it is killed.
    pub ffmpeg_timeout: Duration,
}

impl Default for DecodeOptions {
    /// Two hours of audio, normalised, `ffmpeg` from `PATH`, 10-minute ffmpeg timeout.
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(crate::config::DEFAULT_MAX_DURATION_SECS),
            normalize: true,
            ffmpeg: None,
            ffmpeg_timeout: Duration::from_secs(600),
        }
    }
}

/// Decoded audio, ready for Whisper.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    /// Mono samples at [`Self::sample_rate`], nominally within [-1, 1].
    pub samples: Vec<f32>,
    /// Always [`TARGET_RATE`] (16 000).
    pub sample_rate: u32,
    /// Length of `samples` as time.
    pub duration: Duration,
    /// What decoded it: `symphonia:<codec>` (e.g. `symphonia:aac`) or `ffmpeg`.
    pub source: String,
    /// RMS level before normalisation, in dBFS (see [`rms_dbfs`]): use this
    /// for silence detection, since normalisation raises quiet input.
    pub input_rms_dbfs: f32,
    /// Gain normalisation applied, in dB (0 when off).
    pub gain_db: f32,
}

pub(crate) fn too_long(duration: Duration, max: Duration) -> DecodeError {
    DecodeError::TooLong { duration, max }
}

/// Decodes the audio of a media file to 16 kHz mono.
///
/// # Errors
///
/// A [`DecodeError`] when the file is empty, unreadable, not media, has no
/// audio track, is longer than `options.max_duration`, or needs ffmpeg
/// where ffmpeg is missing or fails. All are permanent except local I/O
/// trouble ([`DecodeError::is_transient`]).
#[tracing::instrument(skip_all, fields(path = %path.display()))]
pub fn decode_audio(path: &Path, options: &DecodeOptions) -> Result<DecodedAudio, DecodeError> {
    let started = Instant::now();
    let meta = std::fs::metadata(path).map_err(|source| DecodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(DecodeError::Empty {
            path: path.to_owned(),
        });
    }
    let cap = options.max_duration;
    let (mut samples, source) = match native::decode(path, cap)? {
        Outcome::Decoded { samples, codec } => (samples, format!("symphonia:{codec}")),
        Outcome::NoDecoder { codec } => {
            let samples = run_ffmpeg(path, options).map_err(|failure| match failure {
                FfmpegFailure::NotInstalled(program) => DecodeError::NoDecoder {
                    codec,
                    ffmpeg: program.display().to_string(),
                },
                other => ffmpeg_error(path, other),
            })?;
            (samples, "ffmpeg".to_owned())
        }
        Outcome::Unrecognised { detail } => {
            tracing::debug!(detail, "symphonia cannot read it; trying ffmpeg");
            let samples = run_ffmpeg(path, options).map_err(|failure| {
                let ffmpeg = match failure {
                    FfmpegFailure::NotInstalled(program) => {
                        format!("ffmpeg ({}) is not installed", program.display())
                    }
                    FfmpegFailure::Failed { stderr, .. } => format!("ffmpeg: {stderr}"),
                    other => return ffmpeg_error(path, other),
                };
                DecodeError::NotMedia {
                    path: path.to_owned(),
                    detail: format!("symphonia: {detail}; {ffmpeg}"),
                }
            })?;
            (samples, "ffmpeg".to_owned())
        }
    };
    let duration = Duration::from_secs_f64(samples.len() as f64 / f64::from(TARGET_RATE));
    if duration > cap {
        return Err(too_long(duration, cap));
    }
    if samples.is_empty() {
        return Err(DecodeError::NotMedia {
            path: path.to_owned(),
            detail: format!("{source} decoded no audio samples"),
        });
    }
    let input_rms_dbfs = rms_dbfs(&samples);
    let gain_db = if options.normalize {
        level::normalize(&mut samples)
    } else {
        0.0
    };
    tracing::info!(
        source,
        duration_s = duration.as_secs_f64(),
        input_rms_dbfs,
        gain_db,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "media decoded"
    );
    Ok(DecodedAudio {
        samples,
        sample_rate: TARGET_RATE,
        duration,
        source,
        input_rms_dbfs,
        gain_db,
    })
}

fn ffmpeg_program(options: &DecodeOptions) -> PathBuf {
    options
        .ffmpeg
        .clone()
        .unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

fn run_ffmpeg(path: &Path, options: &DecodeOptions) -> Result<Vec<f32>, FfmpegFailure> {
    ffmpeg::decode(
        &ffmpeg_program(options),
        path,
        options.max_duration,
        options.ffmpeg_timeout,
    )
}

fn ffmpeg_error(path: &Path, failure: FfmpegFailure) -> DecodeError {
    match failure {
        FfmpegFailure::NotInstalled(program) => DecodeError::FfmpegSpawn {
            program: program.display().to_string(),
            source: std::io::ErrorKind::NotFound.into(),
        },
        FfmpegFailure::Spawn(program, source) => DecodeError::FfmpegSpawn {
            program: program.display().to_string(),
            source,
        },
        FfmpegFailure::Timeout(timeout) => DecodeError::FfmpegTimeout {
            path: path.to_owned(),
            timeout,
        },
        FfmpegFailure::Failed { status, stderr } => DecodeError::Ffmpeg {
            path: path.to_owned(),
            status,
            stderr,
        },
    }
}
