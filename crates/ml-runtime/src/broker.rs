//! Connecting to RabbitMQ and declaring the contract's topology
//! (CONTRACT section 1).

use lapin::options::{
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::config::redact_url;
use crate::publisher::Publisher;
use crate::{DEAD_LETTER_SUFFIX, EXCHANGE};

/// One broker connection: a channel to consume on and a confirmed channel
/// to publish retries and dead-letters on.
pub(crate) struct Session {
    pub connection: Connection,
    pub consumer: Channel,
    pub publisher: Publisher,
}

/// The message of the line logged once a broker connection is open. It
/// names the protocol so that `kubectl logs deployment/<worker> | grep AMQP`
/// (k8s/README.md) finds it; the prod overlay's `LOG_LEVEL` keeps this
/// module at info for the same reason.
pub const CONNECTED_MESSAGE: &str = "connected to the AMQP broker";

/// Connects, declares the topology for `queues` and applies `prefetch`.
pub(crate) async fn open(
    url: &str,
    client_name: &str,
    queues: &[String],
    prefetch: u16,
) -> Result<Session, lapin::Error> {
    let properties =
        ConnectionProperties::default().with_connection_name(LongString::from(client_name));
    let connection = Connection::connect(url, properties).await?;
    tracing::info!(broker = %redact_url(url), "{CONNECTED_MESSAGE}");
    let consumer = connection.create_channel().await?;
    declare_topology(&consumer, queues).await?;
    consumer
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let publish_channel = connection.create_channel().await?;
    publish_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(Session {
        connection,
        consumer,
        publisher: Publisher::new(publish_channel),
    })
}

/// The exact arguments the gateway declares its queues with. Any other set
/// makes RabbitMQ answer 406 PRECONDITION_FAILED, so never add to it.
pub fn source_queue_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments.insert(ShortString::from("x-delivery-limit"), AMQPValue::LongInt(5));
    arguments
}

/// Declares the exchange, each source queue bound by its own name, and each
/// queue's dead-letter queue `<queue>.dead`.
///
/// # Errors
/// When the broker refuses a declaration (e.g. 406 for different arguments).
pub async fn declare_topology(channel: &Channel, queues: &[String]) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            ShortString::from(EXCHANGE),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for queue in queues {
        channel
            .queue_declare(
                ShortString::from(queue.as_str()),
                durable,
                source_queue_arguments(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(queue.as_str()),
                ShortString::from(EXCHANGE),
                ShortString::from(queue.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut dead_arguments = FieldTable::default();
        dead_arguments.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        channel
            .queue_declare(
                ShortString::from(format!("{queue}{DEAD_LETTER_SUFFIX}")),
                durable,
                dead_arguments,
            )
            .await?;
    }
    Ok(())
}

/// A publish the broker did not take.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The channel or connection failed.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker could not store the message.
    #[error("broker refused the message (nack)")]
    Nacked,
    /// No queue is bound for the routing key (the message was returned).
    #[error("no queue is bound for routing key {0:?}")]
    Unroutable(String),
}

/// Publishes a `mandatory` message on a channel in confirm mode and waits
/// until the broker confirms it; a nack or a returned (unroutable) message
/// is an error, so callers only ack the original after a real hand-over.
///
/// # Errors
/// [`PublishError`] when the broker did not take the message.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), PublishError> {
    let confirmation = channel
        .basic_publish(
            ShortString::from(exchange),
            ShortString::from(routing_key),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?
        .await?;
    if confirmation.is_nack() {
        return Err(PublishError::Nacked);
    }
    match confirmation.take_message() {
        Some(_) => Err(PublishError::Unroutable(routing_key.to_owned())),
        None => Ok(()),
    }
}

/// Properties of a persistent JSON message, as Celery producers send them.
pub fn json_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("utf-8"))
        .with_delivery_mode(2)
        .with_headers(FieldTable::default())
}
