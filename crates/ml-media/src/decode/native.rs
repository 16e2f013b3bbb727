//! Pure-Rust decoding with symphonia: probe the container, pick the audio
//! track, refuse it early when its declared duration is over the cap, then
//! decode packet by packet, downmixing and resampling as it goes.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoderOptions, well_known as codec};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, Track, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::decode::resample::{MonoResampler, check_rate};
use crate::decode::too_long;
use crate::error::DecodeError;

/// How often a long decode logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What symphonia made of a file.
pub(crate) enum Outcome {
    /// Decoded: 16 kHz mono samples and the codec's short name.
    Decoded {
        samples: Vec<f32>,
        codec: &'static str,
    },
    /// A container symphonia reads, with a codec it cannot decode: worth
    /// handing to ffmpeg. The declared duration was already checked.
    NoDecoder { codec: String },
    /// Not something symphonia could make sense of (ffmpeg may).
    Unrecognised { detail: String },
}

/// Decodes `path` with symphonia, refusing more than `cap` of audio.
pub(crate) fn decode(path: &Path, cap: Duration) -> Result<Outcome, DecodeError> {
    let file = File::open(path).map_err(|source| DecodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = match symphonia::default::get_probe().probe(
        &hint,
        stream,
        FormatOptions::default(),
        MetadataOptions::default(),
    ) {
        Ok(format) => format,
        Err(e) => {
            return Ok(Outcome::Unrecognised {
                detail: e.to_string(),
            });
        }
    };
    let container = format.format_info().short_name;
    let Some(track) = format.default_track(TrackType::Audio).cloned() else {
        if format.tracks().is_empty() {
            return Ok(Outcome::Unrecognised {
                detail: format!("{container} container without tracks"),
            });
        }
        return Err(DecodeError::NoAudioTrack {
            path: path.to_owned(),
        });
    };
    let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()).cloned() else {
        return Ok(Outcome::Unrecognised {
            detail: format!("{container} audio track without codec parameters"),
        });
    };
    // Before any decoder or resampler is sized by it.
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }
    if let Some(declared) = declared_duration(&track, params.sample_rate)
        && declared > cap
    {
        return Err(too_long(declared, cap));
    }
    let mut decoder = match symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
    {
        Ok(decoder) => decoder,
        Err(e) => {
            tracing::debug!(container, error = %e, "no symphonia decoder for the codec");
            return Ok(Outcome::NoDecoder {
                codec: codec_name(params.codec),
            });
        }
    };
    let codec = decoder.codec_info().short_name;
    tracing::debug!(
        container,
        codec,
        rate = params.sample_rate,
        "decoding with symphonia"
    );

    let started = Instant::now();
    let mut last_report = started;
    let mut resampler: Option<MonoResampler> = None;
    let mut finished: Vec<f32> = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let mut decoded_secs = 0.0f64;
    let (mut good, mut bad) = (0u64, 0u64);
    let mut last_bad = String::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::debug!("media ends early (truncated file?)");
                break;
            }
            Err(e) if good == 0 => {
                return Ok(Outcome::Unrecognised {
                    detail: format!("{container}: {e}"),
                });
            }
            Err(e) => {
                return Err(DecodeError::NotMedia {
                    path: path.to_owned(),
                    detail: format!("{container} stream broken after {decoded_secs:.1} s: {e}"),
                });
            }
        };
        if packet.track_id != track.id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(SymphoniaError::DecodeError(msg)) => {
                bad += 1;
                msg.clone_into(&mut last_bad);
                continue;
            }
            Err(SymphoniaError::IoError(e)) => {
                bad += 1;
                last_bad = e.to_string();
                continue;
            }
            Err(e) => {
                return Err(DecodeError::NotMedia {
                    path: path.to_owned(),
                    detail: format!("{codec}: {e}"),
                });
            }
        };
        good += 1;
        if buffer.frames() == 0 {
            continue;
        }
        let rate = buffer.spec().rate();
        buffer.copy_to_vecs_planar::<f32>(&mut planes);
        downmix(&planes, &mut mono);
        decoded_secs += mono.len() as f64 / f64::from(rate);
        if decoded_secs > cap.as_secs_f64() {
            return Err(too_long(Duration::from_secs_f64(decoded_secs), cap));
        }
        // A rate change mid-stream (rare) flushes the old resampler.
        if resampler.as_ref().is_some_and(|r| r.rate() != rate)
            && let Some(done) = resampler.take()
        {
            finished.extend(done.finish()?);
        }
        if resampler.is_none() {
            resampler = Some(MonoResampler::new(rate)?);
        }
        if let Some(r) = resampler.as_mut() {
            r.push(&mono)?;
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            tracing::info!(
                codec,
                decoded_s = decoded_secs as u64,
                elapsed_s = started.elapsed().as_secs(),
                "decoding media"
            );
        }
    }
    if good == 0 {
        return Ok(Outcome::Unrecognised {
            detail: format!(
                "{container}/{codec}: no packet could be decoded ({bad} failed: {last_bad})"
            ),
        });
    }
    if bad > good {
        return Err(DecodeError::NotMedia {
            path: path.to_owned(),
            detail: format!(
                "{codec}: {bad} of {} packets are corrupt ({last_bad})",
                bad + good
            ),
        });
    }
    if bad > 0 {
        tracing::warn!(codec, bad, good, last_bad, "skipped corrupt packets");
    }
    if let Some(r) = resampler {
        finished.extend(r.finish()?);
    }
    tracing::debug!(
        codec,
        samples = finished.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "symphonia decode finished"
    );
    Ok(Outcome::Decoded {
        samples: finished,
        codec,
    })
}

/// Averages the channels into `mono`.
fn downmix(planes: &[Vec<f32>], mono: &mut Vec<f32>) {
    let frames = planes.first().map_or(0, Vec::len);
    mono.clear();
    mono.resize(frames, 0.0);
    for plane in planes {
        for (m, s) in mono.iter_mut().zip(plane) {
            *m += s;
        }
    }
    if planes.len() > 1 {
        let scale = 1.0 / planes.len() as f32;
        for m in mono.iter_mut() {
            *m *= scale;
        }
    }
}

/// The track's duration as the container declares it, when it does.
fn declared_duration(track: &Track, sample_rate: Option<u32>) -> Option<Duration> {
    let from_time_base = track
        .time_base
        .zip(track.duration)
        .and_then(|(base, dur)| base.calc_duration(dur))
        .map(|t| t.as_secs_f64());
    let from_frames = track
        .num_frames
        .zip(sample_rate.filter(|r| *r > 0))
        .map(|(frames, rate)| frames as f64 / f64::from(rate));
    from_time_base
        .or(from_frames)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A readable name for codecs without a symphonia decoder here.
fn codec_name(id: AudioCodecId) -> String {
    let name = match id {
        codec::CODEC_ID_OPUS => "opus",
        codec::CODEC_ID_SPEEX => "speex",
        codec::CODEC_ID_AC3 => "ac3",
        codec::CODEC_ID_EAC3 => "eac3",
        codec::CODEC_ID_AC4 => "ac4",
        codec::CODEC_ID_DCA => "dts",
        codec::CODEC_ID_WMA => "wma",
        codec::CODEC_ID_MP1 => "mp1",
        codec::CODEC_ID_MP2 => "mp2",
        codec::CODEC_ID_MUSEPACK => "musepack",
        codec::CODEC_ID_WAVPACK => "wavpack",
        codec::CODEC_ID_MONKEYS_AUDIO => "ape",
        codec::CODEC_ID_TTA => "tta",
        codec::CODEC_ID_ATRAC1 | codec::CODEC_ID_ATRAC3 | codec::CODEC_ID_ATRAC3PLUS => "atrac",
        codec::CODEC_ID_COOK => "cook",
        _ => return format!("{id} (symphonia codec id)"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        let mut mono = Vec::new();
        downmix(&[vec![1.0, 0.0, -1.0], vec![0.0, 0.0, -1.0]], &mut mono);
        assert_eq!(mono, [0.5, 0.0, -1.0]);
        downmix(&[vec![0.25, 0.5]], &mut mono);
        assert_eq!(mono, [0.25, 0.5]);
    }

    #[test]
    fn codec_names() {
        assert_eq!(codec_name(codec::CODEC_ID_OPUS), "opus");
        let unknown = AudioCodecId::new(symphonia::core::common::FourCc::new(*b"zzzz"));
        assert!(codec_name(unknown).contains("symphonia codec id"));
    }
}
