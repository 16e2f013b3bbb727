"""Chaos suite: every task accounted for while the worker and its services fail.

For each worker (release build, real RabbitMQ, PostgreSQL and Redis, real
models): publish N tasks (fixtures with fresh ids) plus poison messages, and
while the worker drains them inject, one after the other as the work
progresses:

    kill -9 of the worker, and a restart
    SIGTERM under load (it must exit 0 after finishing its in-flight tasks), and a restart
    RabbitMQ down (`rabbitmqctl stop_app`, then `start_app`)
    PostgreSQL down for 15 s (`pg_ctlcluster ... stop -m fast`, then start)
    Redis down for 5 s (`redis-cli shutdown nosave`, then started from its config)

Then every task is accounted for: a good task must have its `ml_results` row
in a success state (`completed`), and for embeddings exactly the rows that
row counts; a poison message must be in the worker's dead-letter queue with
a reason. The line per worker:

    published / succeeded / dead-lettered / lost / duplicates / seconds

lost: a good task without its success row, or a poison message without its
dead letter; duplicates: an embedding set with more rows than its result
counts, or a message dead-lettered twice. A good task dead-lettered or
recorded as failed is counted under `wrong` and named. The run fails (exit 1)
unless lost, duplicates and wrong are all 0.

Entry point: scripts/chaos (see --help). It changes the state of the local
services while it runs (they are restored on the way out, also on Ctrl-C):
run it alone, not beside scripts/test.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scaling"))

import figures as figs  # noqa: E402
import measure  # noqa: E402  (the release-worker driver the scaling rehearsal measures with)

FIXTURES = ROOT / "tests" / "fixtures" / "messages"
POSTGRES_DOWN_S = 15
REDIS_DOWN_S = 5
# Poison messages every worker gets (routed to its first queue), and each worker's own.
POISON_COMMON = ["bad-not-json.json", "bad-unknown-task.json"]


@dataclass
class WorkerPlan:
    """What one worker is given: its queues, the task type of its rows, the
    fixtures of its good tasks (published round-robin), its poison, its count."""

    queues: dict[str, list[str]]
    task_type: str
    good: list[str]
    poison: list[str]
    count: int


PLANS = {
    "vector-worker": WorkerPlan(
        queues={"EMBED_QUEUE": ["ml.embed"]},
        task_type="embed_vectors",
        good=["embed.gateway.json", "embed-transcript.celery-v2.json", "embed-batch.gateway.json"],
        poison=["bad-missing-text.json"],
        count=1000,
    ),
    "whisper-worker": WorkerPlan(
        queues={"TRANSCRIBE_QUEUES": ["ml.transcribe", "ml.transcribe_local"]},
        task_type="transcription",
        good=["transcribe.gateway.json", "transcribe.celery-v2.json"],
        poison=["bad-media-scheme.json", "bad-media-private-address.json", "bad-media-outside-root.json"],
        count=20,
    ),
    "llm-worker": WorkerPlan(
        queues={"SUMMARIZE_QUEUE": ["ml.summarize"], "SUMMARIZE_LOCAL_QUEUE": ["ml.summarize_local"],
                "SUMMARIZE_VIDEO_COMBINED_QUEUE": ["ml.summarize_video_combined"]},
        task_type="summarize_llm",
        good=["summarize.gateway.json", "summarize.celery-v2.json", "summarize-local.gateway.json",
              "summarize-video-combined.json"],
        poison=["bad-share-id.json"],
        count=10,
    ),
}
FAULTS = ["kill -9", "SIGTERM", "RabbitMQ down", "PostgreSQL down", "Redis down"]


def log(msg):
    print(f"    {msg}", flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


# --- the local services -------------------------------------------------------


class Services:
    """Stops and starts the local RabbitMQ, PostgreSQL and Redis; `restore`
    brings back whatever is still down."""

    def __init__(self):
        clusters = run(["pg_lsclusters", "-h"]).stdout.split()
        self.pg = clusters[:2]  # version, cluster name
        self.down = set()

    def rabbit_stop(self):
        self.down.add("rabbit")
        run(["rabbitmqctl", "-q", "stop_app"])

    def rabbit_start(self):
        run(["rabbitmqctl", "-q", "start_app"])
        run(["rabbitmqctl", "-q", "await_startup"])
        self.down.discard("rabbit")

    def postgres_stop(self):
        self.down.add("postgres")
        run(["pg_ctlcluster", *self.pg, "stop", "-m", "fast"])

    def postgres_start(self):
        run(["pg_ctlcluster", *self.pg, "start"])
        self.down.discard("postgres")

    def redis_stop(self):
        self.down.add("redis")
        run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False)
        deadline = time.monotonic() + 10
        while port_open(6379) and time.monotonic() < deadline:
            time.sleep(0.1)

    def redis_start(self):
        run(["redis-server", "/etc/redis/redis.conf"])
        deadline = time.monotonic() + 10
        while not port_open(6379):
            if time.monotonic() > deadline:
                raise RuntimeError("redis did not come back within 10 s")
            time.sleep(0.1)
        self.down.discard("redis")

    def restore(self):
        for name, start in (("rabbit", self.rabbit_start), ("postgres", self.postgres_start),
                            ("redis", self.redis_start)):
            if name in self.down:
                try:
                    start()
                except Exception as e:  # noqa: BLE001  (keep restoring the others)
                    print(f"ERROR: could not restart {name}: {e}", file=sys.stderr)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- the database -------------------------------------------------------------


def sql(query: str) -> list[list[str]] | None:
    """Rows of `query` on DATABASE_URL through psql (None while it is down)."""
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                          "-d", os.environ["DATABASE_URL"]],
                         input=query, capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def uuid_array(ids) -> str:
    return "'{" + ",".join(ids) + "}'::uuid[]"


def result_states(shares, task_type) -> dict[str, str] | None:
    rows = sql(f"SELECT share_id, result_data->>'status' FROM ml_results "
               f"WHERE task_type = '{task_type}' AND share_id = ANY({uuid_array(shares)})")
    return None if rows is None else {r[0]: r[1] for r in rows}


def embedding_overcounts(shares) -> list[str]:
    """Shares whose stored embeddings outnumber what their result row counts."""
    rows = sql(f"""
        WITH stored AS (SELECT share_id, count(*) AS n FROM embeddings
                        WHERE share_id = ANY({uuid_array(shares)}) GROUP BY share_id)
        SELECT s.share_id, s.n, (r.result_data->>'embeddings_count')::int
        FROM stored s JOIN ml_results r ON r.share_id = s.share_id AND r.task_type = 'embed_vectors'
        WHERE s.n > (r.result_data->>'embeddings_count')::int""")
    return [f"{r[0]} ({r[1]} rows, result counts {r[2]})" for r in rows or []]


# --- messages -----------------------------------------------------------------


@dataclass
class Published:
    """What was published: good tasks by share id, poison by chaos id."""

    good: dict[str, str] = field(default_factory=dict)  # share id -> task id
    poison: dict[str, str] = field(default_factory=dict)  # chaos id -> fixture


def message_ids(message: dict) -> tuple[str, set[str]]:
    """(task id, share ids) of a fixture with fresh ids: the task id is the
    body's or the headers' `id`; every other UUID in it is a share id."""
    body, headers = message.get("body"), message.get("headers") or {}
    task_id = headers.get("id") or (body.get("id") if isinstance(body, dict) else None)
    found = set(measure.UUID_RE.findall(json.dumps(message)))
    return task_id, found - {task_id}


def publish_all(plan: WorkerPlan, queues: list[str], publisher, pika, media: str) -> Published:
    """Publishes plan.count good tasks and the poison (publisher confirms, mandatory)."""
    suffix = queues[0][queues[0].index(".test-"):]
    published = Published()
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["CELERY_BROKER_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()

        def send(fixture: dict, chaos_id: str):
            exchange, routing_key, properties, body = publisher.fixture_message(fixture)
            queue = routing_key + suffix if routing_key + suffix in queues else queues[0]
            properties.headers = {**(properties.headers or {}), "x-chaos-id": chaos_id}
            channel.basic_publish(exchange=exchange, routing_key=queue, body=body, properties=properties,
                                  mandatory=True)

        for i in range(plan.count):
            fixture = json.loads((FIXTURES / plan.good[i % len(plan.good)]).read_text())
            message = measure.fresh_message(fixture, None, media)
            task_id, shares = message_ids(message)
            for share in shares:
                published.good[share] = task_id
            send(message, task_id)
        for name in POISON_COMMON + plan.poison:
            fixture = json.loads((FIXTURES / name).read_text())
            chaos_id = str(uuid.uuid4())
            published.poison[chaos_id] = name
            send(measure.fresh_message(fixture, None, None), chaos_id)
    finally:
        connection.close()
    return published


def dead_letters(queues: list[str], pika) -> tuple[list[dict], int]:
    """The dead letters of `queues` (taken off `<queue>.dead`), and how many
    messages are still ready in the queues themselves."""
    letters, ready = [], 0
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["CELERY_BROKER_URL"]))
    try:
        channel = connection.channel()
        for queue in queues:
            ready += channel.queue_declare(queue, passive=True).method.message_count
            while True:
                method, properties, _ = channel.basic_get(f"{queue}.dead", auto_ack=True)
                if method is None:
                    break
                letters.append(properties.headers or {})
    finally:
        connection.close()
    return letters, ready


def dead_count(queues: list[str], pika) -> int | None:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(os.environ["CELERY_BROKER_URL"]))
    except Exception:  # noqa: BLE001  (the broker is down: no count now)
        return None
    try:
        channel = connection.channel()
        return sum(channel.queue_declare(f"{q}.dead", passive=True).method.message_count for q in queues)
    except Exception:  # noqa: BLE001  (not declared yet)
        return None
    finally:
        if connection.is_open:
            connection.close()


# --- one worker ---------------------------------------------------------------


@dataclass
class Outcome:
    worker: str
    published: int
    poison: int
    succeeded: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicates: int = 0
    wrong: int = 0
    seconds: float = 0.0
    faults: list[str] = field(default_factory=list)  # what each fault did
    notes: list[str] = field(default_factory=list)  # what went wrong, task by task
    warnings: Counter = field(default_factory=Counter)

    def ok(self):
        return self.lost == 0 and self.duplicates == 0 and self.wrong == 0

    def line(self):
        return (f"{self.worker:<15} published {self.published} (+{self.poison} poison) / "
                f"succeeded {self.succeeded} / dead-lettered {self.dead_lettered} / lost {self.lost} / "
                f"duplicates {self.duplicates} / wrong {self.wrong} / {self.seconds:.0f} s")


class Worker:
    """The release worker, restartable; `warnings` counts the WARN and ERROR
    log lines of every process it ran."""

    def __init__(self, binary: Path, env: dict):
        self.binary, self.env = binary, env
        self.process = None
        self.warnings = Counter()
        self.start()

    def start(self):
        self.process = measure.RunningWorker(self.binary, self.env)
        self.process.wait_ready(300)

    def _ended(self):
        self.process.sampler.stop.set()
        self.warnings += self.process.warnings

    def kill(self):
        self.process.proc.kill()
        self.process.proc.wait()
        self._ended()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.process.proc.send_signal(signal.SIGTERM)
        try:
            code = self.process.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.process.proc.kill()
            code = self.process.proc.wait()
        self._ended()
        return code, time.monotonic() - t0

    def stop(self):
        self.process.stop()
        self._ended()


def chaos_worker(name: str, plan: WorkerPlan, binary: Path, services: Services, publisher, pika,
                 media_dir: str, media: str, quiet_s: float) -> Outcome:
    suffix = f".test-{secrets.token_hex(6)}"
    queue_env = {k: ",".join(q + suffix for q in v) for k, v in plan.queues.items()}
    queues = [q for v in queue_env.values() for q in v.split(",")]
    env = {**os.environ, **queue_env, **measure.base_settings(ROOT, name),
           "PROMETHEUS_METRICS_PORT": "0", "METRICS_HOST": "127.0.0.1", "LOG_FORMAT": "json",
           "LOG_LEVEL": "info", "MEDIA_ROOTS": media_dir}
    for var in ("CELERY_RESULT_BACKEND", "RAYON_NUM_THREADS", "CANDLE_NUM_THREADS", "WHISPER_THREADS"):
        env.pop(var, None)
    worker = Worker(binary, env)  # declares the queues
    outcome = Outcome(name, 0, 0)
    try:
        published = publish_all(plan, queues, publisher, pika, media)
        shares = list(published.good)
        outcome.published, outcome.poison = plan.count, len(published.poison)
        t0 = time.monotonic()
        log(f"{name}: published {plan.count} tasks ({len(shares)} shares) and {len(published.poison)} poison")

        def progress():
            states = result_states(shares, plan.task_type)
            return None if states is None else sum(1 for s in states.values() if s == "completed")

        faults = list(FAULTS)
        # Fault k (from 1) fires once k/(F+2) of the shares are done, so
        # the last one still meets a good part of the work.
        thresholds = [len(shares) * (k + 1) // (len(faults) + 2) for k in range(len(faults))]
        last_change, last_done = time.monotonic(), -1
        while True:
            done = progress()
            dead = dead_count(queues, pika)
            if done is not None and done != last_done:
                last_change, last_done = time.monotonic(), done
            if not faults and done == len(shares) and dead is not None and dead >= len(published.poison):
                break
            if faults and done is not None and done >= thresholds[len(FAULTS) - len(faults)]:
                fault = faults.pop(0)
                log(f"{name}: {done}/{len(shares)} done at {time.monotonic() - t0:.0f} s: {fault}")
                outcome.faults.append(inject(fault, worker, services, outcome))
                log(f"{name}:   {outcome.faults[-1]}")
                last_change = time.monotonic()
            if time.monotonic() - last_change > quiet_s:
                outcome.notes.append(f"no progress for {quiet_s:.0f} s with {done}/{len(shares)} done: gave up")
                log(f"{name}: {outcome.notes[-1]}")
                break
            time.sleep(0.25)
        outcome.seconds = time.monotonic() - t0
        if worker.process.proc.poll() is not None:
            outcome.notes.append(f"the worker exited with {worker.process.proc.returncode}:\n"
                                 f"{worker.process.tail()}")
    finally:
        worker.stop()
        outcome.warnings = worker.warnings
    account(outcome, plan, published, queues, pika)
    measure.delete_queues(queues, pika, os.environ["CELERY_BROKER_URL"])
    return outcome


def inject(fault: str, worker: Worker, services: Services, outcome: Outcome) -> str:
    """Injects `fault`; what happened, for the record."""
    t0 = time.monotonic()
    if fault == "kill -9":
        worker.kill()
        worker.start()
        return f"killed and restarted, ready after {time.monotonic() - t0:.1f} s"
    if fault == "SIGTERM":
        code, took = worker.terminate()
        worker.start()
        if code != 0:
            outcome.wrong += 1
            outcome.notes.append(f"SIGTERM: the worker exited {code}, not 0")
        return f"SIGTERM: exited {code} after {took:.1f} s; restarted"
    if fault == "RabbitMQ down":
        services.rabbit_stop()
        time.sleep(5)
        services.rabbit_start()
        return f"RabbitMQ stopped and started again in {time.monotonic() - t0:.1f} s"
    if fault == "PostgreSQL down":
        services.postgres_stop()
        time.sleep(POSTGRES_DOWN_S)
        services.postgres_start()
        return f"PostgreSQL down for {time.monotonic() - t0:.1f} s"
    if fault == "Redis down":
        services.redis_stop()
        time.sleep(REDIS_DOWN_S)
        services.redis_start()
        return f"Redis down for {time.monotonic() - t0:.1f} s"
    raise ValueError(fault)


def account(outcome: Outcome, plan: WorkerPlan, published: Published, queues: list[str], pika):
    """Fills in the outcome's figures from the rows and the dead letters."""
    states = result_states(list(published.good), plan.task_type)
    if states is None:
        raise RuntimeError("cannot read ml_results to account for the tasks")
    letters, ready = dead_letters(queues, pika)
    if ready:
        outcome.notes.append(f"{ready} messages still ready in the queues")
    over = embedding_overcounts(list(published.good)) if plan.task_type == "embed_vectors" else []
    tally(outcome, published, states, letters, over)


def tally(outcome: Outcome, published: Published, states: dict[str, str], letters: list[dict],
          overcounts: list[str]):
    """The figures of `outcome` from what was published, the `ml_results`
    states by share id, the dead letters' headers and the embedding sets
    with more rows than their result counts."""
    outcome.dead_lettered = len(letters)
    by_chaos_id: dict[str, list[dict]] = {}
    for headers in letters:
        by_chaos_id.setdefault(str(headers.get("x-chaos-id")), []).append(headers)
    tasks = set(published.good.values())
    failed_tasks, wrong_tasks = set(), set()
    for share, task in published.good.items():
        state = states.get(share)
        if state == "completed":
            continue
        failed_tasks.add(task)
        if state is not None:
            wrong_tasks.add(task)
            outcome.notes.append(f"share {share} (task {task}) ended {state}")
        elif task not in by_chaos_id:
            outcome.lost += 1
            outcome.notes.append(f"lost: share {share} (task {task}) has no row and no dead letter")
    outcome.succeeded = len(tasks - failed_tasks)
    for chaos_id, copies in by_chaos_id.items():
        if len(copies) > 1:
            outcome.duplicates += len(copies) - 1
            outcome.notes.append(f"{chaos_id} dead-lettered {len(copies)} times")
        if chaos_id in tasks:
            wrong_tasks.add(chaos_id)
            outcome.notes.append(f"good task {chaos_id} dead-lettered: {str(copies[0].get('x-death-reason'))[:300]}")
    for chaos_id, fixture in published.poison.items():
        copies = by_chaos_id.get(chaos_id)
        if not copies:
            outcome.lost += 1
            outcome.notes.append(f"lost: poison {fixture} ({chaos_id}) has no dead letter")
        elif not copies[0].get("x-death-reason"):
            outcome.wrong += 1
            outcome.notes.append(f"poison {fixture} dead-lettered without a reason")
    outcome.wrong += len(wrong_tasks)
    outcome.duplicates += len(overcounts)
    outcome.notes.extend(f"duplicated embeddings: {o}" for o in overcounts)


# --- entry point --------------------------------------------------------------


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="append", choices=list(PLANS),
                        help="only this worker (repeatable; default: all three)")
    parser.add_argument("--runs", type=int, default=1, help="rounds over the workers (default 1)")
    parser.add_argument("--count", type=int, help="good tasks per worker instead of the plan's")
    parser.add_argument("--quiet", type=float, default=240.0,
                        help="give up after this many seconds without progress (default 240)")
    parser.add_argument("--skip-build", action="store_true", help="use the release binaries as built")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)

    import pika
    target = Path(os.environ["CARGO_TARGET_DIR"])
    models = Path(os.environ["MODELS_DIR"])
    if not args.skip_build:
        measure.build(ROOT, target)
    publisher = measure.fixture_publisher(ROOT)
    services = Services()
    names = args.worker or list(PLANS)
    print(f"==> chaos on {figs.cpu_model()} ({figs.cpus()} CPUs), {args.runs} run(s) of {', '.join(names)}")
    outcomes = []
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-media-") as tmp:
            clip = measure.speech_media(models, Path(tmp))["clip"][0]
            for run_index in range(args.runs):
                print(f"==> run {run_index + 1}")
                for name in names:
                    plan = PLANS[name]
                    if args.count:
                        plan = WorkerPlan(**{**plan.__dict__, "count": args.count})
                    outcome = chaos_worker(name, plan, target / "release" / name, services, publisher, pika,
                                           tmp, clip, args.quiet)
                    outcomes.append((run_index + 1, outcome))
                    print(f"    {outcome.line()}", flush=True)
                    for note in outcome.notes:
                        print(f"      {note}")
                    for message, n in outcome.warnings.most_common(8):
                        print(f"      {n:>5} x {message}")
    finally:
        services.restore()
    print("==> chaos figures (run: published / succeeded / dead-lettered / lost / duplicates / seconds)")
    for run_index, outcome in outcomes:
        print(f"    {run_index}: {outcome.line()}")
    return 0 if all(o.ok() for _, o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
