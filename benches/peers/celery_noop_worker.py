"""The Celery peer for benches/runtime_throughput.rs: a no-op task served by a
stock Celery 5 worker (prefork, acks_late, Redis results) from a quorum queue
declared exactly like the gateway's.

Run: celery -A celery_noop_worker worker -P prefork -c 2 -Q $BENCH_QUEUE
Uses CELERY_BROKER_URL, REDIS_URL and BENCH_QUEUE.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

queue_name = os.environ["BENCH_QUEUE"]
app = Celery(
    "bench",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["REDIS_URL"],
)
app.conf.update(
    task_queues=[
        Queue(
            queue_name,
            Exchange("bookmarkai.ml", type="topic", durable=True),
            routing_key=queue_name,
            queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 5},
        )
    ],
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(**kwargs):
    """Returns a small result, like a real task's summary."""
    return {"status": "completed", "share_id": kwargs.get("share_id")}
