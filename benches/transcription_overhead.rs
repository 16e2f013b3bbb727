//! Per-file transcription time of ours against bare whisper.cpp, in the
//! same run, on the same audio and model (`$MODELS_DIR/whisper-tiny.en`),
//! with the same decoding settings (greedy, best of 1, no flash attention,
//! `THREADS` threads, English; whisper.cpp's defaults otherwise, which both
//! sides keep: no text carried over from an earlier file, the previous
//! window's text as context within a file).
//!
//! - **peer**: whisper.cpp's own example CLI (`whisper-cli`), built by
//!   `scripts/bench` against the whisper.cpp sources whisper-rs-sys vendors,
//!   one process per file. Its time per file is its own timings'
//!   `total - load`: reading the file, a fresh whisper state, transcribing.
//! - **library**: `ml_media::decode_audio` + `ml_transcription::Transcriber`
//!   in this process (model loaded once): what the worker adds around
//!   whisper.cpp (decoding, resampling, normalisation, a whisper state per
//!   task, segment extraction).
//!
//!   Peer and library alternate, `RUNS` rounds after a warm-up each, and
//!   report their medians, so that drift in the machine's speed (runs of
//!   the same thing here differ by 10 % and more) hits both alike.
//! - **worker**: the release `whisper-worker` draining `1 + RUNS` queued
//!   `transcribe_local` tasks of the file through RabbitMQ into PostgreSQL
//!   and Redis; the time per file is the spacing of the Celery results'
//!   `date_done` (the first, cold task only opens the interval).
//!
//! It prints each side's time per file and speed (audio seconds per
//! second), and ours / peer: the goal is a per-file overhead within 10 %
//! (ratio ≤ 1.10).
//!
//! Run: `scripts/bench transcription_overhead` (builds the peer into
//! `~/.cache/ml-workers/whisper-cli` and the release binaries, then
//! `cargo bench --bench transcription_overhead`). `WHISPER_CLI` names
//! another whisper-cli.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use ml_media::{DecodeOptions, decode_audio};
use ml_testkit::{TestBroker, WorkerProcess, env, speech};
use ml_transcription::{TranscribeOptions, Transcriber, TranscriberConfig};
use serde_json::json;

use crate::common::median;

const MODEL_FILE: &str = "whisper-tiny.en/ggml-tiny.en.bin";
const THREADS: usize = 2;
/// Measured files per side and clip, after one warm-up file.
const RUNS: usize = 5;
/// Ours / peer at or under this meets the goal.
const GOAL: f64 = 1.10;

/// One audio file of the benchmark.
struct Clip {
    name: &'static str,
    path: PathBuf,
    seconds: f64,
}

/// jfk.wav (11 s), jfk.mp3 (the same speech as MP3) and jfk.wav six times
/// over (66 s), in `dir`.
fn clips(dir: &Path) -> Result<Vec<Clip>> {
    let wav = speech::jfk_wav()?;
    let mp3 = env::models_dir().join("speech-samples/jfk.mp3");
    let long = dir.join("jfk-x6.wav");
    speech::ffmpeg([
        "-stream_loop".as_ref(),
        "5".as_ref(),
        "-i".as_ref(),
        wav.as_os_str(),
        "-c".as_ref(),
        "copy".as_ref(),
        long.as_os_str(),
    ])?;
    let mut clips = Vec::new();
    for (name, from) in [("jfk.wav", wav), ("jfk.mp3", mp3), ("jfk-x6.wav", long)] {
        let path = dir.join(name);
        if from != path {
            std::fs::copy(&from, &path).with_context(|| from.display().to_string())?;
        }
        let seconds = decode_audio(&path, &DecodeOptions::default())?
            .duration
            .as_secs_f64();
        clips.push(Clip {
            name,
            path,
            seconds,
        });
    }
    Ok(clips)
}

/// The peer's program: `WHISPER_CLI`, else scripts/bench's build.
fn whisper_cli() -> Result<PathBuf> {
    let path = std::env::var_os("WHISPER_CLI").map_or_else(
        || env::cache_dir().join("whisper-cli/build/bin/whisper-cli"),
        PathBuf::from,
    );
    ensure!(
        path.is_file(),
        "{} is missing: run `scripts/bench transcription_overhead` (it builds whisper-cli)",
        path.display()
    );
    Ok(path)
}

/// One `whisper-cli` run on `clip`: its own `total - load` time in seconds
/// (everything but loading the model: reading the file, a whisper state,
/// the transcription), and the transcript.
fn run_cli(cli: &Path, model: &Path, clip: &Clip) -> Result<(f64, String)> {
    let mut command = Command::new(cli);
    command.arg("-m").arg(model).args([
        "-t",
        &THREADS.to_string(),
        "-l",
        "en",
        "-bs",
        "1",
        "-bo",
        "1",
        "-nfa",
    ]);
    command.arg("-f").arg(&clip.path);
    let output = command
        .output()
        .with_context(|| format!("running {}", cli.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "whisper-cli failed: {stderr}");
    let timing = |label: &str| -> Result<f64> {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("{label} time =")))
            .with_context(|| format!("no {label} time in whisper-cli's output:\n{stderr}"))?;
        let ms = line
            .split('=')
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("cannot read {line:?}"))?;
        Ok(ms / 1000.0)
    };
    // Segment lines read `[00:00:00.000 --> 00:00:11.000]  text`.
    let text = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.rsplit_once(']').map_or(line, |(_, text)| text))
        .collect::<Vec<_>>()
        .join(" ");
    Ok((timing("total")? - timing("load")?, text))
}

/// One file through our library (decode + transcribe): seconds and transcript.
fn run_library(transcriber: &Transcriber, clip: &Clip) -> Result<(f64, String)> {
    let started = Instant::now();
    let audio = decode_audio(&clip.path, &DecodeOptions::default())?;
    let transcript = transcriber.transcribe(&audio.samples, &TranscribeOptions::default(), None)?;
    Ok((started.elapsed().as_secs_f64(), transcript.text))
}

/// The peer's and our library's median seconds per file over `RUNS`
/// alternating rounds (so drift in the machine's speed hits both), after
/// one warm-up each; and whether their transcripts agree.
fn bench_alternating(
    cli: &Path,
    model: &Path,
    transcriber: &Transcriber,
    clip: &Clip,
) -> Result<(f64, f64)> {
    let (_, peer_text) = run_cli(cli, model, clip)?;
    let (_, our_text) = run_library(transcriber, clip)?;
    if speech::normalise(&peer_text) != speech::normalise(&our_text) {
        println!(
            "note: transcripts differ on {}:\n  peer: {}\n  ours: {}",
            clip.name,
            peer_text.trim(),
            our_text.trim()
        );
    }
    let (mut peer, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        peer.push(run_cli(cli, model, clip)?.0);
        ours.push(run_library(transcriber, clip)?.0);
    }
    Ok((median(peer), median(ours)))
}

/// The release worker's seconds per file, draining `1 + RUNS` queued tasks
/// of each clip; `None` when the release binary is not built.
async fn bench_worker(media: &Path, clips: &[Clip]) -> Result<Option<Vec<f64>>> {
    let Some(binary) = env::release_binary("whisper-worker") else {
        println!("worker: skipped");
        return Ok(None);
    };
    let broker = TestBroker::connect().await?;
    let mut per_file = Vec::new();
    for clip in clips {
        let queue = TestBroker::unique_queue("bench.transcribe");
        broker.declare_queue(&queue).await?;
        let mut ids = Vec::new();
        for _ in 0..=RUNS {
            let id = uuid::Uuid::new_v4().to_string();
            let kwargs = json!({
                "share_id": uuid::Uuid::new_v4(),
                "content": {"mediaUrl": clip.path},
            });
            broker
                .publish_celery_task(&queue, &id, "whisper.tasks.transcribe_local", kwargs)
                .await?;
            ids.push(id);
        }
        let media_root = media.to_string_lossy();
        let threads = THREADS.to_string();
        let mut worker = WorkerProcess::spawn(
            &binary,
            &queue,
            &[
                ("TRANSCRIBE_QUEUES", queue.as_str()),
                ("MEDIA_ROOTS", &media_root),
                ("WHISPER_THREADS", &threads),
                ("WORKER_CONCURRENCY", "1"),
                ("LOG_LEVEL", "warn"),
            ],
        )?;
        let rate = ml_testkit::celery::drain_rate(&ids, Duration::from_secs(600)).await;
        let _ = worker.terminate();
        let _ = worker.wait_exit(Duration::from_secs(30)).await;
        broker.delete(&queue).await;
        per_file.push(1.0 / rate?);
    }
    Ok(Some(per_file))
}

/// `ours` against `peer`: time per file, speed and ratio.
fn cell(ours: f64, peer: f64, clip: &Clip) -> String {
    format!(
        "{:>7.3} s {:>6.1}x {:>6.3}",
        ours,
        clip.seconds / ours,
        ours / peer
    )
}

fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("transcription_overhead: run with `cargo bench` (skipped under cargo test)");
        return Ok(());
    }
    let cli = whisper_cli()?;
    let model = env::models_dir().join(MODEL_FILE);
    ensure!(
        model.is_file(),
        "{} is missing: run scripts/setup",
        model.display()
    );
    let dir = tempfile::tempdir()?;
    let media = dir.path().canonicalize()?;
    let clips = clips(&media)?;
    let transcriber = Transcriber::load(
        &model,
        TranscriberConfig {
            threads: THREADS,
            flash_attention: false,
        },
    )?;

    println!(
        "transcription overhead: whisper tiny.en, {THREADS} threads, greedy; time per file \
         (median of {RUNS}; worker: mean of {RUNS}), speed (x real time), ours/peer"
    );
    let mut rows = Vec::new();
    for clip in &clips {
        rows.push(bench_alternating(&cli, &model, &transcriber, clip)?);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let worker = runtime.block_on(bench_worker(&media, &clips))?;

    println!(
        "{:<11} {:>6} | {:>17} | {:>24} | {:>24}",
        "clip", "audio", "whisper-cli", "library (ratio)", "worker e2e (ratio)"
    );
    let mut worst: f64 = 0.0;
    for (i, (clip, (peer, library))) in clips.iter().zip(&rows).enumerate() {
        let worker_cell = worker.as_ref().map_or_else(
            || "skipped".to_owned(),
            |w| {
                worst = worst.max(w[i] / peer);
                cell(w[i], *peer, clip)
            },
        );
        worst = worst.max(library / peer);
        println!(
            "{:<11} {:>5.1}s | {:>7.3} s {:>6.1}x | {} | {}",
            clip.name,
            clip.seconds,
            peer,
            clip.seconds / peer,
            cell(*library, *peer, clip),
            worker_cell
        );
    }
    let verdict = if worst <= GOAL { "met" } else { "NOT met" };
    println!("goal (ours <= {GOAL:.2} x whisper-cli per file): {verdict}, worst ratio {worst:.3}");
    Ok(())
}
