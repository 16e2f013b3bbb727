//! Shared set-up for the whisper-worker's integration tests: the worker on
//! a fresh queue, and real test media made from real speech.

#![allow(dead_code)] // each test binary uses a different subset

pub mod http;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use ml_testkit::{Harness, WorkerKind, env};
use serde_json::{Value, json};
use uuid::Uuid;

pub use ml_testkit::harness::TASK;

/// The worker under test.
pub const WHISPER_WORKER: WorkerKind = WorkerKind {
    binary: env!("CARGO_BIN_EXE_whisper-worker"),
    queue_prefix: "ml.transcribe",
    queue_env: "TRANSCRIBE_QUEUES",
    task_type: "transcription",
};

/// The sentence of jfk.wav (MODELS.md), normalised.
pub const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

/// Starts a ready whisper-worker whose media root is `media`.
pub async fn start(media: &MediaDir, extra_env: &[(&str, &str)]) -> Result<Harness> {
    let root = media.root.to_string_lossy().into_owned();
    let mut env_vars = vec![("MEDIA_ROOTS", root.as_str())];
    env_vars.extend_from_slice(extra_env);
    Harness::start(WHISPER_WORKER, &env_vars).await
}

/// Publishes a transcribe task for `media_url` and returns its share id.
pub async fn publish(harness: &Harness, media_url: &str, options: Value) -> Result<Uuid> {
    let share_id = Uuid::new_v4();
    harness
        .publish(
            "whisper.tasks.transcribe_api",
            &Uuid::new_v4().to_string(),
            json!({"share_id": share_id, "content": {"mediaUrl": media_url}, "options": options}),
        )
        .await?;
    Ok(share_id)
}

/// Transcribes `media_url` and returns the `result_data` once final
/// (completed, skipped or failed).
pub async fn transcribe(harness: &Harness, media_url: &str) -> Result<Value> {
    let share_id = publish(harness, media_url, json!({})).await?;
    harness.wait_result(share_id, TASK).await
}

/// Lower-case words without punctuation, single-spaced.
pub fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The real speech sample (scripts/fetch-models puts it there).
pub fn jfk_wav() -> Result<PathBuf> {
    let path = env::models_dir().join("speech-samples/jfk.wav");
    if !path.is_file() {
        bail!("{} is missing: run scripts/fetch-models", path.display());
    }
    Ok(path)
}

/// A fresh media root with test media, removed on drop.
pub struct MediaDir {
    pub root: PathBuf,
}

impl MediaDir {
    /// Creates an empty media root.
    pub fn new() -> Result<Self> {
        let root = std::env::temp_dir().join(format!("whisper-worker-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// A path inside the root.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The path of `name` as a task's `mediaUrl`.
    pub fn url(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// Writes `bytes` as `name`.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<String> {
        std::fs::write(self.path(name), bytes)?;
        Ok(self.url(name))
    }

    /// jfk.wav re-encoded by ffmpeg into `name` with `args` (codec
    /// options); the container follows the extension.
    pub fn jfk_as(&self, name: &str, args: &[&str]) -> Result<String> {
        let input = jfk_wav()?;
        let mut command = Command::new("ffmpeg");
        command
            .args(["-nostdin", "-y", "-loglevel", "error", "-i"])
            .arg(&input);
        command.args(args).arg(self.path(name));
        run(&mut command)?;
        Ok(self.url(name))
    }

    /// `text` spoken by espeak-ng into the WAV file `name`.
    pub fn speak(&self, name: &str, text: &str) -> Result<String> {
        run(Command::new("espeak-ng")
            .arg("-w")
            .arg(self.path(name))
            .arg(text))?;
        Ok(self.url(name))
    }

    /// `seconds` of digital silence as a 16 kHz WAV file `name`.
    pub fn silence(&self, name: &str, seconds: f32) -> Result<String> {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("anullsrc=r=16000:cl=mono")
            .args(["-t", &seconds.to_string()])
            .arg(self.path(name)))?;
        Ok(self.url(name))
    }

    /// The first `seconds` of the media file `from` (inside the root) as `name`.
    pub fn cut(&self, from: &str, name: &str, seconds: f32) -> Result<String> {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error", "-i"])
            .arg(from)
            .args(["-t", &seconds.to_string()])
            .arg(self.path(name)))?;
        Ok(self.url(name))
    }
}

impl Drop for MediaDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
