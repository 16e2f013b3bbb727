#!/usr/bin/env python3
"""Publish message fixtures (tests/fixtures/messages/*.json) to RabbitMQ, exactly.

Run it with the venv's python (it needs pika), e.g.
    "$ML_WORKERS_PYTHON" scripts/publish-fixture.py tests/fixtures/messages/embed.gateway.json

Each fixture file holds `exchange`, `routing_key`, AMQP `properties`, AMQP
`headers`, and either `body` (a JSON value, sent compactly serialised as UTF-8)
or `body_raw` (a string, sent as its UTF-8 bytes, as is). Properties and the
headers table are sent as given: JSON nulls become AMQP void values, lists
become arrays, objects nested tables, floats doubles.

The broker is the one in CELERY_BROKER_URL (default: the local RabbitMQ).
Messages are published with publisher confirms and as mandatory, so a message
that reaches no queue is an error (unless --allow-unroutable). Nothing is
declared: the exchange (and the queues bound to it) must already exist.
"""

import argparse
import json
import os
import struct
import sys

import pika
import pika.data
import pika.exceptions

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"

# Fixture property name -> pika.BasicProperties argument (same names).
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)


def _install_float_support():
    """pika cannot encode floats in tables; RabbitMQ (and Celery's py-amqp) use 'd'."""
    encode_value = pika.data.encode_value

    def encode_value_with_float(pieces, value):
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        return encode_value(pieces, value)

    # encode_table and encode_value look the name up at call time, so nested
    # tables and arrays get the float support too.
    pika.data.encode_value = encode_value_with_float


def load_fixture(path):
    """(exchange, routing key, properties, body) of the fixture file at `path`."""
    with open(path, "rb") as f:
        return fixture_message(json.load(f))


def fixture_message(fixture):
    """(exchange, routing key, properties, body) of a fixture already read."""
    if not isinstance(fixture, dict):
        raise ValueError("a fixture is a JSON object")
    has_body, has_raw = "body" in fixture, "body_raw" in fixture
    if has_body == has_raw:
        raise ValueError("a fixture has exactly one of `body` and `body_raw`")
    if has_raw:
        if not isinstance(fixture["body_raw"], str):
            raise ValueError("`body_raw` must be a string")
        body = fixture["body_raw"].encode("utf-8")
    else:
        body = json.dumps(fixture["body"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    props = fixture.get("properties") or {}
    unknown = sorted(set(props) - set(PROPERTY_NAMES))
    if unknown:
        raise ValueError(f"unknown AMQP properties: {', '.join(unknown)}")
    headers = fixture.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise ValueError("`headers` must be an object")
    properties = pika.BasicProperties(headers=headers, **props)
    return fixture.get("exchange", ""), fixture.get("routing_key", ""), properties, body


def main():
    parser = argparse.ArgumentParser(
        description="Publish message fixtures to RabbitMQ exactly as written (publisher confirms)."
    )
    parser.add_argument("fixtures", nargs="+", metavar="FIXTURE.json")
    parser.add_argument("--routing-key", help="override every fixture's routing key")
    parser.add_argument("--exchange", help="override every fixture's exchange ('' = the default exchange)")
    parser.add_argument(
        "--url",
        default=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
        help="AMQP URL (default: $CELERY_BROKER_URL, else the local broker)",
    )
    parser.add_argument(
        "--allow-unroutable",
        action="store_true",
        help="do not fail when a message reaches no queue",
    )
    args = parser.parse_args()

    # Read and check every fixture before publishing any of them.
    messages = []
    for path in args.fixtures:
        try:
            messages.append((path,) + load_fixture(path))
        except (OSError, ValueError) as e:
            sys.exit(f"{path}: {e}")

    _install_float_support()
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for path, exchange, routing_key, properties, body in messages:
            if args.exchange is not None:
                exchange = args.exchange
            if args.routing_key is not None:
                routing_key = args.routing_key
            try:
                channel.basic_publish(
                    exchange=exchange,
                    routing_key=routing_key,
                    body=body,
                    properties=properties,
                    mandatory=not args.allow_unroutable,
                )
            except pika.exceptions.UnroutableError:
                sys.exit(f"{path}: unroutable: no queue is bound for exchange={exchange!r} routing_key={routing_key!r}")
            except pika.exceptions.NackError:
                sys.exit(f"{path}: the broker nacked the message")
            except pika.exceptions.ChannelClosedByBroker as e:
                sys.exit(f"{path}: the broker refused it: {e.reply_code} {e.reply_text}")
            print(
                f"published {path} -> exchange={exchange!r} routing_key={routing_key!r} "
                f"({len(body)} bytes, correlation_id={properties.correlation_id!r})",
                flush=True,
            )
    finally:
        if connection.is_open:
            connection.close()


if __name__ == "__main__":
    main()
