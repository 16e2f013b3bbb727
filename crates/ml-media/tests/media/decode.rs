//! Decoding real speech in the containers and codecs users share, and the
//! clear errors for what cannot be decoded.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use ml_media::{
    DecodeError, DecodeOptions, DecodedAudio, NORMALIZE_TARGET_DBFS, decode_audio, rms_dbfs,
};

use crate::support::{best_alignment, ffmpeg, jfk_wav, media, read_wav_pcm16};

fn options() -> DecodeOptions {
    DecodeOptions {
        normalize: false,
        ..DecodeOptions::default()
    }
}

fn decode_err(path: &Path, options: &DecodeOptions) -> Result<DecodeError> {
    match decode_audio(path, options) {
        Ok(audio) => bail!(
            "{} decoded ({} via {})",
            path.display(),
            audio.samples.len(),
            audio.source
        ),
        Err(e) => Ok(e),
    }
}

/// Every medium decodes to the original speech: same length, same signal
/// (after the codec's delay), same level; symphonia for all but Opus.
#[test]
fn every_format_decodes_to_the_original_speech() -> Result<()> {
    let original = Original::load()?;
    let mut report = Vec::new();
    for medium in media()? {
        let audio = decode_audio(&medium.path, &options())
            .with_context(|| format!("decoding {}", medium.name))?;
        report.push(original.check(medium.name, medium.decoder, &audio)?);
    }
    println!("{}", report.join("\n"));
    Ok(())
}

/// The static ffmpeg that docker/Dockerfile puts into the whisper-worker
/// image (`scripts/fetch-models ffmpeg-static`) decodes what symphonia cannot:
/// the image's distroless base has no ffmpeg of its own.
#[test]
fn the_whisper_images_ffmpeg_decodes_opus() -> Result<()> {
    let program = ml_testkit::env::models_dir().join("ffmpeg-static/ffmpeg");
    ensure!(
        program.is_file(),
        "{} is missing: run scripts/setup (or scripts/fetch-models ffmpeg-static)",
        program.display()
    );
    let webm = media()?
        .iter()
        .find(|m| m.name == "webm-vp8-opus")
        .context("webm")?;
    let with_image_ffmpeg = DecodeOptions {
        ffmpeg: Some(program),
        ..options()
    };
    let audio = decode_audio(&webm.path, &with_image_ffmpeg)?;
    println!("{}", Original::load()?.check(webm.name, "ffmpeg", &audio)?);
    Ok(())
}

/// The speech sample every test medium is made from.
struct Original {
    samples: Vec<f32>,
}

impl Original {
    fn load() -> Result<Self> {
        let (rate, samples) = read_wav_pcm16(&jfk_wav()?)?;
        ensure!(rate == 16_000, "the sample is {rate} Hz");
        Ok(Self { samples })
    }

    /// Checks that `audio`, decoded from the medium `name` by `decoder`, is
    /// the original: same length, same signal (after the codec's delay),
    /// same level, samples in range. Returns a report line.
    fn check(&self, name: &str, decoder: &str, audio: &DecodedAudio) -> Result<String> {
        let reference = &self.samples;
        let reference_secs = reference.len() as f64 / 16_000.0;
        let (corr, lag) = best_alignment(reference, &audio.samples, 2000);
        let level = rms_dbfs(&audio.samples) - rms_dbfs(reference);
        let secs = audio.duration.as_secs_f64();
        ensure!(audio.sample_rate == 16_000);
        ensure!(
            (audio.samples.len() as f64 / 16_000.0 - secs).abs() < 1e-3,
            "{name}: duration disagrees with samples"
        );
        ensure!(
            audio.source == decoder,
            "{name}: decoded by {}, expected {decoder}",
            audio.source
        );
        ensure!(
            (secs - reference_secs).abs() < 0.15,
            "{name}: {secs:.3} s, the original is {reference_secs:.3} s"
        );
        ensure!(
            corr > 0.9,
            "{name}: correlation {corr:.3} with the original"
        );
        ensure!(level.abs() < 1.5, "{name}: level off by {level:.2} dB");
        ensure!(
            audio
                .samples
                .iter()
                .all(|s| s.is_finite() && s.abs() <= 1.5),
            "{name}: samples out of range"
        );
        Ok(format!(
            "{name:16} {:22} {secs:.3} s  corr {corr:.4} at lag {lag:+}  level {level:+.2} dB",
            audio.source
        ))
    }
}

#[test]
fn normalisation_brings_quiet_speech_to_the_target_level() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let quiet = dir.path().join("quiet.flac");
    let speech = jfk_wav()?;
    ffmpeg([
        "-i",
        speech.to_str().context("path")?,
        "-af",
        "volume=-24dB",
        quiet.to_str().context("path")?,
    ])?;
    let plain = decode_audio(&quiet, &options())?;
    let normalized: DecodedAudio = decode_audio(
        &quiet,
        &DecodeOptions {
            normalize: true,
            ..DecodeOptions::default()
        },
    )?;
    ensure!(plain.gain_db == 0.0);
    ensure!((plain.input_rms_dbfs - normalized.input_rms_dbfs).abs() < 1e-3);
    ensure!(normalized.gain_db > 10.0, "gain {}", normalized.gain_db);
    let after = rms_dbfs(&normalized.samples);
    let peak = normalized
        .samples
        .iter()
        .fold(0.0f32, |m, s| m.max(s.abs()));
    // RMS reaches the target unless the peak ceiling limits the gain first.
    ensure!(after <= NORMALIZE_TARGET_DBFS + 0.1, "rms {after}");
    ensure!(after > plain.input_rms_dbfs + 10.0, "rms {after}");
    ensure!(peak <= 0.9, "peak {peak}");
    Ok(())
}

#[test]
fn synthetic_speech_from_espeak_decodes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let wav = dir.path().join("espeak.wav");
    ml_testkit::speech::espeak(
        "The quick brown fox jumps over the lazy dog. Ask not what your country can do for you.",
        "en",
        &wav,
    )?;
    let audio = decode_audio(&wav, &options())?;
    ensure!(
        audio.source.starts_with("symphonia:pcm"),
        "{}",
        audio.source
    );
    ensure!(
        audio.duration > Duration::from_secs(3),
        "{:?}",
        audio.duration
    );
    ensure!(
        audio.input_rms_dbfs > -40.0,
        "{} dBFS",
        audio.input_rms_dbfs
    );
    Ok(())
}

#[test]
fn empty_garbage_and_text_files_are_clear_permanent_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;

    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"")?;
    let err = decode_err(&empty, &options())?;
    ensure!(matches!(err, DecodeError::Empty { .. }), "{err:?}");
    ensure!(
        err.to_string().ends_with("empty.mp4 is empty (0 bytes)"),
        "{err}"
    );

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "These are my notes, not a video.\n".repeat(50))?;
    let err = decode_err(&text, &options())?;
    ensure!(matches!(err, DecodeError::NotMedia { .. }), "{err:?}");
    ensure!(
        err.to_string().contains("notes.mp4 is not decodable media"),
        "{err}"
    );

    // A real M4A whose body after the header is overwritten with noise.
    let m4a = media()?
        .iter()
        .find(|m| m.name == "m4a-aac")
        .context("m4a")?;
    let mut bytes = std::fs::read(&m4a.path)?;
    let mut x: u32 = 0x1234_5678;
    for b in bytes.iter_mut().skip(64) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let corrupt = dir.path().join("corrupt.m4a");
    std::fs::write(&corrupt, bytes)?;
    let err = decode_err(&corrupt, &options())?;
    ensure!(matches!(err, DecodeError::NotMedia { .. }), "{err:?}");
    ensure!(
        err.to_string().contains("symphonia:") && err.to_string().contains("ffmpeg"),
        "{err}"
    );

    for err in [
        decode_err(&empty, &options())?,
        decode_err(&text, &options())?,
        err,
    ] {
        ensure!(!err.is_transient(), "{err}");
    }
    Ok(())
}

/// A 16-bit mono PCM WAV whose header claims `rate` Hz, with `bytes` of
/// silence.
fn wav_claiming(rate: u32, bytes: u32) -> Vec<u8> {
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&rate.wrapping_mul(2).to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&bytes.to_le_bytes());
    wav.resize(wav.len() + bytes as usize, 0);
    wav
}

/// A header claiming an impossible sample rate is refused before anything
/// is sized by it (2147483629 Hz once grew a worker past 7 GB).
#[test]
fn impossible_sample_rates_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for rate in [2_147_483_629, 384_001, 999] {
        let path = dir.path().join(format!("{rate}.wav"));
        std::fs::write(&path, wav_claiming(rate, 48_000))?;
        let err = decode_err(&path, &options())?;
        ensure!(
            matches!(err, DecodeError::SampleRate { rate: r } if r == rate),
            "{rate}: {err:?}"
        );
        ensure!(
            err.to_string() == format!("a sample rate of {rate} Hz is outside 1000 to 384000 Hz"),
            "{err}"
        );
        ensure!(!err.is_transient(), "{err}");
    }
    // The ends of the range are real audio.
    for rate in [*ml_media::SAMPLE_RATES.start(), 8_000, 384_000] {
        let path = dir.path().join(format!("{rate}.wav"));
        std::fs::write(&path, wav_claiming(rate, 2 * rate))?;
        let audio = decode_audio(&path, &options())?;
        ensure!(
            audio.samples.len().abs_diff(16_000) < 200,
            "{rate}: {}",
            audio.samples.len()
        );
    }
    Ok(())
}

#[test]
fn media_over_the_duration_cap_is_refused() -> Result<()> {
    let capped = DecodeOptions {
        max_duration: Duration::from_secs(5),
        ..options()
    };
    for medium in media()? {
        let err = decode_err(&medium.path, &capped)?;
        ensure!(
            matches!(err, DecodeError::TooLong { max, .. } if max == Duration::from_secs(5)),
            "{}: {err:?}",
            medium.name
        );
        ensure!(err.to_string().contains("over the 5.0 s cap"), "{err}");
    }
    // Raw ADTS AAC declares no duration: the cap is enforced while decoding.
    let dir = tempfile::tempdir()?;
    let adts = dir.path().join("speech.aac");
    let speech = jfk_wav()?;
    ffmpeg([
        "-i",
        speech.to_str().context("path")?,
        "-c:a",
        "aac",
        adts.to_str().context("path")?,
    ])?;
    ensure!(decode_audio(&adts, &options())?.source == "symphonia:aac");
    let err = decode_err(&adts, &capped)?;
    ensure!(matches!(err, DecodeError::TooLong { .. }), "{err:?}");
    Ok(())
}

#[test]
fn opus_without_ffmpeg_says_so() -> Result<()> {
    let webm = media()?
        .iter()
        .find(|m| m.name == "webm-vp8-opus")
        .context("webm")?;
    let without = DecodeOptions {
        ffmpeg: Some("/nonexistent/ffmpeg".into()),
        ..options()
    };
    let err = decode_err(&webm.path, &without)?;
    ensure!(
        err.to_string()
            == "no decoder for codec opus and ffmpeg is not installed (/nonexistent/ffmpeg)",
        "{err}"
    );
    ensure!(!err.is_transient());
    Ok(())
}

#[test]
fn a_video_without_sound_has_no_audio_track() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let silent = dir.path().join("silent.mp4");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        silent.to_str().context("path")?,
    ])?;
    let err = decode_err(&silent, &options())?;
    ensure!(matches!(err, DecodeError::NoAudioTrack { .. }), "{err:?}");
    ensure!(
        err.to_string().ends_with("silent.mp4 has no audio track"),
        "{err}"
    );
    Ok(())
}
