//! A test's own queue on the real broker: publishing, counting, taking.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use ml_testkit::broker::Received;
use ml_testkit::{Fixture, TestBroker};
use serde_json::{Map, Value, json};

use super::{PATIENCE, TASK};

/// A queue of the test's own, declared like the gateway does (with its
/// `.dead` queue). Names end in `.test-<hex>`, so `scripts/test` removes
/// any a failed test leaves behind; [`TestQueue::delete`] removes them.
pub struct TestQueue {
    /// The queue's name.
    pub name: String,
    broker: TestBroker,
    _connection: Connection,
    inspect: Channel,
}

impl TestQueue {
    /// Declares a fresh `ml.process.test-<hex>` and its dead-letter queue.
    ///
    /// # Errors
    /// When the broker is unreachable.
    pub async fn declare() -> Result<Self> {
        let name = TestBroker::unique_queue("ml.process");
        let broker = TestBroker::connect().await?;
        broker.declare_queue(&name).await?;
        let connection = Connection::connect(
            &ml_testkit::env::broker_url(),
            ConnectionProperties::default(),
        )
        .await?;
        let inspect = connection.create_channel().await?;
        Ok(Self {
            name,
            broker,
            _connection: connection,
            inspect,
        })
    }

    /// The dead-letter queue, `<name>.dead`.
    pub fn dead(&self) -> String {
        format!("{}{}", self.name, ml_runtime::DEAD_LETTER_SUFFIX)
    }

    /// Publishes a gateway-encoded [`TASK`] with `kwargs` and the body
    /// fields in `extra` (e.g. `eta`).
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish(&self, id: &str, kwargs: Value, extra: &[(&str, Value)]) -> Result<()> {
        self.publish_named(TASK, id, kwargs, extra).await
    }

    /// Publishes a gateway-encoded task called `task_name`.
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_named(
        &self,
        task_name: &str,
        id: &str,
        kwargs: Value,
        extra: &[(&str, Value)],
    ) -> Result<()> {
        self.broker
            .publish_gateway_task(&self.name, id, task_name, kwargs, extra)
            .await
    }

    /// Publishes `body` as a JSON message with AMQP `headers`, exactly as
    /// given (for messages the worker cannot decode).
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_raw(&self, body: &[u8], headers: Map<String, Value>) -> Result<()> {
        let message = Fixture {
            name: "raw".into(),
            routing_key: self.name.clone(),
            properties: json!({"content_type": "application/json", "content_encoding": "utf-8"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            headers,
            body: body.to_vec(),
            json: None,
        };
        self.broker.publish_fixture(&message, &self.name).await
    }

    /// Ready messages and consumers of `queue`.
    async fn counts(&self, queue: &str) -> Result<(u32, u32)> {
        let declared = self
            .inspect
            .queue_declare(
                ShortString::from(queue),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((declared.message_count(), declared.consumer_count()))
    }

    /// Waits until `queue` holds exactly `count` ready messages.
    ///
    /// # Errors
    /// When it does not within [`PATIENCE`].
    pub async fn wait_ready(&self, queue: &str, count: u32) -> Result<()> {
        self.wait_ready_within(queue, count, PATIENCE).await
    }

    /// [`TestQueue::wait_ready`] with a deadline of its own.
    ///
    /// # Errors
    /// When it does not within `deadline`.
    pub async fn wait_ready_within(
        &self,
        queue: &str,
        count: u32,
        deadline: Duration,
    ) -> Result<()> {
        ml_testkit::wait::until(
            &format!("{count} ready messages in {queue}"),
            deadline,
            || async { (self.counts(queue).await.ok()?.0 == count).then_some(()) },
        )
        .await
    }

    /// Waits until nothing consumes the source queue.
    ///
    /// # Errors
    /// When a consumer stays beyond [`PATIENCE`].
    pub async fn wait_no_consumer(&self) -> Result<()> {
        ml_testkit::wait::until(
            &format!("no consumer on {}", self.name),
            PATIENCE,
            || async { (self.counts(&self.name).await.ok()?.1 == 0).then_some(()) },
        )
        .await
    }

    /// Waits until the source queue has no consumer (so everything a
    /// stopped worker held unacknowledged is back), then takes every
    /// message of `queue`.
    ///
    /// # Errors
    /// When a consumer stays, or the broker is unreachable.
    pub async fn take_all(&self, queue: &str) -> Result<Vec<Received>> {
        self.wait_no_consumer().await?;
        let mut taken = Vec::new();
        while let Some(message) = self.broker.get(queue).await? {
            taken.push(message);
        }
        Ok(taken)
    }

    /// Like [`TestQueue::take_all`], failing unless exactly one message
    /// is there.
    ///
    /// # Errors
    /// When there is none or more than one.
    pub async fn take_one(&self, queue: &str) -> Result<Received> {
        let mut taken = self.take_all(queue).await?;
        ensure!(
            taken.len() == 1,
            "expected one message in {queue}, found {}: {:?}",
            taken.len(),
            bodies(&taken)
        );
        taken.pop().context("no message")
    }

    /// Fails unless the source queue and its dead-letter queue are both
    /// empty (after the worker stopped).
    ///
    /// # Errors
    /// When either holds a message.
    pub async fn assert_empty(&self) -> Result<()> {
        for queue in [self.name.clone(), self.dead()] {
            let left = self.take_all(&queue).await?;
            ensure!(left.is_empty(), "{queue} still holds {:?}", bodies(&left));
        }
        Ok(())
    }

    /// Deletes the queue and its dead-letter queue.
    pub async fn delete(self) {
        self.broker.delete(&self.name).await;
    }
}

/// Message bodies as text, for failure messages.
fn bodies(messages: &[Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}
