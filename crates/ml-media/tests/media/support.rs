//! Shared test helpers: the real speech sample and media made from it with
//! Debian's ffmpeg, signal comparison, message fixtures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
pub use ml_testkit::speech::{ffmpeg, jfk_wav, read_wav_pcm16};

/// The repository's message fixtures.
pub fn fixture_media_url(name: &str) -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/messages")
        .join(name);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json["body"]["kwargs"]["content"]["mediaUrl"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{name}: no body.kwargs.content.mediaUrl"))
}

/// One test medium made from the speech sample.
pub struct Medium {
    /// Short name, e.g. "mp4-h264-aac".
    pub name: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The `source` prefix decoding must report.
    pub decoder: &'static str,
}

/// How each medium is made: name, extension, whether a (small, real)
/// video track is added, the decoder that must handle it, ffmpeg's output
/// options. The stereo WAV carries the speech on both channels at full level
/// (a plain `-ac 2` would lower each channel by 3 dB).
const RECIPES: &str = "
mp4-h264-aac     mp4   video  symphonia:aac        -c:v libx264 -preset ultrafast -c:a aac -b:a 96k
mov-h264-aac     mov   video  symphonia:aac        -c:v libx264 -preset ultrafast -c:a aac -b:a 96k
m4a-aac          m4a   audio  symphonia:aac        -c:a aac -b:a 64k
mp3              mp3   audio  symphonia:mp3        -c:a libmp3lame -b:a 64k
webm-vp8-opus    webm  video  ffmpeg               -c:v libvpx -deadline realtime -c:a libopus -b:a 48k
mkv-h264-vorbis  mkv   video  symphonia:vorbis     -c:v libx264 -preset ultrafast -c:a libvorbis
flac             flac  audio  symphonia:flac       -c:a flac
ogg-vorbis       ogg   audio  symphonia:vorbis     -c:a libvorbis
wav-stereo-44k   wav   audio  symphonia:pcm_s16le  -af pan=stereo|c0=c0|c1=c0 -c:a pcm_s16le -ar 44100
";

/// Every test medium, made once per test run in a temp folder.
pub fn media() -> Result<&'static [Medium]> {
    static MEDIA: OnceLock<std::result::Result<(tempfile::TempDir, Vec<Medium>), String>> =
        OnceLock::new();
    match MEDIA.get_or_init(|| make_media().map_err(|e| format!("{e:#}"))) {
        Ok((_, media)) => Ok(media),
        Err(e) => bail!("making test media: {e}"),
    }
}

fn make_media() -> Result<(tempfile::TempDir, Vec<Medium>)> {
    let speech = jfk_wav()?;
    let speech = speech.to_str().context("non-UTF-8 path")?;
    let dir = tempfile::tempdir()?;
    let mut media = Vec::new();
    for line in RECIPES.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(ext), Some(kind), Some(decoder)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            bail!("bad recipe line {line:?}");
        };
        let path = dir.path().join(format!("{name}.{ext}"));
        let mut args: Vec<&str> = vec!["-i", speech];
        if kind == "video" {
            args.extend([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
                "-shortest",
            ]);
            args.extend(["-map", "0:a", "-map", "1:v"]);
        }
        for option in words {
            args.push(option);
        }
        args.push(path.to_str().context("non-UTF-8 path")?);
        ffmpeg(&args).with_context(|| format!("making {name}"))?;
        media.push(Medium {
            name,
            path,
            decoder,
        });
    }
    Ok((dir, media))
}

/// Pearson correlation of `a` and `b` over their common length.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let mean = |x: &[f32]| x[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

/// Best correlation of a 2-second window of `reference` (from 3 s in) with
/// `decoded` shifted by up to `max_lag` samples either way (codecs add
/// priming delay), and the lag found.
pub fn best_alignment(reference: &[f32], decoded: &[f32], max_lag: usize) -> (f64, isize) {
    let (start, len) = (48_000usize, 32_000usize);
    let window = &reference[start..start + len];
    let mut best = (f64::MIN, 0isize);
    for lag in -(max_lag as isize)..=max_lag as isize {
        let from = start as isize + lag;
        if from < 0 || from as usize + len > decoded.len() {
            continue;
        }
        let c = correlation(window, &decoded[from as usize..from as usize + len]);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}
