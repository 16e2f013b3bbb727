//! Real speech for the transcription tests and benchmarks: the JFK sample
//! `scripts/fetch-models` installs, speech synthesised by espeak-ng, media
//! made by Debian's ffmpeg, a WAV reader independent of the decoders under
//! test, and transcript normalisation.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// What jfk.wav says (MODELS.md), as [`normalise`] writes it.
pub const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

/// The real speech sample (JFK, 11 s, 16 kHz mono 16-bit):
/// `$MODELS_DIR/speech-samples/jfk.wav`.
///
/// # Errors
/// When it is missing (it says how to fetch it).
pub fn jfk_wav() -> Result<PathBuf> {
    let path = crate::env::models_dir().join("speech-samples/jfk.wav");
    ensure!(
        path.is_file(),
        "{} is missing: run scripts/setup (scripts/fetch-models speech-samples installs it)",
        path.display()
    );
    Ok(path)
}

/// jfk.wav as 16 kHz mono f32 samples.
///
/// # Errors
/// When the sample is missing or not 16 kHz.
pub fn jfk_samples() -> Result<Vec<f32>> {
    let (rate, samples) = read_wav_pcm16(&jfk_wav()?)?;
    ensure!(rate == 16_000, "jfk.wav is {rate} Hz, expected 16 kHz");
    Ok(samples)
}

/// Reads a 16-bit PCM WAV by hand (independent of the decoders under test):
/// its sample rate and its first channel as f32.
///
/// # Errors
/// When the file cannot be read or is not 16-bit PCM WAV.
pub fn read_wav_pcm16(path: &Path) -> Result<(u32, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    ensure!(
        bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{}: not a WAV file",
        path.display()
    );
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let (mut pos, mut rate, mut channels) = (12, 0, 0);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = usize::try_from(u32_at(pos + 4))?;
        let body = pos + 8;
        if id == b"fmt " {
            ensure!(
                u16_at(body) == 1 && u16_at(body + 14) == 16,
                "{}: not 16-bit PCM",
                path.display()
            );
            channels = usize::from(u16_at(body + 2));
            rate = u32_at(body + 4);
        } else if id == b"data" {
            ensure!(channels > 0, "{}: data before fmt", path.display());
            let end = body.saturating_add(len).min(bytes.len());
            let samples = bytes[body..end]
                .chunks_exact(2 * channels)
                .map(|frame| f32::from(i16::from_le_bytes([frame[0], frame[1]])) / 32768.0)
                .collect();
            return Ok((rate, samples));
        }
        pos = body + len + (len & 1);
    }
    bail!("{}: no data chunk", path.display())
}

/// Lower-case words without punctuation, single-spaced: transcripts
/// compared this way ignore case and punctuation.
#[must_use]
pub fn normalise(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` spoken by espeak-ng with `voice` (e.g. `en`, `de`) into the WAV
/// file `out` (22.05 kHz mono).
///
/// # Errors
/// When espeak-ng is missing or fails.
pub fn espeak(text: &str, voice: &str, out: &Path) -> Result<()> {
    run(Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(out)
        .arg(text))
}

/// Runs ffmpeg quietly with `args` (inputs, options, output), overwriting.
///
/// # Errors
/// When ffmpeg is missing or fails (with its stderr).
pub fn ffmpeg<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args))
}

/// Runs `command`, failing with its stderr; says what installs it.
fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?} (scripts/setup installs it)"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
