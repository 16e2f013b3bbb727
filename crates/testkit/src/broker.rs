//! Publishing to, reading from and cleaning up test queues on the real broker.

use anyhow::{Context, Result};
use lapin::options::{
    BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value, json};

use crate::fixture::Fixture;

/// The exchange the workers bind their queues to.
pub const EXCHANGE: &str = "bookmarkai.ml";

/// A message read back from a queue.
#[derive(Debug)]
pub struct Received {
    /// Its AMQP headers as JSON.
    pub headers: Map<String, Value>,
    /// Its body.
    pub body: Vec<u8>,
}

/// A broker connection with a confirmed publishing channel.
pub struct TestBroker {
    _connection: Connection,
    channel: Channel,
}

impl TestBroker {
    /// Connects to `CELERY_BROKER_URL`.
    ///
    /// # Errors
    /// When the broker is unreachable.
    pub async fn connect() -> Result<Self> {
        let connection =
            Connection::connect(&crate::env::broker_url(), ConnectionProperties::default())
                .await
                .context("connecting to RabbitMQ (is scripts/setup done?)")?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            _connection: connection,
            channel,
        })
    }

    /// A queue name no other test uses, e.g. `ml.embed.test-1a2b3c4d`.
    pub fn unique_queue(prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}.test-{}", &id[..12])
    }

    /// Publishes `fixture` exactly as its file describes, but with
    /// `routing_key` (the test's queue).
    ///
    /// # Errors
    /// When the broker does not confirm it or nothing is bound to the key.
    pub async fn publish_fixture(&self, fixture: &Fixture, routing_key: &str) -> Result<()> {
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        let text = |key: &str| fixture.properties.get(key).and_then(Value::as_str);
        if let Some(value) = text("content_type") {
            properties = properties.with_content_type(ShortString::from(value));
        }
        if let Some(value) = text("content_encoding") {
            properties = properties.with_content_encoding(ShortString::from(value));
        }
        if let Some(value) = text("correlation_id") {
            properties = properties.with_correlation_id(ShortString::from(value));
        }
        if let Some(value) = text("reply_to") {
            properties = properties.with_reply_to(ShortString::from(value));
        }
        properties = properties.with_headers(ml_runtime::headers::json_to_table(&fixture.headers));
        self.publish(EXCHANGE, routing_key, &fixture.body, properties)
            .await
    }

    /// Publishes a task in the gateway's encoding to `routing_key`.
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_gateway_task(
        &self,
        routing_key: &str,
        task_id: &str,
        task_name: &str,
        kwargs: Value,
        extra: &[(&str, Value)],
    ) -> Result<()> {
        let mut body = json!({
            "id": task_id,
            "task": task_name,
            "args": [],
            "kwargs": kwargs,
            "retries": 0,
            "eta": null,
            "expires": null,
            "headers": {"lang": "js", "task": task_name, "id": task_id},
            "priority": 0,
            "reply_to": null,
            "correlation_id": task_id,
        });
        for (key, value) in extra {
            body[*key] = value.clone();
        }
        let properties = ml_runtime::broker::json_properties();
        self.publish(
            EXCHANGE,
            routing_key,
            body.to_string().as_bytes(),
            properties,
        )
        .await
    }

    /// Publishes a task in Celery protocol 2 (as Python clients send it)
    /// to `routing_key`.
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_celery_task(
        &self,
        routing_key: &str,
        task_id: &str,
        task_name: &str,
        kwargs: Value,
    ) -> Result<()> {
        let headers = json!({
            "lang": "py", "task": task_name, "id": task_id, "shadow": null, "eta": null,
            "expires": null, "group": null, "group_index": null, "retries": 0,
            "timelimit": [null, null], "root_id": task_id, "parent_id": null,
            "argsrepr": "()", "kwargsrepr": kwargs.to_string(), "origin": "testkit@localhost",
            "ignore_result": false,
        });
        let body = json!([[], kwargs, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
        let properties = ml_runtime::broker::json_properties()
            .with_correlation_id(ShortString::from(task_id))
            .with_headers(ml_runtime::headers::json_to_table(
                headers.as_object().unwrap_or(&Map::new()),
            ));
        self.publish(
            EXCHANGE,
            routing_key,
            body.to_string().as_bytes(),
            properties,
        )
        .await
    }

    /// Declares `queue` (and `<queue>.dead`) exactly as the workers and the
    /// gateway do, for tests and benchmarks that consume with a peer.
    ///
    /// # Errors
    /// When the broker refuses the declaration.
    pub async fn declare_queue(&self, queue: &str) -> Result<()> {
        ml_runtime::broker::declare_topology(&self.channel, &[queue.to_owned()]).await?;
        Ok(())
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<()> {
        ml_runtime::broker::publish_confirmed(
            &self.channel,
            exchange,
            routing_key,
            body,
            properties,
        )
        .await
        .with_context(|| format!("publishing to {exchange:?} with key {routing_key:?}"))
    }

    /// Takes one message from `queue` (acknowledging it), if any.
    ///
    /// # Errors
    /// When the queue does not exist.
    pub async fn get(&self, queue: &str) -> Result<Option<Received>> {
        let message = self
            .channel
            .basic_get(ShortString::from(queue), BasicGetOptions { no_ack: true })
            .await?;
        Ok(message.map(|m| Received {
            headers: m
                .delivery
                .properties
                .headers()
                .as_ref()
                .map(ml_runtime::headers::table_to_json)
                .unwrap_or_default(),
            body: m.delivery.data.clone(),
        }))
    }

    /// Ready (not unacknowledged) messages in `queue`, read on a connection
    /// of its own (see [`queue_counts`]).
    ///
    /// # Errors
    /// When the queue does not exist.
    pub async fn ready_count(&self, queue: &str) -> Result<u32> {
        let connection =
            Connection::connect(&crate::env::broker_url(), ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let count = queue_counts(&channel, queue).await?.ready;
        let _ = connection.close(200, ShortString::from("done")).await;
        Ok(count)
    }

    /// Deletes `queue` and its dead-letter queue.
    pub async fn delete(&self, queue: &str) {
        for name in [queue.to_owned(), format!("{queue}.dead")] {
            let _ = self
                .channel
                .queue_delete(ShortString::from(name), QueueDeleteOptions::default())
                .await;
        }
    }
}

/// What a passive declare reports about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Ready (not unacknowledged) messages.
    pub ready: u32,
    /// Consumers attached to it.
    pub consumers: u32,
}

/// Reads `queue`'s counts with a passive declare on `channel`.
///
/// The broker closes the channel when the queue does not exist, so pass one
/// that nothing else needs (not a [`TestBroker`]'s publishing channel).
///
/// # Errors
/// When the queue does not exist or the channel is closed.
pub async fn queue_counts(channel: &Channel, queue: &str) -> Result<QueueCounts> {
    let declared = channel
        .queue_declare(
            ShortString::from(queue),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(QueueCounts {
        ready: declared.message_count(),
        consumers: declared.consumer_count(),
    })
}
