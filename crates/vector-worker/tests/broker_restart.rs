//! RabbitMQ restarted under a running worker: it reports not-ready while the
//! broker is gone, reconnects with backoff, and goes on serving. Alone in its
//! own test binary because it stops the shared broker.

mod common;

use common::EmbedTasks as _;

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use common::{TASK, wait_celery_status};
use serde_json::json;
use uuid::Uuid;

fn rabbitmqctl(command: &str) -> Result<()> {
    let status = Command::new("rabbitmqctl").arg(command).status()?;
    anyhow::ensure!(status.success(), "rabbitmqctl {command} failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_reconnects_after_the_broker_restarts() -> Result<()> {
    let harness = common::start(&[]).await?;
    let first = Uuid::new_v4().to_string();
    harness
        .publish_embed(
            &first,
            json!({"share_id": Uuid::new_v4(), "content": {"text": "Before the restart."}}),
        )
        .await?;
    wait_celery_status(&first, "SUCCESS", TASK).await?;

    rabbitmqctl("stop_app")?;
    let restarted = async {
        ml_testkit::wait::until(
            "/readyz to report the broker gone",
            Duration::from_secs(30),
            || {
                let status = harness.worker.get("/readyz").map(|(s, _)| s).unwrap_or(0);
                async move { (status == 503).then_some(()) }
            },
        )
        .await
    }
    .await;
    rabbitmqctl("start_app")?;
    restarted?;
    rabbitmqctl("await_startup")?;
    ml_testkit::wait::until(
        "/readyz = 200 after the restart",
        Duration::from_secs(90),
        || {
            let status = harness.worker.get("/readyz").map(|(s, _)| s).unwrap_or(0);
            async move { (status == 200).then_some(()) }
        },
    )
    .await?;

    let broker = ml_testkit::TestBroker::connect().await?;
    let second = Uuid::new_v4().to_string();
    broker
        .publish_gateway_task(
            &harness.queue,
            &second,
            "vector_service.tasks.generate_embeddings",
            json!({"share_id": Uuid::new_v4(), "content": {"text": "After the restart."}}),
            &[],
        )
        .await?;
    wait_celery_status(&second, "SUCCESS", TASK).await?;
    broker.delete(&harness.queue).await;
    Ok(())
}
