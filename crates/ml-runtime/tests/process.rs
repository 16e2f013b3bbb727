//! One delivery's life through the real [`ml_runtime::Worker`] (CONTRACT
//! section 4), against the real RabbitMQ and Redis: late ack (also when Redis cannot
//! store the result), retries with backoff, dead-lettering, `eta` and `expires`, and what shutdown does to
//! deliveries that are running, waiting for a slot, or waiting for their eta.
//!
//! Each test consumes a queue of its own with a stub handler (see
//! `common`) and asserts on what is observable from outside: the messages
//! left in the queue and its `.dead` queue, their headers, and the Celery
//! results in Redis.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use common::relay::RedisRelay;
use common::{
    Drained, RunningWorker, Scenario, Settings, Stub, TASK, body_json, death_reason,
    ensure_body_id, ensure_header, ensure_no_result, ensure_number_header, ensure_status, header,
    task_id, wait_state,
};
use ml_runtime::TaskError;
use serde_json::{Map, Value, json};

/// `time` as the ISO 8601 text producers put in `eta`/`expires`.
fn iso(time: DateTime<Utc>) -> Value {
    json!(time.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Fails unless `meta` records the Python exception `exc_type`, and returns
/// its message.
fn exception_message(meta: &Value, exc_type: &str) -> Result<String> {
    ensure!(
        meta["result"]["exc_type"] == exc_type,
        "expected {exc_type}, got {meta}"
    );
    meta["result"]["exc_message"][0]
        .as_str()
        .map(str::to_owned)
        .context("exception without a message")
}

/// Starts a worker with `settings` and a gated stub, publishes a task and
/// waits until the handler holds it; returns the scenario and that task's
/// id.
async fn hold_one(settings: &Settings) -> Result<(Scenario, String)> {
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::gated(), settings).await?;
    let held = queue.publish(json!({}), &[]).await?;
    stub.wait_calls(1).await?;
    Ok((Scenario(queue, stub, worker), held))
}

#[tokio::test]
async fn delivery_stays_unacked_until_its_result_is_stored() -> Result<()> {
    // A worker that stops without grace while the handler is still running
    // must leave the delivery unacknowledged: the broker gets it back.
    let abandoned = Settings {
        shutdown_timeout_secs: 0,
        ..Settings::default()
    };
    let (Scenario(queue, _, worker), id) = hold_one(&abandoned).await?;
    ensure_no_result(&id, "a result before the handler returned").await?;
    worker.stop().await?;
    queue.wait_ready(&queue.name, 1).await?;
    ensure_no_result(&id, "a result for an abandoned task").await?;

    // The next worker runs it to the end: SUCCESS is stored, then the
    // delivery is acknowledged, so nothing is left once it stops.
    let stub = Stub::new();
    let second = RunningWorker::start(&queue, stub.clone(), &Settings::default()).await?;
    let success = second.stop_at_state(&id, "SUCCESS").await?;
    ensure!(success["result"] == json!({"handled": id}), "{success}");
    stub.ensure_calls(1, "the second worker")?;
    queue.finish(Drained::Both).await
}

/// Redis away for a moment after the handler succeeded: SUCCESS is stored
/// once it is back, and the work is not done again.
#[tokio::test]
async fn a_result_is_stored_once_redis_is_back_without_running_the_task_again() -> Result<()> {
    let relay = RedisRelay::start().await?;
    let settings = Settings {
        max_retries: 6,
        retry_backoff_secs: 1.0,
        result_backend: Some(relay.url.clone()),
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &settings).await?;
    relay.cut();
    let id = queue.publish(json!({}), &[]).await?;
    stub.wait_calls(1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.restore().await?;

    let success = worker.stop_at_state(&id, "SUCCESS").await?;

    ensure!(success["result"]["handled"] == json!(id), "{success}");
    stub.ensure_attempts(&[0])?;
    ensure!(stub.failures().is_empty(), "{:?}", stub.failures());
    queue.finish(Drained::Both).await
}

#[tokio::test]
async fn result_that_cannot_be_stored_is_never_acked_as_success() -> Result<()> {
    let relay = RedisRelay::start().await?;
    let settings = Settings {
        max_retries: 1,
        result_backend: Some(relay.url.clone()),
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &settings).await?;
    relay.cut();
    let id = queue.publish(json!({}), &[]).await?;

    // The handler succeeds every time, but SUCCESS cannot be stored: that
    // is a transient failure, retried, then dead-lettered; never an ack.
    // Every store after the cut first waits out redis-rs's reconnect
    // attempts (about 6 s), hence the longer deadline.
    queue
        .wait_ready_within(&queue.dead(), 1, 3 * common::PATIENCE)
        .await?;
    worker.stop().await?;

    stub.ensure_attempts(&[0, 1])?;
    let failures = stub.failures();
    ensure!(
        matches!(failures.as_slice(), [(failed, TaskError::Transient(why))]
            if *failed == id && why.starts_with("result backend")),
        "on_failure calls: {failures:?}"
    );
    let dead = queue.take_one(&queue.dead()).await?;
    let reason = death_reason(&dead)?;
    ensure!(
        reason.starts_with("retries exhausted after 2 attempts: transient failure: result backend"),
        "{reason}"
    );
    ensure_no_result(&id, "a result got through the cut relay").await?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn transient_failure_publishes_a_retry_with_an_eta() -> Result<()> {
    // A backoff of a minute (jittered to 30–60 s) keeps the retry waiting
    // for its eta, so it is still there to read when the worker stops.
    let slow_backoff = Settings {
        retry_backoff_secs: 60.0,
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &slow_backoff).await?;
    let kwargs = json!({"outcome": "transient", "text": "kept as is"});
    let id = queue.publish(kwargs.clone(), &[]).await?;

    let retry_state = worker.stop_at_state(&id, "RETRY").await?;
    exception_message(&retry_state, "ConnectionError")?;

    // The original was acknowledged; only the retry is left, in Celery
    // protocol 2 with `retries` + 1 and an eta one backoff after the failure.
    let retry = queue.take_one(&queue.name).await?;
    ensure_header(&retry, "id", &id)?;
    ensure_header(&retry, "task", TASK)?;
    ensure_number_header(&retry, "retries", 1)?;
    let eta: DateTime<Utc> = header(&retry, "eta")
        .context("retry without an eta")?
        .parse()?;
    let failed_at = stub.calls().first().context("never called")?.at;
    let delay = eta - failed_at;
    ensure!(
        delay >= chrono::Duration::seconds(29) && delay <= chrono::Duration::seconds(61),
        "eta {eta} is {delay} after the failure, not one 30–60 s backoff"
    );
    ensure!(
        body_json(&retry)?[1] == kwargs,
        "kwargs changed: {:?}",
        body_json(&retry)?
    );
    stub.ensure_calls(1, "the retry ran before its eta")?;
    ensure!(stub.failures().is_empty(), "on_failure called for a retry");
    queue.finish(Drained::Dead).await
}

#[tokio::test]
async fn exhausted_retries_dead_letter_the_task_once() -> Result<()> {
    let two_retries = Settings {
        max_retries: 2,
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &two_retries).await?;
    let id = queue.publish(json!({"outcome": "transient"}), &[]).await?;

    let failure = worker.stop_at_state(&id, "FAILURE").await?;

    stub.ensure_attempts(&[0, 1, 2])?;
    let failures = stub.failures();
    ensure!(
        matches!(failures.as_slice(), [(failed, TaskError::Transient(_))] if *failed == id),
        "on_failure calls: {failures:?}"
    );
    let message = exception_message(&failure, "ConnectionError")?;
    ensure!(
        message.contains("retries exhausted after 3 attempts"),
        "{message}"
    );

    let dead = queue.take_one(&queue.dead()).await?;
    let reason = death_reason(&dead)?;
    ensure!(
        reason.contains("retries exhausted after 3 attempts"),
        "{reason}"
    );
    ensure_header(&dead, "x-original-queue", &queue.name)?;
    ensure_header(&dead, "x-task-id", &id)?;
    ensure_header(&dead, "x-task-name", TASK)?;
    ensure_number_header(&dead, "x-retries", 2)?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn permanent_failures_dead_letter_without_retry() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    // (outcome kwarg, Python exception, dead-letter reason)
    let cases = [
        ("permanent", "RuntimeError", "stub cannot read this input"),
        (
            "invalid",
            "ValueError",
            "invalid task arguments: stub needs a share_id",
        ),
    ];
    let mut ids = Vec::new();
    for (outcome, _, _) in cases {
        let id = queue.publish(json!({"outcome": outcome}), &[]).await?;
        ids.push(id);
    }
    let mut failures = Vec::new();
    for id in &ids {
        failures.push(wait_state(id, "FAILURE").await?);
    }
    worker.stop().await?;

    stub.ensure_calls(cases.len(), "retried")?;
    let dead = queue.take_all(&queue.dead()).await?;
    ensure!(dead.len() == cases.len(), "{} dead letters", dead.len());
    for ((id, failure), (_, exc_type, reason)) in ids.iter().zip(&failures).zip(cases) {
        ensure!(exception_message(failure, exc_type)? == reason);
        let letter = dead
            .iter()
            .find(|letter| header(letter, "x-task-id") == Some(id.as_str()))
            .with_context(|| format!("no dead letter for {id}"))?;
        ensure_header(letter, "x-death-reason", reason)?;
        ensure_number_header(letter, "x-retries", 0)?;
        // The original message, not a re-encoding of it.
        ensure_body_id(letter, id)?;
        let on_failure = stub.failures().iter().filter(|(f, _)| f == id).count();
        ensure!(
            on_failure == 1,
            "on_failure called {on_failure} times for {id}"
        );
    }
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn a_panicking_handler_fails_its_task_and_the_worker_goes_on() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let panics = queue.publish(json!({"outcome": "panic"}), &[]).await?;
    let fine = queue.publish(json!({}), &[]).await?;

    let failure = wait_state(&panics, "FAILURE").await?;
    worker.stop_at_state(&fine, "SUCCESS").await?;

    let message = exception_message(&failure, "RuntimeError")?;
    ensure!(
        message == format!("the handler panicked: stub told to panic by {panics}"),
        "{message}"
    );
    let dead = queue.take_one(&queue.dead()).await?;
    ensure_header(&dead, "x-task-id", &panics)?;
    ensure!(
        matches!(stub.failures().as_slice(), [(failed, TaskError::Permanent(_))] if *failed == panics),
        "on_failure calls: {:?}",
        stub.failures()
    );
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn a_task_past_its_hard_time_limit_fails_and_frees_its_slot() -> Result<()> {
    let one_slot = Settings {
        concurrency: 1,
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &one_slot).await?;
    let hangs = queue
        .publish(
            json!({"outcome": "hang"}),
            &[("timelimit", json!([1, null]))],
        )
        .await?;
    let next = queue.publish(json!({}), &[]).await?;

    let failure = wait_state(&hangs, "FAILURE").await?;
    worker.stop_at_state(&next, "SUCCESS").await?;

    let message = exception_message(&failure, "TimeLimitExceeded")?;
    ensure!(
        message == "the task ran past its hard time limit of 1 s",
        "{message}"
    );
    let dead = queue.take_one(&queue.dead()).await?;
    ensure!(death_reason(&dead)? == message, "{:?}", dead.headers);
    ensure!(
        matches!(stub.failures().as_slice(), [(failed, TaskError::TimeLimitExceeded(_))] if *failed == hangs),
        "on_failure calls: {:?}",
        stub.failures()
    );
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn at_its_soft_time_limit_a_task_is_asked_to_stop() -> Result<()> {
    let Scenario(queue, _stub, worker) = Scenario::start().await?;
    // Celery sends `[hard, soft]`; the hard limit is far off.
    let stops = queue
        .publish(
            json!({"outcome": "until_stopped"}),
            &[("timelimit", json!([600, 0.5]))],
        )
        .await?;

    let failure = worker.stop_at_state(&stops, "FAILURE").await?;

    let message = exception_message(&failure, "RuntimeError")?;
    ensure!(
        message == "stopped at its soft time limit of 0.5 s: stub stopped as asked",
        "{message}"
    );
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn unknown_task_name_is_dead_lettered() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let id = task_id();
    let unknown = "tests.process.nobody_serves_this";
    queue.publish_named(unknown, &id, json!({}), &[]).await?;

    let failure = worker.stop_at_state(&id, "FAILURE").await?;

    let message = exception_message(&failure, "NotRegistered")?;
    ensure!(
        message.contains(unknown) && message.contains(TASK),
        "{message}"
    );
    let dead = queue.take_one(&queue.dead()).await?;
    ensure_header(&dead, "x-task-name", unknown)?;
    ensure_header(&dead, "x-death-reason", &message)?;
    ensure!(
        stub.calls().is_empty() && stub.failures().is_empty(),
        "the stub was involved"
    );
    queue.finish(Drained::Source).await
}

/// Reasons that quote 300 KB of input once made a dead letter larger than
/// the broker's frame: the broker closed the connection, the message went
/// round until the delivery limit dropped it. Now every reason is bounded,
/// the original body kept, and the worker goes on serving on one
/// connection.
#[tokio::test]
async fn huge_input_in_a_reason_or_a_name_is_dead_lettered_within_the_frame() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let huge = "9".repeat(300_000);
    let bad_eta = queue.publish(json!({}), &[("eta", json!(huge))]).await?;
    let long_name = task_id();
    queue
        .publish_named(&huge, &long_name, json!({}), &[])
        .await?;
    let fine = queue.publish(json!({}), &[]).await?;

    let eta_failure = wait_state(&bad_eta, "FAILURE").await?;
    let name_failure = wait_state(&long_name, "FAILURE").await?;
    worker.stop_at_state(&fine, "SUCCESS").await?;

    let message = exception_message(&eta_failure, "ValueError")?;
    ensure!(
        message.contains("`eta` is not an ISO 8601 timestamp") && message.len() < 300,
        "{message}"
    );
    let message = exception_message(&name_failure, "ValueError")?;
    ensure!(
        message.contains("the task name is 300000 bytes, over 255"),
        "{message}"
    );
    let dead = queue.take_all(&queue.dead()).await?;
    ensure!(dead.len() == 2, "{} dead letters", dead.len());
    for letter in &dead {
        ensure!(death_reason(letter)?.len() < 300, "{:?}", letter.headers);
        ensure!(
            header(letter, "x-task-name").is_none_or(|name| name.len() <= 255),
            "{:?}",
            letter.headers
        );
        ensure!(
            body_json(letter)?.to_string().contains(&huge),
            "the original body is kept"
        );
    }
    stub.ensure_calls(1, "only the good task runs")?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn a_body_over_the_cap_is_dead_lettered_unread() -> Result<()> {
    let small_bodies = Settings {
        max_body_bytes: 2000,
        ..Settings::default()
    };
    let Scenario(queue, stub, worker) = Scenario::start_with(Stub::new(), &small_bodies).await?;
    let big = queue
        .publish(json!({"padding": "x".repeat(2000)}), &[])
        .await?;
    let fine = queue.publish(json!({}), &[]).await?;

    worker.stop_at_state(&fine, "SUCCESS").await?;

    let dead = queue.take_one(&queue.dead()).await?;
    let reason = death_reason(&dead)?;
    ensure!(
        reason.starts_with("undecodable message: the body is ")
            && reason.ends_with("bytes, over the 2000-byte cap (TASK_MAX_BODY_BYTES)"),
        "{reason}"
    );
    ensure_body_id(&dead, &big)?;
    ensure!(header(&dead, "x-task-id").is_none(), "{:?}", dead.headers);
    stub.ensure_calls(1, "only the small task runs")?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn a_retry_count_at_its_largest_is_dead_lettered_not_overflowed() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let retries = json!(u32::MAX);
    let id = queue
        .publish(json!({"outcome": "transient"}), &[("retries", retries)])
        .await?;

    let failure = worker.stop_at_state(&id, "FAILURE").await?;

    stub.ensure_attempts(&[u32::MAX])?;
    let message = exception_message(&failure, "ConnectionError")?;
    ensure!(
        message.contains(&format!("retries exhausted after {} attempts", u32::MAX)),
        "{message}"
    );
    let dead = queue.take_one(&queue.dead()).await?;
    ensure_number_header(&dead, "x-retries", u32::MAX)?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn undecodable_messages_are_dead_lettered() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    // Not JSON at all: nothing identifies the task.
    let garbage = b"{not json".to_vec();
    queue.publish_raw(&garbage, Map::new()).await?;
    // Protocol 2 headers with a body of the wrong shape: the id is known,
    // so the failure is recorded for it too.
    let id = task_id();
    let headers = json!({"lang": "py", "task": TASK, "id": id, "retries": 0});
    queue
        .publish_raw(
            br#"{"not": "a triple"}"#,
            headers.as_object().cloned().unwrap_or_default(),
        )
        .await?;

    queue.wait_ready(&queue.dead(), 2).await?;
    let failure = worker.stop_at_state(&id, "FAILURE").await?;

    ensure!(exception_message(&failure, "ValueError")?.starts_with("undecodable message"));
    let dead = queue.take_all(&queue.dead()).await?;
    let bare = dead
        .iter()
        .find(|letter| letter.body == garbage)
        .context("the garbage was not dead-lettered as is")?;
    let reason = death_reason(bare)?;
    ensure!(reason.starts_with("undecodable message"), "{reason}");
    ensure!(header(bare, "x-task-id").is_none(), "{:?}", bare.headers);
    ensure!(
        dead.iter()
            .any(|letter| header(letter, "x-task-id") == Some(id.as_str())),
        "no dead letter for the misshapen task"
    );
    stub.ensure_calls(0, "a handler ran")?;
    queue.finish(Drained::Source).await
}

#[tokio::test]
async fn future_eta_is_held_then_run() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let eta = Utc::now() + Duration::from_millis(1500);
    let id = queue.publish(json!({}), &[("eta", iso(eta))]).await?;

    worker.stop_at_state(&id, "SUCCESS").await?;

    let calls = stub.ensure_calls(1, "the held task")?;
    ensure!(
        calls[0].at >= eta,
        "ran at {} before its eta {eta}",
        calls[0].at
    );
    queue.finish(Drained::Both).await
}

#[tokio::test]
async fn expired_task_is_revoked_and_acked() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let expired = Utc::now() - Duration::from_secs(60);
    let id = queue
        .publish(json!({}), &[("expires", iso(expired))])
        .await?;

    let revoked = worker.stop_at_state(&id, "REVOKED").await?;

    exception_message(&revoked, "TaskRevokedError")?;
    stub.ensure_calls(0, "an expired task ran")?;
    queue.finish(Drained::Both).await
}

#[tokio::test]
async fn a_task_that_expires_while_held_for_its_eta_is_revoked_not_run() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let now = Utc::now();
    let (eta, expires) = (now + Duration::from_secs(2), now + Duration::from_secs(1));
    let id = queue
        .publish(json!({}), &[("eta", iso(eta)), ("expires", iso(expires))])
        .await?;

    let revoked = worker.stop_at_state(&id, "REVOKED").await?;

    exception_message(&revoked, "TaskRevokedError")?;
    stub.ensure_calls(0, "a task that expired during its eta wait ran")?;
    queue.finish(Drained::Both).await
}

/// Runs one task that blocks in the handler, then a second one that
/// `settings` and `extra` keep waiting (for a slot, or for its eta), then
/// shuts down: the running task is drained to SUCCESS and acknowledged,
/// the waiting one goes back to the queue untouched, and the worker stops
/// although the waiting task could not have finished within the grace
/// period (so it was given back, not waited for).
async fn shutdown_returns_the_waiting_task(
    settings: Settings,
    extra: &[(&str, Value)],
) -> Result<()> {
    ensure!(
        Duration::from_secs(settings.shutdown_timeout_secs) > common::PATIENCE,
        "the grace period must outlast PATIENCE for this check to mean anything"
    );
    let (Scenario(queue, stub, worker), running) = hold_one(&settings).await?;
    let waiting = queue.publish(json!({}), extra).await?;
    worker.wait_received(&queue, 2).await?;

    worker.begin_shutdown();
    stub.release(1);
    worker.stop().await?;

    ensure_status(&running, "SUCCESS").await?;
    ensure_no_result(&waiting, "the waiting task has a result").await?;
    stub.ensure_calls(1, "only the running task")?;
    let back = queue.take_one(&queue.name).await?;
    ensure_body_id(&back, &waiting)?;
    queue.finish(Drained::Dead).await
}

#[tokio::test]
async fn shutdown_requeues_a_task_waiting_for_a_slot() -> Result<()> {
    let one_slot = Settings {
        concurrency: 1,
        shutdown_timeout_secs: 120,
        ..Settings::default()
    };
    shutdown_returns_the_waiting_task(one_slot, &[]).await
}

#[tokio::test]
async fn shutdown_requeues_a_task_waiting_for_its_eta() -> Result<()> {
    let settings = Settings {
        shutdown_timeout_secs: 120,
        ..Settings::default()
    };
    let in_an_hour = Utc::now() + Duration::from_secs(3600);
    shutdown_returns_the_waiting_task(settings, &[("eta", iso(in_an_hour))]).await
}

#[tokio::test]
async fn shutdown_drains_the_task_in_flight() -> Result<()> {
    let (Scenario(queue, stub, worker), in_flight) = hold_one(&Settings::default()).await?;

    worker.begin_shutdown();
    // It stops taking deliveries (its consumer is cancelled) but keeps
    // running until the task in flight is done.
    worker.wait_not_consuming().await?;
    let late = queue.publish(json!({}), &[]).await?;
    ensure!(!worker.is_finished(), "run returned with a task in flight");
    ensure_no_result(&in_flight, "a result before the handler returned").await?;
    stub.release(1);
    worker.stop().await?;

    ensure_status(&in_flight, "SUCCESS").await?;
    let left = queue.take_one(&queue.name).await?;
    ensure_body_id(&left, &late)?;
    stub.ensure_calls(1, "only the task in flight")?;
    queue.delete().await;
    Ok(())
}

#[tokio::test]
async fn far_future_eta_is_published_again_after_the_hold_limit() -> Result<()> {
    let Scenario(queue, stub, worker) = Scenario::start().await?;
    let eta = iso(Utc::now() + Duration::from_secs(24 * 3600));
    let id = queue.publish(json!({}), &[("eta", eta.clone())]).await?;
    worker.wait_received(&queue, 1).await?;

    // The worker holds it at most ten minutes, then publishes it again with
    // the same eta and acks the original; it then receives the copy. Paused
    // time makes the ten minutes instant. It is safe here, unlike in the
    // other tests, because nothing on this path talks to Redis (see
    // `common`); lapin has no I/O timeouts on the way.
    tokio::time::pause();
    let republished = worker.wait_received(&queue, 2).await;
    tokio::time::resume();
    republished?;
    worker.stop().await?;

    let copy = queue.take_one(&queue.name).await?;
    ensure_header(&copy, "id", &id)?;
    ensure_number_header(&copy, "retries", 0)?;
    let held_until: DateTime<Utc> = header(&copy, "eta").context("no eta")?.parse()?;
    let published: DateTime<Utc> = eta.as_str().context("eta")?.parse()?;
    ensure!(
        held_until == published,
        "eta moved from {published} to {held_until}"
    );
    stub.ensure_calls(0, "ran a day early")?;
    ensure_no_result(&id, "a result for a task that never ran").await?;
    queue.finish(Drained::Dead).await
}
