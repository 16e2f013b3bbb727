"""A real Celery 5 client: sends one embed task the way Python producers do
(protocol 2) and waits for its result with AsyncResult.get().

Usage: celery_client.py QUEUE SHARE_ID TEXT
Prints one JSON line: {"id", "state", "result"} or {"id", "state", "error_type", "error"}.
Uses CELERY_BROKER_URL and REDIS_URL (or CELERY_RESULT_BACKEND).
"""

import json
import os
import sys

from celery import Celery
from kombu import Exchange, Queue


def main() -> int:
    queue_name, share_id, text = sys.argv[1], sys.argv[2], sys.argv[3]
    backend = os.environ.get("CELERY_RESULT_BACKEND") or os.environ["REDIS_URL"]
    app = Celery("client", broker=os.environ["CELERY_BROKER_URL"], backend=backend)
    exchange = Exchange("bookmarkai.ml", type="topic", durable=True)
    # Declared exactly like the gateway does, or RabbitMQ refuses it (406).
    queue = Queue(
        queue_name,
        exchange,
        routing_key=queue_name,
        queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 5},
    )
    app.conf.update(
        task_queues=[queue],
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
    )
    content = {"type": "caption"}
    if text:
        content["text"] = text
    result = app.send_task(
        "vector_service.tasks.generate_embeddings",
        kwargs={"share_id": share_id, "content": content, "options": {}},
        queue=queue,
    )
    try:
        value = result.get(timeout=120)
    except Exception as error:  # the worker's failure, re-raised by Celery
        print(json.dumps({
            "id": result.id,
            "state": result.state,
            "error_type": type(error).__name__,
            "error": str(error),
        }))
        return 0
    print(json.dumps({"id": result.id, "state": result.state, "result": value}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
