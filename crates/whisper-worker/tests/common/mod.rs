//! Shared set-up for the whisper-worker's integration tests: the worker on
//! a fresh queue, and real test media made from real speech.

#![allow(dead_code)] // each test binary uses a different subset

pub mod http;

use std::path::PathBuf;

use anyhow::Result;
pub use ml_testkit::speech::{JFK, jfk_wav, normalise};
use ml_testkit::speech::{espeak, ffmpeg};
use ml_testkit::{Harness, WorkerKind};
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
        let mut all = vec!["-i".into(), jfk_wav()?.into_os_string()];
        all.extend(args.iter().map(Into::into));
        all.push(self.path(name).into_os_string());
        ffmpeg(all)?;
        Ok(self.url(name))
    }

    /// `text` spoken by espeak-ng (English) into the WAV file `name`.
    pub fn speak(&self, name: &str, text: &str) -> Result<String> {
        self.speak_in("en", name, text)
    }

    /// `text` spoken by espeak-ng's `voice` (e.g. `de`) into the WAV file `name`.
    pub fn speak_in(&self, voice: &str, name: &str, text: &str) -> Result<String> {
        espeak(text, voice, &self.path(name))?;
        Ok(self.url(name))
    }

    /// `seconds` of digital silence as a 16 kHz WAV file `name`.
    pub fn silence(&self, name: &str, seconds: f32) -> Result<String> {
        let seconds = seconds.to_string();
        let out = self.path(name);
        ffmpeg([
            "-f".as_ref(),
            "lavfi".as_ref(),
            "-i".as_ref(),
            "anullsrc=r=16000:cl=mono".as_ref(),
            "-t".as_ref(),
            seconds.as_ref(),
            out.as_os_str(),
        ])?;
        Ok(self.url(name))
    }

    /// The first `seconds` of the media file `from` (inside the root) as `name`.
    pub fn cut(&self, from: &str, name: &str, seconds: f32) -> Result<String> {
        let seconds = seconds.to_string();
        let out = self.path(name);
        ffmpeg([
            "-i".as_ref(),
            from.as_ref(),
            "-t".as_ref(),
            seconds.as_ref(),
            out.as_os_str(),
        ])?;
        Ok(self.url(name))
    }
}

impl Drop for MediaDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
