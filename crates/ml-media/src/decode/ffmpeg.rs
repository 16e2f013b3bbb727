//! The ffmpeg fallback, for codecs symphonia lacks (Opus above all): one
//! subprocess, no shell, raw 16 kHz mono f32 on its stdout, killed on
//! timeout.
//!
//! The input is untrusted, so ffmpeg may only read the file itself
//! (`-protocol_whitelist file`: a playlist cannot make it fetch URLs) and
//! only through common media demuxers (`-format_whitelist`: no HLS or
//! concat scripts pointing at other local files).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decode::TARGET_RATE;

/// Demuxers ffmpeg may use (names as in `ffmpeg -demuxers`).
const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,ogg,mp3,wav,w64,flac,aac,ac3,eac3,\
                       dts,aiff,caf,avi,flv,mpegts,mpeg,asf,amr,amrnb,amrwb";
/// How much of ffmpeg's stderr is kept for the error message.
const STDERR_KEEP: usize = 2048;
/// Extra decoded time beyond the cap, so "longer than the cap" is visible.
const OVER_CAP: Duration = Duration::from_secs(1);

/// Why the ffmpeg fallback gave no samples.
#[derive(Debug)]
pub(crate) enum FfmpegFailure {
    /// The program is not there.
    NotInstalled(PathBuf),
    /// It could not be started for another reason.
    Spawn(PathBuf, std::io::Error),
    /// It ran past the timeout and was killed.
    Timeout(Duration),
    /// It exited unsuccessfully.
    Failed { status: String, stderr: String },
}

/// Decodes `path` to 16 kHz mono, at most `cap + 1 s` of it.
pub(crate) fn decode(
    program: &Path,
    path: &Path,
    cap: Duration,
    timeout: Duration,
) -> Result<Vec<f32>, FfmpegFailure> {
    let started = Instant::now();
    let mut input = std::ffi::OsString::from("file:");
    input.push(path);
    let mut command = Command::new(program);
    command
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(["-protocol_whitelist", "file", "-format_whitelist", FORMATS])
        .arg("-i")
        .arg(input)
        .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
        .arg("-t")
        .arg(format!("{:.3}", (cap + OVER_CAP).as_secs_f64()))
        .args(["-ac", "1", "-ar", &TARGET_RATE.to_string()])
        .args(["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FfmpegFailure::NotInstalled(program.to_owned()),
        _ => FfmpegFailure::Spawn(program.to_owned(), e),
    })?;
    tracing::debug!(program = %program.display(), path = %path.display(), "ffmpeg started");
    let stdout = child.stdout.take().map(|out| read_all(out, usize::MAX));
    let stderr = child.stderr.take().map(|err| read_all(err, STDERR_KEEP));
    let status = wait_with_timeout(&mut child, timeout);
    // The pipes close when ffmpeg exits (or is killed), ending the readers.
    let stdout = stdout.map(join).unwrap_or_default();
    let stderr = stderr.map(join).unwrap_or_default();
    let status = status.ok_or(FfmpegFailure::Timeout(timeout))?;
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr).trim().to_owned();
        return Err(FfmpegFailure::Failed {
            status: status.to_string(),
            stderr: if text.is_empty() {
                "(no error output)".to_owned()
            } else {
                text
            },
        });
    }
    let samples: Vec<f32> = stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    tracing::debug!(
        samples = samples.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ffmpeg finished"
    );
    Ok(samples)
}

/// Reads a pipe to its end on a thread, keeping at most its last `keep`
/// bytes (the end of stderr is where the reason is).
fn read_all(mut pipe: impl Read + Send + 'static, keep: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    if all.len() > keep.saturating_mul(2) {
                        all.drain(..all.len() - keep);
                    }
                }
            }
        }
        if all.len() > keep {
            all.drain(..all.len() - keep);
        }
        all
    })
}

fn join(handle: JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// Waits for the child; kills and reaps it once `timeout` has passed
/// (returning `None`).
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                tracing::warn!(
                    pid = child.id(),
                    ?timeout,
                    "ffmpeg over its timeout: killing it"
                );
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
