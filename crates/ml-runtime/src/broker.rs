//! Connecting to RabbitMQ and declaring the contract's topology
//! (CONTRACT section 1).

use lapin::options::{
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::publisher::Publisher;
use crate::{DEAD_LETTER_SUFFIX, EXCHANGE};

/// One broker connection: a channel to consume on and a confirmed channel
/// to publish retries and dead-letters on.
pub(crate) struct Session {
    pub connection: Connection,
    pub consumer: Channel,
    pub publisher: Publisher,
}

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
