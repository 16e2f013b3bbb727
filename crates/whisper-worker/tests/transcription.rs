//! Real speech through the whole worker: RabbitMQ → media → whisper.cpp →
//! PostgreSQL, with the real tiny.en model.

mod common;

use anyhow::Result;
use common::{JFK, MediaDir, TASK, normalise, publish, start, transcribe};
use serde_json::{Value, json};

fn text_of(data: &Value) -> String {
    normalise(data["text"].as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn jfk_wav_is_transcribed_word_for_word() -> Result<()> {
    let media = MediaDir::new()?;
    let url = media.write("jfk.wav", &std::fs::read(common::jfk_wav()?)?)?;
    let harness = start(&media, &[]).await?;
    let data = transcribe(&harness, &url).await?;

    assert_eq!(data["status"], "completed", "{data}");
    assert_eq!(text_of(&data), JFK);
    assert_eq!(data["language"], "en");
    assert_eq!(data["backend"], "local");
    assert_eq!(data["billing_usd"], 0);
    let duration = data["duration_seconds"].as_f64().unwrap_or_default();
    assert!((10.9..11.1).contains(&duration), "duration {duration}");
    let segments = data["segments"].as_array().cloned().unwrap_or_default();
    assert!(!segments.is_empty());
    assert_eq!(data["segment_count"], segments.len());
    let mut previous_end = 0.0;
    for segment in &segments {
        let (start, end) = (segment["start"].as_f64(), segment["end"].as_f64());
        let (Some(start), Some(end)) = (start, end) else {
            panic!("segment without times: {segment}");
        };
        assert!(
            previous_end <= start + 0.01 && start <= end && end <= duration,
            "{segment}"
        );
        previous_end = end;
    }
    let joined = segments
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(normalise(&joined), JFK);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn common_containers_keep_the_words() -> Result<()> {
    let media = MediaDir::new()?;
    let cases = [
        ("jfk.mp4", vec!["-c:a", "aac"], "symphonia"),
        ("jfk.m4a", vec!["-c:a", "aac"], "symphonia"),
        ("jfk.mp3", vec!["-c:a", "libmp3lame"], "symphonia"),
        ("jfk.webm", vec!["-c:a", "libopus"], "ffmpeg"),
        ("jfk.mkv", vec!["-c:a", "aac"], "symphonia"),
        ("jfk.ogg", vec!["-c:a", "libvorbis"], "symphonia"),
        ("jfk.flac", vec![], "symphonia"),
        (
            "jfk-stereo-44k.wav",
            vec!["-ac", "2", "-ar", "44100"],
            "symphonia",
        ),
    ];
    let mut urls = Vec::new();
    for (name, args, _) in &cases {
        urls.push(media.jfk_as(name, args)?);
    }
    let harness = start(&media, &[]).await?;
    for ((name, _, decoder), url) in cases.iter().zip(&urls) {
        let data = transcribe(&harness, url).await?;
        assert_eq!(data["status"], "completed", "{name}: {data}");
        let text = text_of(&data);
        for word in ["fellow", "americans", "country"] {
            assert!(
                text.contains(word),
                "{name}: {word:?} missing from {text:?}"
            );
        }
        let used = data["decoder"].as_str().unwrap_or_default();
        assert!(used.starts_with(decoder), "{name} decoded by {used}");
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn synthesised_speech_contains_its_key_words() -> Result<()> {
    let media = MediaDir::new()?;
    let url = media.speak(
        "espeak.wav",
        "The lighthouse keeper repaired the engine before the storm reached the harbour.",
    )?;
    let harness = start(&media, &[]).await?;
    let data = transcribe(&harness, &url).await?;
    assert_eq!(data["status"], "completed", "{data}");
    let text = text_of(&data);
    for word in ["lighthouse", "keeper", "storm"] {
        assert!(text.contains(word), "{word:?} missing from {text:?}");
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_transcriptions_match_sequential_ones() -> Result<()> {
    let media = MediaDir::new()?;
    let urls = [
        media.jfk_as("jfk.mp3", &["-c:a", "libmp3lame"])?,
        media.speak(
            "espeak.wav",
            "Seven silver bicycles were parked beside the museum entrance.",
        )?,
    ];
    let harness = start(
        &media,
        &[("WORKER_CONCURRENCY", "2"), ("WHISPER_THREADS", "1")],
    )
    .await?;
    let mut sequential = Vec::new();
    for url in &urls {
        sequential.push(transcribe(&harness, url).await?["text"].clone());
    }
    let mut shares = Vec::new();
    for url in &urls {
        shares.push(publish(&harness, url, json!({})).await?);
    }
    for (share, expected) in shares.into_iter().zip(&sequential) {
        let data = harness.wait_result(share, TASK).await?;
        assert_eq!(data["status"], "completed", "{data}");
        assert_eq!(&data["text"], expected);
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multilingual_model_detects_the_language_or_takes_the_given_one() -> Result<()> {
    let media = MediaDir::new()?;
    let url = media.speak_in(
        "de",
        "de.wav",
        "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen mit dem Hund in den Park.",
    )?;
    // Any whisper.cpp file by path: WHISPER_MODEL_PATH wins over the name.
    let model = ml_testkit::env::models_dir().join("whisper-base/ggml-base.bin");
    let model = model.to_string_lossy();
    let harness = start(
        &media,
        &[
            ("WHISPER_MODEL_PATH", &model),
            ("WHISPER_MODEL", "no-such-model"),
        ],
    )
    .await?;
    let detected = transcribe(&harness, &url).await?;
    assert_eq!(detected["status"], "completed", "{detected}");
    assert_eq!(detected["language"], "de", "{detected}");
    let text = text_of(&detected);
    for word in ["morgen", "heute", "park"] {
        assert!(text.contains(word), "{word:?} missing from {text:?}");
    }
    let share = publish(&harness, &url, json!({"language": "de"})).await?;
    let given = harness.wait_result(share, TASK).await?;
    assert_eq!(given["status"], "completed", "{given}");
    assert_eq!(given["language"], "de", "{given}");
    assert_eq!(given["text"], detected["text"]);
    harness.cleanup().await;
    Ok(())
}
