//! Reproducibility: greedy decoding repeats exactly, a fixed seed repeats
//! sampled summaries, and tasks run in parallel give what they give alone.

mod common;

use anyhow::Result;
use common::Summarizer;

const ARTICLE: &str = "The city council approved a new bicycle lane network on Tuesday. The lanes will connect the train station, the university and the old harbour. Construction starts in spring and should take two years. Shop owners worried about parking, but the council promised new spaces near the market.";
const POST: &str = "I finally fixed my sourdough starter. It was too cold in my kitchen, so I moved the jar next to the oven and fed it twice a day with rye flour. After four days it doubled in size and the bread came out light and sour.";

#[tokio::test(flavor = "multi_thread")]
async fn greedy_runs_repeat_and_parallel_tasks_match_sequential_ones() -> Result<()> {
    let worker = Summarizer::start(&[
        ("WORKER_CONCURRENCY", "2"),
        ("LLM_PARALLEL_GENERATIONS", "2"),
    ])
    .await?;
    // Sequential.
    let a = worker.summarize(ARTICLE, "article", "brief").await?;
    let first_a = worker.wait_summary(a).await?;
    let b = worker.summarize(POST, "reddit", "bullets").await?;
    let first_b = worker.wait_summary(b).await?;
    // Both at once.
    let a2 = worker.summarize(ARTICLE, "article", "brief").await?;
    let b2 = worker.summarize(POST, "reddit", "bullets").await?;
    let (second_a, second_b) = tokio::try_join!(worker.wait_summary(a2), worker.wait_summary(b2))?;
    assert_eq!(
        second_a, first_a,
        "greedy decoding repeats; parallel equals sequential"
    );
    assert_eq!(second_b, first_b);
    assert!(
        worker
            .harness
            .worker
            .logs()
            .iter()
            .any(|line| line["fields"]["message"] == "summary generated"
                || line["message"] == "summary generated"),
        "each summary is logged"
    );
    worker.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_seed_repeats_sampled_summaries() -> Result<()> {
    let worker = Summarizer::start(&[
        ("LLM_TEMPERATURE", "0.9"),
        ("LLM_TOP_P", "0.95"),
        ("LLM_SEED", "1234"),
        ("WORKER_CONCURRENCY", "1"),
    ])
    .await?;
    let first = worker.summarize(ARTICLE, "article", "detailed").await?;
    let first = worker.wait_summary(first).await?;
    let second = worker.summarize(ARTICLE, "article", "detailed").await?;
    let second = worker.wait_summary(second).await?;
    assert!(!first.is_empty());
    assert_eq!(first, second);
    worker.cleanup().await;
    Ok(())
}
