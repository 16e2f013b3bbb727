"""A simulated cluster: RabbitMQ queues, worker pods, metrics-server,
Prometheus, KEDA and the HPA, stepped one second at a time.

What each part does, and what it assumes (printed with every run by
`assumptions()`):

- Pods: the ReplicaSet creates a pod as soon as the HPA raises
  spec.replicas; it is scheduled and its image present after
  SCHEDULE_S, then its init container copies the models (measured: the
  copy of the worker's model folder), then the worker starts and takes
  `ready_s` (measured: process start to /readyz 200) before it consumes.
  Kubernetes marks it Ready at the first startup-probe period after that.
- Work: a worker holds up to `prefetch` unacked deliveries (RabbitMQ pushes
  them round-robin to consumers with credit) and runs `concurrency` at once.
  A task needs the CPU-seconds measured per task; a pod's compute threads
  (from the manifest) each stay as busy as the measured worker's threads
  were, capped at the CPU limit, so a task takes
  concurrency * cpu_s_per_task / pod_busy_cores.
- Scale-in: the ReplicaSet deletes not-ready pods first, then the most
  recently ready (controller.ActivePodsWithRanks). A deleted pod leaves the
  Service endpoints at once, stops consuming and returns the deliveries it
  has not started, finishes its in-flight tasks (at most
  WORKER_SHUTDOWN_TIMEOUT) and exits.
- Metrics: RabbitMQ's management API refreshes queue counts every 5 s
  (collect_statistics_interval); metrics-server scrapes every 15 s and
  reports CPU as the average of the last 15 s and memory as the current
  RSS; Prometheus scrapes Ready pods at the ServiceMonitor's interval; the
  HPA syncs every 15 s and KEDA's metrics server reads its scalers on each
  sync (no metric caching).
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

import hpa
import promql
from manifests import WorkerSpec

SCHEDULE_S = 2.0  # scheduling + container creation, image already on the node (assumed)
METRICS_SERVER_PERIOD_S = 15  # metrics-server --metric-resolution
RABBITMQ_STATS_PERIOD_S = 5  # rabbit collect_statistics_interval
# Phases of the periodic loops within their periods (deterministic, so two
# runs give the same timeline): the load starts at t = 0.
HPA_PHASE_S = 7
METRICS_SERVER_PHASE_S = 0
PROMETHEUS_PHASE_S = 3
WARMUP_S = 400
# What the simulated pods export on /metrics (the names KEDA queries may use;
# tests/deploy/metrics.test.js checks the real workers export every queried name).
EXPORTED = ("celery_worker_busy", "ml_active_tasks", "celery_task_received_total", "celery_task_succeeded_total",
            "ml_tasks_total")  # the fleet runs idle at min replicas before t = 0 (> 5 min CPU initialization)


def assumptions() -> list[str]:
    return [
        f"pods: {SCHEDULE_S:g} s to schedule and create the container (image cached), then the init container "
        "(measured model copy), then the worker's measured start-up; Ready at the next startup-probe period",
        "throughput: a task's model calls compute its measured CPU-seconds on its share (threads / concurrency) of "
        "the pod's compute threads, capped at the CPU limit; the rest of its measured time (decode, database, "
        "Redis, broker) stays as measured; memory as measured, whatever the threads",
        f"metrics: RabbitMQ stats every {RABBITMQ_STATS_PERIOD_S} s, metrics-server every {METRICS_SERVER_PERIOD_S} s "
        f"(CPU averaged over that window), Prometheus at the ServiceMonitor interval, HPA sync every "
        f"{hpa.SYNC_PERIOD_S} s (tolerance {hpa.TOLERANCE}); the load starts at t=0, HPA syncs at t={HPA_PHASE_S}+15k",
        "not simulated: KEDA fallback (no scaler errors here), node capacity (every pod schedules), "
        "retries and failures (every task succeeds)",
    ]


@dataclass(frozen=True)
class TaskProfile:
    """A measured task kind as it runs in pods of one spec."""

    kind: str
    duration_s: float  # one task, at the pod's concurrency
    busy_cores: float  # the pod's CPU while all its slots are busy
    rss_delta: float  # extra RSS while all slots are busy (bytes)
    settled_rss: float  # the pod's RSS once idle again after such a task


@dataclass(frozen=True)
class PodModel:
    init_s: float
    ready_s: float  # worker start to consuming (/readyz)
    startup_cores: float
    idle_cores: float
    idle_rss: float
    cpu_limit: float | None
    profiles: dict


def pod_model(spec: WorkerSpec, figures: dict) -> PodModel:
    """Turns one worker's measured figures into how its pods behave under `spec`.

    A task's time splits into model calls, which compute on the task's share
    of the worker's compute threads (threads / concurrency: candle and
    whisper.cpp spread one call over all of them, the embedder runs one pass
    per thread), and the rest (decoding, database, Redis, broker), which does
    not get faster with more threads. Measured per task: the worker's own
    task and model-call seconds (ml_task_duration_seconds,
    ml_model_latency_seconds) and the process's CPU-seconds c. So

        rest  = slot latency * (1 - model seconds / task seconds)
        L_pod = rest + c / (min(threads, cpu limit) / concurrency)

    where slot latency = concurrency * wall / N, and a busy slot uses
    c / L_pod cores.
    """
    measured_concurrency = int(figures["settings"]["WORKER_CONCURRENCY"])
    limit = spec.resources.cpu_limit
    cores = min(spec.threads, limit) if limit else spec.threads
    share = cores / spec.concurrency

    profiles = {}
    for kind, task in figures["tasks"].items():
        cpu = task["cpu_s_per_task"]
        latency = measured_concurrency * task["per_task_s"]
        in_model = min(1.0, task["model_s_per_task"] / task["task_s_per_task"]) if task["task_s_per_task"] else 1.0
        duration = latency * (1.0 - in_model) + cpu / share
        busy = spec.concurrency * cpu / duration
        profiles[kind] = TaskProfile(kind, duration, busy, max(0.0, task["peak_rss"] - figures["idle_rss"]),
                                     max(figures["idle_rss"], task["settled_rss"]))
    startup = figures["startup_cpu_s"] / max(figures["ready_s"], 1e-6)
    startup = min(startup, limit) if limit else startup
    return PodModel(
        init_s=figures.get("model_copy_s", 0.0), ready_s=figures["ready_s"], startup_cores=startup,
        idle_cores=min(figures["idle_cores"], startup), idle_rss=figures["idle_rss"],
        cpu_limit=limit, profiles=profiles,
    )


@dataclass
class Message:
    queue: str
    kind: str
    enqueued: float


@dataclass
class Slot:
    message: Message
    remaining: float


@dataclass
class Pod:
    name: str
    created: float
    start_at: float  # container started (status.startTime)
    consume_at: float  # worker ready, consuming
    ready_at: float  # Kubernetes Ready
    deleting_at: float | None = None
    gone: bool = False
    held: deque = field(default_factory=deque)
    running: list = field(default_factory=list)
    served: int = 0
    settled: float = 0.0  # RSS when idle: grows with what the pod has served
    received: dict = field(default_factory=dict)
    succeeded: dict = field(default_factory=dict)
    cpu_window: deque = field(default_factory=lambda: deque(maxlen=METRICS_SERVER_PERIOD_S))
    rss: float = 0.0
    metric: dict = field(default_factory=dict)  # resource -> (value, timestamp)

    def consuming(self, now):
        return now >= self.consume_at and self.deleting_at is None

    def k8s_ready(self, now):
        return now >= self.ready_at and self.deleting_at is None

    def in_flight(self):
        return sum(1 for s in self.running if s is not None)

    def unacked(self):
        return len(self.held) + self.in_flight()

    def messages(self):
        return list(self.held) + [s.message for s in self.running if s is not None]


@dataclass
class Sync:
    """One HPA sync: what each trigger read and asked for, and the outcome."""

    t: float
    current: int
    readings: dict  # trigger name -> (reading text, proposal or None)
    desired: int
    reason: str


@dataclass
class Scenario:
    name: str
    worker: str
    title: str
    arrivals: list  # [(t, count, queue or None for the first, kind)]
    horizon_s: int
    # What-if: while a pod runs tasks its RSS is this fraction of the memory
    # request (None: measured RSS).
    busy_rss_fraction: float | None = None
    # Closed loop: (count, queue, kind): one task at a time, the next one
    # published in the second after the previous one is done.
    sequential: tuple | None = None
    checks: list = field(default_factory=list)
    note: str = ""


@dataclass
class Result:
    scenario: Scenario
    spec: WorkerSpec
    model: PodModel
    t: list
    replicas: list
    ready: list
    messages: list
    syncs: list
    drained_at: float | None
    total: int
    done: int
    peak_rss: float = 0.0  # highest RSS of any pod

    def at(self, series, t):
        i = self.t.index(t) if t in self.t else None
        return None if i is None else series[i]

    def peak(self):
        """(peak spec.replicas after t = 0, first time reached)."""
        best, when = -1, None
        for t, r in zip(self.t, self.replicas):
            if t >= 0 and r > best:
                best, when = r, t
        return best, when

    def first_decrease_after(self, t0):
        previous = None
        for t, r in zip(self.t, self.replicas):
            if t >= t0 and previous is not None and r < previous:
                return t
            previous = r
        return None

    def first_time(self, predicate, after=0):
        for t, r in zip(self.t, self.replicas):
            if t >= after and predicate(r):
                return t
        return None


class Cluster:
    """One worker's Deployment, its queues and its autoscaling, simulated."""

    def __init__(self, spec: WorkerSpec, model: PodModel, scenario: Scenario):
        self.spec = spec
        self.model = model
        self.scenario = scenario
        self.queues = {q: deque() for q in spec.queues}
        for q in spec.queues:
            self.queues[f"{q}.dead"] = deque()
        self.pods: list[Pod] = []
        self.counter = 0
        self.replicas = 0
        self.stats = {q: (0, 0) for q in self.queues}  # management API view: (ready, unacked)
        self.tsdb = promql.Tsdb(EXPORTED)
        self.scraped: set[str] = set()
        self.autoscaler = hpa.Autoscaler(spec.hpa_min_replicas, spec.max_replicas, spec.scale_up, spec.scale_down)
        self.syncs: list[Sync] = []
        self.rr = 0
        self.keda_last_active = None
        self.done = 0
        self.last_done = None
        self.peak_rss = 0.0
        self.published = 0  # sequential scenarios
        for t in spec.triggers:
            if t.type == "prometheus":
                promql.parse(t.query)  # refuse what cannot be evaluated before running

    # --- pods ----------------------------------------------------------------

    def _new_pod(self, now):
        self.counter += 1
        start = now + SCHEDULE_S + self.model.init_s
        consume = start + self.model.ready_s
        period = self.spec.startup_probe_period_s
        ready = start + math.ceil(self.model.ready_s / period) * period
        pod = Pod(f"{self.spec.worker}-{self.counter}", now, start, consume, ready)
        pod.rss = self.model.idle_rss
        pod.settled = self.model.idle_rss
        self.pods.append(pod)

    def _scale_to(self, now, n):
        self.replicas = n
        live = [p for p in self.pods if p.deleting_at is None]
        for _ in range(n - len(live)):
            self._new_pod(now)
        if len(live) > n:
            # ActivePodsWithRanks: pending < running, not ready < ready, more
            # recently ready first, newer first.
            def rank(p):
                return (now >= p.start_at, p.k8s_ready(now), -p.ready_at if p.k8s_ready(now) else 0, -p.created)
            for pod in sorted(live, key=rank)[: len(live) - n]:
                pod.deleting_at = now
                # SIGTERM: consumers cancelled, tasks not yet started go
                # back to the queue (README "Operations", Shutdown).
                for m in reversed(pod.held):
                    self.queues[m.queue].appendleft(m)
                pod.held.clear()

    # --- the second from now to now + 1 ----------------------------------------

    def step(self, now):
        for t, count, queue, kind in self.scenario.arrivals:
            if t == now:
                q = queue or self.spec.queues[0]
                self.queues[q].extend(Message(q, kind, now) for _ in range(count))
        sequential = self.scenario.sequential
        if sequential and now >= 0 and self.published < sequential[0] and self.done >= self.published:
            q = sequential[1] or self.spec.queues[0]
            self.queues[q].append(Message(q, sequential[2], now))
            self.published += 1
        self._deliver(now)
        for pod in self.pods:
            if not pod.gone:
                self._work(pod, now)
        self._finish_terminating(now)

    def _take(self, pod, now):
        """One delivery for `pod` from its queues (round-robin over queues)."""
        for q in self.spec.queues:
            if self.queues[q]:
                m = self.queues[q].popleft()
                pod.held.append(m)
                pod.received[q] = pod.received.get(q, 0) + 1
                return True
        return False

    def _deliver(self, now):
        consumers = [p for p in self.pods if not p.gone and p.consuming(now)]
        if not consumers:
            return
        self.rr = (self.rr + 1) % len(consumers)
        order = consumers[self.rr:] + consumers[: self.rr]
        progress = True
        while progress:
            progress = False
            for pod in order:
                if pod.unacked() < self.spec.prefetch and self._take(pod, now):
                    progress = True

    def _work(self, pod, now):
        model, spec = self.model, self.spec
        if now < pod.start_at:
            pod.cpu_window.append(0.0)
            return
        if now < pod.consume_at:
            pod.cpu_window.append(model.startup_cores)
            pod.rss = model.idle_rss
            return
        if len(pod.running) < spec.concurrency:
            pod.running.extend([None] * (spec.concurrency - len(pod.running)))
        busy_core_s = 0.0
        rss_extra = 0.0
        # Each slot gets this second; fast tasks follow each other within it,
        # refilled from the prefetched deliveries and then from the queue.
        for i in range(spec.concurrency):
            budget = 1.0
            while True:
                # A free slot starts the next delivery at once (also when
                # the last one ended exactly at the end of this second).
                if pod.running[i] is None:
                    if pod.deleting_at is not None:
                        break
                    if not pod.held and not (pod.unacked() < spec.prefetch and self._take(pod, now)):
                        break
                    m = pod.held.popleft()
                    pod.running[i] = Slot(m, model.profiles[m.kind].duration_s)
                if budget <= 1e-9:
                    break
                slot = pod.running[i]
                profile = model.profiles[slot.message.kind]
                used = min(budget, slot.remaining)
                slot.remaining -= used
                budget -= used
                busy_core_s += used * (profile.busy_cores - model.idle_cores) / spec.concurrency
                rss_extra = max(rss_extra, profile.rss_delta)
                if slot.remaining <= 1e-9:
                    pod.running[i] = None
                    pod.served += 1
                    pod.settled = max(pod.settled, profile.settled_rss)
                    q = slot.message.queue
                    pod.succeeded[q] = pod.succeeded.get(q, 0) + 1
                    self.done += 1
                    self.last_done = now + (1.0 - budget)
        cores = model.idle_cores + busy_core_s
        if model.cpu_limit:
            cores = min(cores, model.cpu_limit)
        pod.cpu_window.append(cores)
        # Busy: the measured peak (idle + delta, per busy slot); idle again:
        # what the pod kept after its tasks (allocator arenas, model state).
        n = pod.in_flight()
        pod.rss = max(pod.settled, model.idle_rss + rss_extra * n / spec.concurrency)
        fraction = self.scenario.busy_rss_fraction
        if fraction is not None and n and spec.resources.memory_request:
            pod.rss = max(pod.rss, fraction * spec.resources.memory_request)
        self.peak_rss = max(self.peak_rss, pod.rss)

    def _finish_terminating(self, now):
        for pod in self.pods:
            if pod.gone or pod.deleting_at is None:
                continue
            overdue = now + 1 - pod.deleting_at >= self.spec.shutdown_timeout_s
            if pod.in_flight() and not overdue:
                continue
            for slot in pod.running:
                if slot is not None:
                    self.queues[slot.message.queue].appendleft(slot.message)
            for m in reversed(pod.held):
                self.queues[m.queue].appendleft(m)
            pod.running.clear()
            pod.held.clear()
            pod.gone = True

    # --- observers ----------------------------------------------------------------

    def _observe(self, now):
        if now % RABBITMQ_STATS_PERIOD_S == 0:
            unacked = {q: 0 for q in self.queues}
            for pod in self.pods:
                if pod.gone:
                    continue
                for m in pod.messages():
                    unacked[m.queue] += 1
            self.stats = {q: (len(self.queues[q]), unacked[q]) for q in self.queues}
        if (now - METRICS_SERVER_PHASE_S) % METRICS_SERVER_PERIOD_S == 0:
            for pod in self.pods:
                if pod.gone or now < pod.start_at + METRICS_SERVER_PERIOD_S:
                    continue
                window = list(pod.cpu_window)
                pod.metric["cpu"] = (int(1000 * sum(window) / len(window)), now)
                pod.metric["memory"] = (int(pod.rss), now)
        interval = self.spec.scrape_interval_s
        if interval and (now - PROMETHEUS_PHASE_S) % interval == 0:
            targets = {p.name: p for p in self.pods if not p.gone and p.k8s_ready(now)}
            for name in self.scraped - set(targets):
                self.tsdb.mark_stale(now, lambda labels, n=name: labels.get("pod") == n)
            self.scraped = set(targets)
            for pod in targets.values():
                labels = {"namespace": self.spec.namespace, "job": self.spec.scrape_job, "pod": pod.name,
                          "instance": pod.name, "service": self.spec.scrape_job}
                busy = pod.in_flight() / self.spec.concurrency
                self.tsdb.add(now, "celery_worker_busy", labels, busy)
                self.tsdb.add(now, "ml_active_tasks", labels, pod.in_flight())
                for q in self.spec.queues:
                    ql = {**labels, "queue": q}
                    self.tsdb.add(now, "celery_task_received_total", ql, pod.received.get(q, 0))
                    self.tsdb.add(now, "celery_task_succeeded_total", ql, pod.succeeded.get(q, 0))
                self.tsdb.add(now, "ml_tasks_total", {**labels, "status": "success"}, sum(pod.succeeded.values()))

    # --- KEDA and the HPA -----------------------------------------------------------

    def _queue_reading(self, trigger):
        matched = [q for q in self.queues
                   if (re.search(trigger.queue_pattern, q) if trigger.use_regex else q == trigger.queue_pattern)]
        values = [self.stats[q][0] + (0 if trigger.exclude_unacked else self.stats[q][1]) for q in matched]
        if not values:
            return 0.0, f"no queue matches {trigger.queue_pattern!r}"
        op = {"sum": sum, "max": max, "avg": lambda v: sum(v) / len(v)}[trigger.operation]
        return float(op(values)), None

    def _external(self, trigger, value, status, ready):
        usage = int(value * 1000)
        target = int(trigger.target * 1000)
        if trigger.metric_type == "Value":
            return hpa.external_value_replicas(self.replicas, target, usage, ready)
        return hpa.external_average_value_replicas(status, target, usage)

    def _pod_views(self, resource, now):
        request = (self.spec.resources.cpu_request * 1000 if resource == "cpu"
                   else self.spec.resources.memory_request) or 0
        views = []
        for pod in self.pods:
            if pod.gone:
                continue
            started = now >= pod.start_at
            metric = pod.metric.get(resource)
            ready = pod.k8s_ready(now)
            views.append(hpa.PodView(
                name=pod.name, pending=not started, deleting=pod.deleting_at is not None, ready=ready,
                start_time=pod.start_at if started else None,
                ready_transition=(pod.ready_at if now >= pod.ready_at else pod.start_at) if started else None,
                request=int(request), metric=metric[0] if metric else None,
                metric_timestamp=metric[1] if metric else 0.0, metric_window=METRICS_SERVER_PERIOD_S,
            ))
        return views

    def _sync(self, now):
        status = sum(1 for p in self.pods if not p.gone and p.deleting_at is None)
        ready = sum(1 for p in self.pods if not p.gone and p.k8s_ready(now))
        readings, proposals, invalid = {}, [], 0
        for trigger in self.spec.triggers:
            try:
                if trigger.type == "rabbitmq":
                    value, problem = self._queue_reading(trigger)
                    proposal = self._external(trigger, value, status, ready)
                    readings[trigger.name] = (f"{value:g} msgs" + (f" ({problem})" if problem else ""), proposal)
                elif trigger.type == "prometheus":
                    value = self.tsdb.query(trigger.query, now) if self.spec.scrape_interval_s else None
                    if value is None:
                        if not trigger.ignore_null:
                            raise ValueError("empty prometheus result")
                        value = 0.0
                    proposal = self._external(trigger, value, status, ready)
                    readings[trigger.name] = (f"{value:.3g}", proposal)
                else:
                    views = self._pod_views(trigger.type, now)
                    if trigger.metric_type == "Utilization":
                        proposal, utilization = hpa.resource_utilization_replicas(
                            self.replicas, int(trigger.target), views, trigger.type == "cpu", now)
                        readings[trigger.name] = (f"{utilization}%", proposal)
                    else:
                        target = int(trigger.target * 1000) if trigger.type == "cpu" else int(trigger.target)
                        proposal, average = hpa.plain_metric_replicas(
                            self.replicas, target, views, trigger.type == "cpu", now)
                        shown = f"{average}m" if trigger.type == "cpu" else f"{average / 2**20:.0f}Mi"
                        readings[trigger.name] = (shown, proposal)
                proposals.append(proposal)
            except (ValueError, ZeroDivisionError) as e:
                invalid += 1
                readings[trigger.name] = (f"invalid: {e}", None)
        current = self.replicas
        if invalid and (invalid == len(self.spec.triggers) or max(proposals) < current):
            desired, reason = current, "metrics invalid: no scaling (computeReplicasForMetrics)"
        else:
            desired, reason = self.autoscaler.reconcile(now, current, proposals)
        self.syncs.append(Sync(now, current, readings, desired, reason))
        if desired != current:
            self._scale_to(now, desired)

    def _keda(self, now):
        """KEDA's own loop: only activation (0 <-> 1, or the idle count)
        is KEDA's; with minReplicaCount >= 1 and no idleReplicaCount it
        never acts (the HPA owns every other change)."""
        spec = self.spec
        if spec.min_replicas > 0 and spec.idle_replicas is None:
            return
        if now % spec.polling_interval_s:
            return
        active = False
        for trigger in spec.triggers:
            if trigger.type == "rabbitmq":
                active |= self._queue_reading(trigger)[0] > trigger.activation
            elif trigger.type == "prometheus":
                active |= (self.tsdb.query(trigger.query, now) or 0.0) > trigger.activation
            # cpu/memory scalers take no part in activation.
        idle = spec.idle_replicas if spec.idle_replicas is not None else 0
        if active:
            self.keda_last_active = now
            if self.replicas <= idle:
                self._scale_to(now, max(1, spec.min_replicas))
        elif self.replicas > idle and (self.keda_last_active is None or
                                       now - self.keda_last_active >= spec.cooldown_s):
            self._scale_to(now, idle)

    # --- running ----------------------------------------------------------------

    def run(self) -> Result:
        spec, scenario = self.spec, self.scenario
        start = -WARMUP_S
        for _ in range(spec.hpa_min_replicas if spec.min_replicas > 0 else 0):
            self._new_pod(start - SCHEDULE_S - self.model.init_s - self.model.ready_s - 30)
        self.replicas = len(self.pods)
        total = sum(count for _, count, _, _ in scenario.arrivals) + (scenario.sequential or (0,))[0]
        ts, reps, readys, msgs = [], [], [], []
        drained_at = None
        last_arrival = max((t for t, _, _, _ in scenario.arrivals), default=0)
        for now in range(start, scenario.horizon_s + 1):
            self._observe(now)
            if (now - HPA_PHASE_S) % hpa.SYNC_PERIOD_S == 0:
                self._sync(now)
            self._keda(now)
            self.step(now)
            waiting = sum(len(q) for q in self.queues.values()) + sum(p.unacked() for p in self.pods if not p.gone)
            if drained_at is None and now >= last_arrival and self.done >= total and waiting == 0:
                drained_at = self.last_done
            if now >= -60:
                ts.append(now)
                reps.append(self.replicas)
                readys.append(sum(1 for p in self.pods if not p.gone and p.k8s_ready(now)))
                msgs.append(waiting)
            if drained_at is not None and self.replicas == spec.hpa_min_replicas and \
                    now >= drained_at + spec.scale_down.stabilization_s + 120 and \
                    all(p.gone or p.deleting_at is None for p in self.pods):
                break
        return Result(scenario, spec, self.model, ts, reps, readys, msgs, self.syncs, drained_at, total, self.done,
                      self.peak_rss)
