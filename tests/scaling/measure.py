"""Measures the release workers on this machine: start-up, idle and busy CPU,
RSS, and the CPU-seconds each task kind takes, with real messages against
the local RabbitMQ, PostgreSQL and Redis.

Each worker runs as `target/release/<worker>` with the concurrency and
prefetch of the rendered base overlay's ConfigMaps, on queues of its own
(`<queue>.test-<hex>`, deleted afterwards; scripts/test also sweeps them),
with the test database. A sampler reads /proc/<pid>/stat (utime + stime,
and the children's once reaped: ffmpeg) and /proc/<pid>/status (VmRSS)
every 100 ms. After one warm-up task, a worker that runs one task at a time (llm,
whisper) gets N messages one after the other, each timed alone, and the
least disturbed run (fewest CPU-seconds: on a busy host the compute threads
spin and wait) stands for the kind; the vector-worker (concurrency 2,
batched passes) gets N messages at once, timed as one run. A run ends when
`ml_tasks_total{status="success"}` has counted its messages:

    busy_cores          = CPU-seconds over the run / wall seconds of the run
    cpu_s_per_task      = CPU-seconds over the run / N
    runqueue_s_per_task = seconds its threads waited for a CPU (schedstat) / N
    task_s_per_task     = the worker's own ml_task_duration_seconds, per task
    model_s_per_task    = its ml_model_latency_seconds (model calls), per task
    peak_rss            = highest RSS during the run; settled_rss = RSS 3 s after

Messages are the fixtures in tests/fixtures/messages with fresh UUIDs, the
summarize ones also with a long article (the GPL-3 text from
/usr/share/common-licenses, cut by the worker to its context), the
transcribe ones pointing at the speech sample (jfk.wav as an AAC .mp4, once
and looped six times, 66 s). About five minutes on an idle 2-core host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import figures as figs

CLK_TCK = os.sysconf("SC_CLK_TCK")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "messages"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Per worker: the queue variables and their defaults, the model folder the
# init container copies, and the task kinds: (name, fixtures, count).
WORKERS = {
    "vector-worker": {
        "queues": {"EMBED_QUEUE": ["ml.embed"]},
        "models": ["all-MiniLM-L6-v2"],
        "kinds": [("mix", ["embed.gateway.json", "embed-transcript.celery-v2.json", "embed-batch.gateway.json"], 300)],
    },
    "llm-worker": {
        "queues": {"SUMMARIZE_QUEUE": ["ml.summarize"], "SUMMARIZE_LOCAL_QUEUE": ["ml.summarize_local"],
                   "SUMMARIZE_VIDEO_COMBINED_QUEUE": ["ml.summarize_video_combined"]},
        "models": ["smollm2-135m-instruct"],
        "kinds": [("summary", ["summarize.gateway.json", "summarize.celery-v2.json",
                               "summarize-local.gateway.json", "summarize-video-combined.json"], 6),
                  ("long-article", ["summarize.gateway.json"], 2)],
    },
    "whisper-worker": {
        "queues": {"TRANSCRIBE_QUEUES": ["ml.transcribe", "ml.transcribe_local"]},
        "models": ["whisper-tiny.en"],
        "kinds": [("clip", ["transcribe.gateway.json", "transcribe.celery-v2.json"], 3),
                  ("long", ["transcribe.gateway.json"], 2)],
    },
}
LONG_AUDIO_LOOPS = 6  # jfk.wav x 6: 66 s (the transcription bench's long clip)


def log(msg):
    print(f"    {msg}", flush=True)


def fixture_publisher(root: Path):
    """scripts/publish-fixture.py as a module (its fixture reading and pika's float support)."""
    spec = importlib.util.spec_from_file_location("publish_fixture", root / "scripts" / "publish-fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._install_float_support()
    return module


class Sampler(threading.Thread):
    """(t, cpu_seconds, rss_bytes, runqueue_seconds) of a process every 100 ms.

    runqueue_seconds: the time its threads spent runnable but waiting for a
    CPU (second field of /proc/<pid>/task/*/schedstat), i.e. what a busy host
    took from it; the model uses it to tell waiting for a CPU from waiting
    for I/O.
    """

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []
        self.stop = threading.Event()

    def read(self):
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            # after the ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17
            cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
            rss = 0
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
            waited = 0
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                try:
                    waited += int((task / "schedstat").read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    pass  # a thread that just ended
            return time.monotonic(), cpu, rss, waited / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def run(self):
        while not self.stop.is_set():
            s = self.read()
            if s:
                self.samples.append(s)
            time.sleep(0.1)

    def window(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def between(self, t0, t1):
        """(cpu seconds, runqueue seconds, seconds) from the samples around t0 and t1."""
        before = [s for s in self.samples if s[0] <= t0] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= t1] or self.samples[-1:]
        a, b = before[-1], after[0]
        return b[1] - a[1], max(0.0, b[3] - a[3]), b[0] - a[0]

    def cpu_between(self, t0, t1):
        cpu, _, span = self.between(t0, t1)
        return cpu, span


class RunningWorker:
    def __init__(self, binary: Path, env: dict):
        self.lines = []
        self.warnings = Counter()  # "level: message" of every WARN and ERROR line
        self.bound = None
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        threading.Thread(target=self._read, daemon=True).start()
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if len(self.lines) > 400:
                del self.lines[:100]
            if not line.startswith("{"):
                continue
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if self.bound is None and j.get("bound"):
                self.bound = j["bound"].replace("0.0.0.0:", "127.0.0.1:")
            if str(j.get("level", "")).upper() in ("WARN", "ERROR"):
                self.warnings[f'{j["level"].lower()}: {j.get("message", "?")}'] += 1

    def tail(self):
        return "\n".join(self.lines[-40:])

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.bound}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.tail()}")
            if self.bound:
                try:
                    if self.get("/readyz")[0] == 200:
                        return time.monotonic()
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"not ready within {timeout}s:\n{self.tail()}")

    def tasks(self):
        """(succeeded, failed) from ml_tasks_total."""
        _, text = self.get("/metrics")
        ok = bad = 0.0
        for line in text.splitlines():
            if line.startswith("ml_tasks_total{"):
                value = float(line.rsplit(" ", 1)[1])
                if 'status="success"' in line:
                    ok += value
                elif 'status="failure"' in line:
                    bad += value
        return ok, bad

    def histogram_sums(self):
        """Sums over all label sets of the task and model-call histograms:
        {name: (sum, count)} for ml_task_duration_seconds, ml_model_latency_seconds."""
        _, text = self.get("/metrics")
        out = {}
        for name in ("ml_task_duration_seconds", "ml_model_latency_seconds"):
            total = count = 0.0
            for line in text.splitlines():
                if line.startswith(f"{name}_sum"):
                    total += float(line.rsplit(" ", 1)[1])
                elif line.startswith(f"{name}_count"):
                    count += float(line.rsplit(" ", 1)[1])
            out[name] = (total, count)
        return out

    def compute_threads(self):
        for line in self.lines:
            if '"compute threads"' in line:
                try:
                    return int(json.loads(line).get("threads"))
                except (ValueError, TypeError):
                    pass
        return None

    def stop(self):
        self.sampler.stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fresh_message(fixture: dict, text: str | None, media: str | None) -> dict:
    """The fixture with fresh UUIDs (one mapping per message), and the long
    article or the media path put in."""
    mapping = {}
    raw = UUID_RE.sub(lambda m: mapping.setdefault(m.group(0), str(uuid.uuid4())), json.dumps(fixture))
    out = json.loads(raw)

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and text is not None and isinstance(v, str) and "task_data" not in node:
                    node[k] = text
                elif k == "mediaUrl" and media is not None:
                    node[k] = media
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out.get("body"))
    return out


def _long_article(root: Path) -> str:
    for path in (Path("/usr/share/common-licenses/GPL-3"), root / "README.md"):
        if path.exists():
            return " ".join(path.read_text().split())
    raise RuntimeError("no long text found for the long-article task")


def speech_media(models_dir: Path, tmp: Path) -> dict:
    jfk = models_dir / "speech-samples" / "jfk.wav"
    if not jfk.exists():
        raise RuntimeError(f"{jfk} is missing (scripts/setup fetches it)")
    clip, long = tmp / "clip.mp4", tmp / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(jfk), "-c:a", "aac", str(clip)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(LONG_AUDIO_LOOPS - 1), "-i", str(jfk),
                    "-c:a", "aac", str(long)], check=True)

    def duration(p):
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(p)],
                             check=True, capture_output=True, text=True).stdout
        return float(out.strip())

    return {"clip": (str(clip), duration(clip)), "long": (str(long), duration(long))}


def base_settings(root: Path, worker: str) -> dict:
    """WORKER_CONCURRENCY / WORKER_PREFETCH_MULTIPLIER of the rendered base overlay."""
    import manifests
    spec = manifests.load(root / "k8s", "base")[worker]
    return {"WORKER_CONCURRENCY": str(spec.concurrency),
            "WORKER_PREFETCH_MULTIPLIER": str(spec.prefetch // spec.concurrency)}


def _copy_time(models_dir: Path, names: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="scaling-copy-") as tmp:
        t0 = time.monotonic()
        for name in names:
            shutil.copytree(models_dir / name, Path(tmp) / name)
        return time.monotonic() - t0


def measure_worker(root, binary, worker, env_base, publisher, pika, media, article, models_dir):
    conf = WORKERS[worker]
    suffix = f".test-{secrets.token_hex(6)}"
    queue_env = {k: ",".join(q + suffix for q in v) for k, v in conf["queues"].items()}
    queues = [q for v in queue_env.values() for q in v.split(",")]
    settings = base_settings(root, worker)
    env = {**env_base, **queue_env, **settings,
           "PROMETHEUS_METRICS_PORT": "0", "METRICS_HOST": "127.0.0.1", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    if worker == "whisper-worker":
        env["MEDIA_ROOTS"] = str(Path(media["clip"][0]).parent)
    out = {"settings": settings, "loadavg_before": list(os.getloadavg())}
    out["model_copy_s"] = round(_copy_time(models_dir, conf["models"]), 3)
    log(f"{worker}: starting {binary} ({settings})")
    w = RunningWorker(binary, env)
    connection = None
    try:
        t_ready = w.wait_ready(300)
        out["ready_s"] = round(t_ready - w.t_spawn, 3)
        cpu, _ = w.sampler.cpu_between(w.t_spawn, t_ready)
        out["startup_cpu_s"] = round(cpu, 3)
        time.sleep(3)
        cpu, span = w.sampler.cpu_between(t_ready + 0.2, t_ready + 3)
        out["idle_cores"] = round(max(cpu, 0) / max(span, 1e-6), 4)
        out["idle_rss"] = w.sampler.samples[-1][2]
        out["threads"] = w.compute_threads() or (int(env.get("WHISPER_THREADS", 0)) or
                                                  max(1, figs.cpus() // int(settings["WORKER_CONCURRENCY"])))
        log(f"{worker}: ready in {out['ready_s']:.2f} s, idle RSS {out['idle_rss'] / 2**20:.0f} MiB, "
            f"{out['threads']} compute threads")
        connection = pika.BlockingConnection(pika.URLParameters(env["CELERY_BROKER_URL"]))
        channel = connection.channel()
        channel.confirm_delivery()

        def publish(name, kind):
            path = FIXTURES / name
            fixture = json.loads(path.read_text())
            text = article if kind == "long-article" else None
            url = media[kind][0] if worker == "whisper-worker" else None
            exchange, _, properties, body = publisher.fixture_message(fresh_message(fixture, text, url))
            channel.basic_publish(exchange=exchange, routing_key=queues[0], body=body, properties=properties,
                                  mandatory=True)

        def wait_done(target, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                ok, bad = w.tasks()
                if bad:
                    raise RuntimeError(f"{worker}: {bad:g} task(s) failed:\n{w.tail()}")
                if ok >= target:
                    return time.monotonic()
                time.sleep(0.05)
            raise RuntimeError(f"{worker}: {target} tasks not done within {timeout}s:\n{w.tail()}")

        def run(kind, names, count):
            """Publishes `count` messages at once; the figures of that run."""
            done0 = w.tasks()[0]
            sums0 = w.histogram_sums()
            t0 = time.monotonic()
            for i in range(count):
                publish(names[i % len(names)], kind)
            t1 = wait_done(done0 + count, 1800)
            time.sleep(3 if count > 1 else 1)
            cpu, runq, _ = w.sampler.between(t0, t1)
            sums1 = w.histogram_sums()
            task_s = sums1["ml_task_duration_seconds"][0] - sums0["ml_task_duration_seconds"][0]
            model_s = sums1["ml_model_latency_seconds"][0] - sums0["ml_model_latency_seconds"][0]
            wall = t1 - t0
            window = w.sampler.window(t0, t1)
            return {
                "count": count, "wall_s": round(wall, 3), "per_task_s": round(wall / count, 4),
                "cpu_s": round(cpu, 3), "cpu_s_per_task": round(cpu / count, 5),
                "busy_cores": round(cpu / wall, 3),
                "runqueue_s": round(runq, 3), "runqueue_s_per_task": round(runq / count, 5),
                "task_s_per_task": round(task_s / count, 5), "model_s_per_task": round(model_s / count, 5),
                "peak_rss": max(s[2] for s in window) if window else out["idle_rss"],
                "settled_rss": w.sampler.samples[-1][2],
            }

        out["tasks"] = {}
        serial = int(settings["WORKER_CONCURRENCY"]) == 1
        for index, (kind, names, count) in enumerate(conf["kinds"]):
            if index == 0:
                run(kind, names[:1], 1)  # warm-up, not counted
            if serial:
                # One task at a time (as the worker runs them anyway): each its
                # own sample, and the least disturbed one (fewest CPU-seconds:
                # a busy host makes the compute threads spin and wait) stands
                # for the kind; the others are kept for the record.
                runs = [run(kind, names[i % len(names):][:1], 1) for i in range(count)]
                best = min(runs, key=lambda r: r["cpu_s_per_task"])
                task = {**best, "count": count, "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "runqueue_s")}
                                                         for r in runs],
                        "peak_rss": max(r["peak_rss"] for r in runs), "chosen": "least CPU-seconds of the runs"}
            else:
                task = {**run(kind, names, count), "chosen": "one run of all the messages at once"}
            task["fixtures"] = names
            if worker == "whisper-worker":
                task["audio_s"] = round(media[kind][1], 2)
            if kind == "long-article":
                task["input_words"] = len(article.split())
            out["tasks"][kind] = task
            spread = ""
            if serial and count > 1:
                walls = sorted(r["wall_s"] for r in task["runs"])
                spread = f" (runs {walls[0]:.2f}-{walls[-1]:.2f} s)"
            log(f"{worker}/{kind}: {count} tasks, {task['per_task_s']:.3f} s each{spread}, "
                f"{task['busy_cores']:.2f} cores busy, {task['cpu_s_per_task']:.3f} CPU-s per task, "
                f"{task['runqueue_s_per_task']:.3f} s per task waiting for a CPU, "
                f"{task['model_s_per_task']:.3f} of {task['task_s_per_task']:.3f} s in model calls, "
                f"peak RSS {task['peak_rss'] / 2**20:.0f} MiB")
    finally:
        w.stop()
        out["loadavg_after"] = list(os.getloadavg())
        if connection and connection.is_open:
            connection.close()
        delete_queues(queues, pika, env["CELERY_BROKER_URL"])
    return out


def delete_queues(queues: list[str], pika, url: str):
    """Deletes the test queues and their dead-letter queues (best effort:
    scripts/test also sweeps `.test-<hex>` queues)."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        for q in queues:
            for name in (q, f"{q}.dead"):
                channel.queue_delete(name)
        connection.close()
    except Exception as e:  # noqa: BLE001
        log(f"(could not delete the test queues: {e})")


def build(root: Path, target_dir: Path):
    cmd = ["nice", "-n", "10", "cargo", "build", "--release",
           "-p", "vector-worker", "-p", "llm-worker", "-p", "whisper-worker"]
    log(f"building: {' '.join(cmd)} (CARGO_TARGET_DIR={target_dir})")
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=root, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(target_dir)})
    log(f"built in {time.monotonic() - t0:.0f} s")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def measure(root: Path, target_dir: Path, models_dir: Path, skip_build=False) -> dict:
    import pika
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C: the worker is
    # stopped and its test queues deleted on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    if not skip_build:
        build(root, target_dir)
    before = list(os.getloadavg())
    env_base = {
        **os.environ,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ml_workers_test"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MODELS_DIR": str(models_dir),
    }
    for name in ("CELERY_RESULT_BACKEND", "RAYON_NUM_THREADS", "CANDLE_NUM_THREADS", "WHISPER_THREADS"):
        env_base.pop(name, None)
    publisher = fixture_publisher(root)
    article = _long_article(root)
    workers = {}
    with tempfile.TemporaryDirectory(prefix="scaling-media-") as tmp:
        media = speech_media(models_dir, Path(tmp))
        for worker in WORKERS:
            binary = target_dir / "release" / worker
            if not binary.exists():
                raise RuntimeError(f"{binary} is missing: build it (cargo build --release -p {worker})")
            workers[worker] = measure_worker(root, binary, worker, env_base, publisher, pika, media, article,
                                             models_dir)
    return {
        "schema": figs.SCHEMA,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {"cpu_model": figs.cpu_model(), "cpus": figs.cpus(), "loadavg_before": before,
                 "loadavg_after": list(os.getloadavg()), "python": sys.version.split()[0]},
        "sources": figs.sources(root),
        "key": figs.key(root),
        "method": "release binaries, real messages against local RabbitMQ/PostgreSQL/Redis; "
                  "CPU from /proc/<pid>/stat, RSS from /proc/<pid>/status (tests/scaling/measure.py)",
        "workers": workers,
    }
