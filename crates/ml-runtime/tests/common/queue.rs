//! A test's own queue on the real broker: publishing, counting, taking.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use lapin::{Channel, Connection, ConnectionProperties};
use ml_testkit::broker::{QueueCounts, Received, queue_counts};
use ml_testkit::{Fixture, TestBroker};
use serde_json::{Map, Value, json};

use super::{PATIENCE, TASK, task_id};

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

    /// Publishes a gateway-encoded [`TASK`] with a fresh id, `kwargs` and
    /// the body fields in `extra` (e.g. `eta`), and returns the id.
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish(&self, kwargs: Value, extra: &[(&str, Value)]) -> Result<String> {
        let id = task_id();
        self.publish_named(TASK, &id, kwargs, extra).await?;
        Ok(id)
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

    /// Ready messages and consumers of `queue`, on the inspecting channel
    /// (a missing queue closes it, never the publishing one).
    async fn counts(&self, queue: &str) -> Result<QueueCounts> {
        queue_counts(&self.inspect, queue).await
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
            || async { (self.counts(queue).await.ok()?.ready == count).then_some(()) },
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
            || async { (self.counts(&self.name).await.ok()?.consumers == 0).then_some(()) },
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

    /// Fails unless the queues `drained` names hold nothing (after the
    /// worker stopped and the test took what it checked), then deletes the
    /// queues whatever the outcome.
    ///
    /// # Errors
    /// When one of them still holds a message.
    pub async fn finish(self, drained: Drained) -> Result<()> {
        let queues = match drained {
            Drained::Source => vec![self.name.clone()],
            Drained::Dead => vec![self.dead()],
            Drained::Both => vec![self.name.clone(), self.dead()],
        };
        let checked = self.assert_drained(&queues).await;
        self.delete().await;
        checked
    }

    /// Fails unless every one of `queues` is empty.
    async fn assert_drained(&self, queues: &[String]) -> Result<()> {
        for queue in queues {
            let left = self.take_all(queue).await?;
            ensure!(left.is_empty(), "{queue} still holds {:?}", bodies(&left));
        }
        Ok(())
    }

    /// Deletes the queue and its dead-letter queue.
    pub async fn delete(self) {
        self.broker.delete(&self.name).await;
    }
}

/// Which of a test's queues [`TestQueue::finish`] expects empty.
#[derive(Debug, Clone, Copy)]
pub enum Drained {
    /// The source queue: nothing left unprocessed or given back.
    Source,
    /// The `.dead` queue: nothing dead-lettered.
    Dead,
    /// Both.
    Both,
}

/// Message bodies as text, for failure messages.
fn bodies(messages: &[Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}
