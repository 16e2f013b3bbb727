//! Queue tasks keep flowing while `/v1/embeddings` is flooded: the model
//! thread takes requests from the queue and the API in turn, so a flood of
//! API clients cannot push the queue's tasks to the back of one long line.

mod common;

use common::EmbedTasks as _;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Result;
use common::TASK;
use serde_json::json;
use uuid::Uuid;

/// API clients sending at once, each one request after the other.
const FLOODERS: usize = 32;
/// Texts per API request and per forward pass: one request fills a round.
const ROUND_TEXTS: usize = 8;
/// Queue tasks published into the flood.
const QUEUE_TASKS: usize = 40;

#[tokio::test(flavor = "multi_thread")]
async fn queue_tasks_get_their_turn_under_an_api_flood() -> Result<()> {
    let round = ROUND_TEXTS.to_string();
    let harness = common::start(&[
        ("EMBED_BATCH_MAX_TEXTS", round.as_str()),
        ("WORKER_CONCURRENCY", "2"),
    ])
    .await?;
    let address = harness
        .worker
        .address()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no metrics address"))?;
    let inputs: Vec<String> = (0..ROUND_TEXTS)
        .map(|i| format!("flood request text number {i} about sourdough"))
        .collect();
    let body = json!({"model": "m", "input": inputs}).to_string();
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (address, body) = (address.clone(), body.clone());
            let (answered, stop) = (answered.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match ml_testkit::process::http_request(
                        &address,
                        "POST",
                        "/v1/embeddings",
                        Some(&body),
                        &[],
                    ) {
                        Ok((200, _)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, body)) => panic!("API answered {status}: {body}"),
                        Err(error) => panic!("API request failed: {error:#}"),
                    }
                }
            })
        })
        .collect();
    // The flood is on once every client has had an answer or so.
    ml_testkit::wait::until("the API flood to start", TASK, || async {
        (answered.load(Ordering::Relaxed) >= FLOODERS).then_some(())
    })
    .await?;

    let shares: Vec<Uuid> = (0..QUEUE_TASKS).map(|_| Uuid::new_v4()).collect();
    let before = answered.load(Ordering::Relaxed);
    let started = Instant::now();
    for share in &shares {
        harness
            .publish_embed(
                &Uuid::new_v4().to_string(),
                json!({"share_id": share, "content": {"text": "A queue task's caption about bread"}}),
            )
            .await?;
    }
    for share in &shares {
        harness.wait_result(*share, TASK).await?;
    }
    let during = answered.load(Ordering::Relaxed) - before;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder
            .join()
            .map_err(|_| anyhow::anyhow!("a flooder panicked"))?;
    }
    #[allow(clippy::cast_precision_loss)] // a few hundred requests
    let per_task = during as f64 / QUEUE_TASKS as f64;
    println!(
        "{QUEUE_TASKS} queue tasks under a flood of {FLOODERS} API clients: {took:.1?}, \
         {during} API requests answered meanwhile ({per_task:.1} per queue task)"
    );
    // In one line (first come, first served) every queue task waits behind
    // about one request per flooder, FLOODERS / concurrency per task; taking
    // turns, about one. The bound sits between the two.
    assert!(
        per_task < (FLOODERS / 4) as f64,
        "queue tasks waited behind {per_task:.1} API requests each: the API starves the queue"
    );
    Ok(())
}
