"""What the rendered manifests say about scaling, one `WorkerSpec` per worker.

Reads the output of `kubectl kustomize <overlay>` (never the source YAML, so
overlay patches and components count): each ScaledObject, the Deployment it
targets, and the ConfigMaps that Deployment's container reads. Everything the
simulation needs comes from here; nothing about the manifests is assumed.

KEDA 2.13 semantics restated here (sources named per item):
- `minReplicaCount` defaults to 0, `maxReplicaCount` to 100, `pollingInterval`
  to 30 s, `cooldownPeriod` to 300 s (keda apis/keda/v1alpha1/scaledobject_types.go).
- Triggers' `metricType` defaults to AverageValue for external scalers;
  cpu/memory triggers carry their own (pkg/scalers/cpu_memory_scaler.go).
- The HPA KEDA creates gets `minReplicas = max(1, minReplicaCount)` and
  `maxReplicas = maxReplicaCount` (controllers/keda/hpa.go, getHPAMinReplicas).
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# The workers of this repository and what their binaries default to when the
# environment leaves a setting unset (README.md "Configuration").
WORKER_DEFAULTS = {
    "llm-worker": {"WORKER_CONCURRENCY": 2, "candle": True},
    "whisper-worker": {"WORKER_CONCURRENCY": 1, "candle": False},
    "vector-worker": {"WORKER_CONCURRENCY": 8, "candle": True},
}
DEFAULT_PREFETCH_MULTIPLIER = 4
DEFAULT_SHUTDOWN_TIMEOUT = 25


class ManifestError(Exception):
    """The rendered manifests lack something the rehearsal needs, or hold
    something it cannot simulate."""


@dataclass(frozen=True)
class Policy:
    """One HPA scaling policy: `type` Pods or Percent, per `period_s`."""

    type: str
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    """HPAScalingRules: stabilization window, select policy, policies."""

    stabilization_s: int
    select: str
    policies: tuple[Policy, ...]


# Defaults the API server fills into an HPA's behavior (Kubernetes
# pkg/apis/autoscaling/v2/defaults.go, GenerateHPAScaleUpRules /
# GenerateHPAScaleDownRules): scale-up 100 % or 4 pods per 15 s (Max), no
# stabilization; scale-down 100 % per 15 s after a 300 s window.
DEFAULT_SCALE_UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
DEFAULT_SCALE_DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


@dataclass(frozen=True)
class Trigger:
    """One ScaledObject trigger, with the metadata the simulation reads."""

    type: str  # rabbitmq | cpu | memory | prometheus
    name: str
    metric_type: str  # AverageValue | Value | Utilization
    target: float  # messages / query units per replica, or percent, or bytes/cores
    activation: float
    # rabbitmq
    queue_pattern: str = ""
    use_regex: bool = False
    operation: str = "sum"
    mode: str = "QueueLength"
    exclude_unacked: bool = False
    # prometheus
    query: str = ""
    ignore_null: bool = True

    def describe(self) -> str:
        if self.type == "rabbitmq":
            counted = "ready" if self.exclude_unacked else "ready + unacked"
            return (f"{self.name}: rabbitmq {self.mode} {self.queue_pattern!r} ({counted}, {self.operation}), "
                    f"{self.metric_type} {self.target:g}/replica")
        if self.type in ("cpu", "memory"):
            unit = "% of request" if self.metric_type == "Utilization" else ""
            return f"{self.name}: {self.type} {self.metric_type} {self.target:g}{unit}"
        return f"{self.name}: prometheus {self.query!r} {self.metric_type} {self.target:g}/replica"


@dataclass(frozen=True)
class Resources:
    """The worker container's requests and limits (cores, bytes; None = unset)."""

    cpu_request: float | None
    cpu_limit: float | None
    memory_request: int | None
    memory_limit: int | None


@dataclass(frozen=True)
class WorkerSpec:
    """One worker's scaling, as rendered for one overlay."""

    overlay: str
    worker: str
    namespace: str
    queues: tuple[str, ...]
    min_replicas: int
    max_replicas: int
    idle_replicas: int | None
    polling_interval_s: int
    cooldown_s: int
    scale_up: Rules
    scale_down: Rules
    triggers: tuple[Trigger, ...]
    resources: Resources
    threads: int
    threads_source: str
    concurrency: int
    prefetch: int
    shutdown_timeout_s: int
    termination_grace_s: int
    startup_probe_period_s: int
    readiness_probe_period_s: int
    # How Prometheus sees the pods: the job label (the Service's name) and
    # the ServiceMonitor's interval; None when no ServiceMonitor selects a
    # Service of these pods (prometheus triggers then read nothing).
    scrape_job: str | None
    scrape_interval_s: int | None
    scrape_source: str
    env: dict = field(hash=False, compare=False)

    @property
    def hpa_min_replicas(self) -> int:
        return max(1, self.min_replicas)


# --- quantities ---------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_quantity(value) -> float:
    """A Kubernetes quantity ("500m", "2", "1Gi", "512Mi", 1.5) as a number."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = re.fullmatch(r"([0-9.]+(?:[eE][-+]?[0-9]+)?)([A-Za-z]*)", text)
    if not match:
        raise ManifestError(f"not a quantity: {value!r}")
    number, suffix = float(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix == "m":
        return number / 1000
    if suffix == "":
        return number
    raise ManifestError(f"unknown quantity suffix in {value!r}")


def _bool(value, default: bool) -> bool:
    if value is None:
        return default
    # KEDA reads these with Go's strconv.ParseBool.
    return str(value).strip().lower() in ("1", "t", "true")


# --- rendering ----------------------------------------------------------------


def render(k8s_dir: Path, overlay: str) -> list[dict]:
    """`kubectl kustomize` of `k8s_dir/overlay` ("base" or "overlays/<name>")."""
    path = k8s_dir / overlay
    try:
        out = subprocess.run(["kubectl", "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError as e:
        raise ManifestError("kubectl not found (scripts/setup warns about it; it renders the manifests)") from e
    except subprocess.CalledProcessError as e:
        raise ManifestError(f"kubectl kustomize {path} failed:\n{e.stderr}") from e
    return [doc for doc in yaml.safe_load_all(out) if doc]


def overlay_path(name: str) -> str:
    return "base" if name == "base" else f"overlays/{name}"


# --- reading ------------------------------------------------------------------


def _rules(raw: dict | None, default: Rules, where: str) -> Rules:
    """HPAScalingRules with the API server's defaulting for missing fields."""
    if raw is None:
        return default
    policies = raw.get("policies")
    if policies is None:
        parsed = default.policies
    else:
        parsed = []
        for p in policies:
            if p.get("type") not in ("Pods", "Percent"):
                raise ManifestError(f"{where}: policy type {p.get('type')!r} (Pods or Percent)")
            parsed.append(Policy(p["type"], int(p["value"]), int(p["periodSeconds"])))
        parsed = tuple(parsed)
    select = raw.get("selectPolicy", "Max")
    if select not in ("Max", "Min", "Disabled"):
        raise ManifestError(f"{where}: selectPolicy {select!r}")
    window = raw.get("stabilizationWindowSeconds", default.stabilization_s)
    return Rules(int(window), select, parsed)


def _trigger(raw: dict, where: str) -> Trigger:
    kind = raw.get("type")
    meta = raw.get("metadata") or {}
    name = raw.get("name") or kind
    metric_type = raw.get("metricType")
    if kind == "rabbitmq":
        mode = meta.get("mode", "QueueLength")
        if mode != "QueueLength":
            raise ManifestError(f"{where}: rabbitmq mode {mode!r}: the rehearsal simulates QueueLength only")
        if "value" not in meta:
            raise ManifestError(f"{where}: rabbitmq trigger without metadata.value")
        return Trigger(
            type="rabbitmq", name=name, metric_type=metric_type or "AverageValue",
            target=float(meta["value"]), activation=float(meta.get("activationValue", 0)),
            queue_pattern=meta.get("queueName", ""), use_regex=_bool(meta.get("useRegex"), False),
            operation=meta.get("operation", "sum"), mode=mode,
            exclude_unacked=_bool(meta.get("excludeUnacknowledged"), False),
        )
    if kind in ("cpu", "memory"):
        # KEDA 2.13 reads metricType from the trigger (metadata.type is the
        # deprecated spelling).
        metric_type = metric_type or meta.get("type")
        if metric_type not in ("Utilization", "AverageValue"):
            raise ManifestError(f"{where}: {kind} trigger metricType {metric_type!r}")
        value = meta.get("value")
        if value is None:
            raise ManifestError(f"{where}: {kind} trigger without metadata.value")
        target = float(value) if metric_type == "Utilization" else parse_quantity(value)
        return Trigger(type=kind, name=name, metric_type=metric_type, target=target, activation=0.0)
    if kind == "prometheus":
        if "threshold" not in meta or "query" not in meta:
            raise ManifestError(f"{where}: prometheus trigger needs query and threshold")
        return Trigger(
            type="prometheus", name=name, metric_type=metric_type or "AverageValue",
            target=float(meta["threshold"]), activation=float(meta.get("activationThreshold", 0)),
            query=meta["query"], ignore_null=_bool(meta.get("ignoreNullValues"), True),
        )
    raise ManifestError(f"{where}: trigger type {kind!r} cannot be simulated (rabbitmq, cpu, memory, prometheus)")


def _container_env(container: dict, configmaps: dict, resources: Resources, where: str) -> dict:
    """The container's plain env: configMapRef envFrom, then env entries
    (later wins, as the kubelet does). Secrets are not read."""
    env = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref:
            env.update({k: str(v) for k, v in (configmaps.get(ref["name"]) or {}).items()})
    for entry in container.get("env") or []:
        name = entry["name"]
        if "value" in entry:
            env[name] = str(entry["value"])
            continue
        value_from = entry.get("valueFrom") or {}
        field_ref = value_from.get("resourceFieldRef")
        cm_ref = value_from.get("configMapKeyRef")
        if field_ref:
            amount = {
                "limits.cpu": resources.cpu_limit, "requests.cpu": resources.cpu_request,
                "limits.memory": resources.memory_limit, "requests.memory": resources.memory_request,
            }.get(field_ref.get("resource"))
            if amount is None:
                raise ManifestError(f"{where}: env {name} refers to unset {field_ref.get('resource')}")
            divisor = parse_quantity(field_ref.get("divisor", "1"))
            # The kubelet rounds a resourceFieldRef up to a whole divisor
            # (pkg/api/v1/resource/helpers.go, ExtractContainerResourceValue).
            env[name] = str(math.ceil(amount / divisor - 1e-9))
        elif cm_ref:
            value = (configmaps.get(cm_ref["name"]) or {}).get(cm_ref["key"])
            if value is not None:
                env[name] = str(value)
    return env


def _threads(worker: str, env: dict, resources: Resources, concurrency: int) -> tuple[int, str]:
    """Compute threads the worker runs with in that pod, as the binary picks them."""
    # The CPUs the process may use follow the cgroup quota (CPU limit).
    cpus = max(1, math.floor(resources.cpu_limit)) if resources.cpu_limit else None

    def positive(name):
        try:
            n = int(env.get(name, ""))
        except ValueError:
            return None
        return n if n > 0 else None

    if WORKER_DEFAULTS[worker]["candle"]:
        for name in ("CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"):
            if positive(name):
                return positive(name), f"{name}={positive(name)}"
        if cpus is None:
            raise ManifestError(f"{worker}: no CPU limit and no thread variable: threads would follow the node")
        return cpus, f"CPUs of the limit ({cpus})"
    if positive("WHISPER_THREADS"):
        return positive("WHISPER_THREADS"), f"WHISPER_THREADS={positive('WHISPER_THREADS')}"
    if cpus is None:
        raise ManifestError(f"{worker}: no CPU limit and no WHISPER_THREADS: threads would follow the node")
    threads = max(1, cpus // concurrency)
    return threads, f"CPUs of the limit ÷ concurrency ({cpus} ÷ {concurrency})"


def _queues(worker: str, env: dict) -> tuple[str, ...]:
    if worker == "llm-worker":
        return tuple(env.get(k, d) for k, d in (
            ("SUMMARIZE_QUEUE", "ml.summarize"), ("SUMMARIZE_LOCAL_QUEUE", "ml.summarize_local"),
            ("SUMMARIZE_VIDEO_COMBINED_QUEUE", "ml.summarize_video_combined")))
    if worker == "whisper-worker":
        return tuple(q.strip() for q in env.get("TRANSCRIBE_QUEUES", "ml.transcribe,ml.transcribe_local").split(","))
    return (env.get("EMBED_QUEUE", "ml.embed"),)


def _duration_s(text: str) -> int:
    """A Prometheus duration ("15s", "1m", "1m30s") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ManifestError(f"not a duration: {text!r}")
    return int(sum(int(n) * units[u] for n, u in parts))


def _matches(selector: dict | None, labels: dict) -> bool:
    """A label selector (matchLabels only; matchExpressions refused) against labels."""
    if not selector:
        return False
    if selector.get("matchExpressions"):
        raise ManifestError("matchExpressions in a selector cannot be simulated")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _scrape(objects: list[dict], namespace: str, pod_labels: dict) -> tuple[str | None, int | None, str]:
    """The Service selecting these pods and the ServiceMonitor selecting that
    Service (prometheus-operator: job label = the Service's name unless
    jobLabel says otherwise; interval per endpoint, Prometheus's 30 s when unset)."""
    for svc in (o for o in objects if o.get("kind") == "Service"):
        if svc["metadata"].get("namespace", namespace) != namespace:
            continue
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
            continue
        port_names = {p.get("name") for p in (svc["spec"].get("ports") or [])}
        for sm in (o for o in objects if o.get("kind") == "ServiceMonitor"):
            spec = sm.get("spec") or {}
            names = (spec.get("namespaceSelector") or {}).get("matchNames")
            sm_ns = sm["metadata"].get("namespace", namespace)
            if (names is not None and namespace not in names) or (names is None and sm_ns != namespace):
                continue
            if not _matches(spec.get("selector"), svc["metadata"].get("labels") or {}):
                continue
            for endpoint in spec.get("endpoints") or []:
                if endpoint.get("port") in port_names:
                    job = (svc["metadata"].get("labels") or {}).get(spec["jobLabel"]) if spec.get("jobLabel") \
                        else svc["metadata"]["name"]
                    interval = _duration_s(endpoint.get("interval", "30s"))
                    return job, interval, f"ServiceMonitor {sm['metadata']['name']} -> Service {svc['metadata']['name']}"
    return None, None, "no ServiceMonitor selects a Service of these pods"


def worker_specs(objects: list[dict], overlay: str) -> dict[str, WorkerSpec]:
    """A WorkerSpec for every ScaledObject that targets one of our workers."""
    configmaps = {o["metadata"]["name"]: o.get("data") or {} for o in objects if o.get("kind") == "ConfigMap"}
    deployments = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Deployment"}
    specs = {}
    for so in (o for o in objects if o.get("kind") == "ScaledObject"):
        s = so.get("spec") or {}
        target = (s.get("scaleTargetRef") or {}).get("name")
        where = f"{overlay}: ScaledObject {so['metadata']['name']}"
        if target not in WORKER_DEFAULTS:
            continue
        deployment = deployments.get(target)
        if deployment is None:
            raise ManifestError(f"{where}: targets Deployment {target!r}, which is not rendered")
        pod = deployment["spec"]["template"]["spec"]
        containers = [c for c in pod["containers"] if c["name"] == target] or pod["containers"][:1]
        container = containers[0]
        res = container.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}

        def q(d, k):
            return parse_quantity(d[k]) if k in d else None

        resources = Resources(q(req, "cpu"), q(lim, "cpu"),
                              int(q(req, "memory")) if "memory" in req else None,
                              int(q(lim, "memory")) if "memory" in lim else None)
        env = _container_env(container, configmaps, resources, f"{overlay}: Deployment {target}")
        concurrency = int(env.get("WORKER_CONCURRENCY", WORKER_DEFAULTS[target]["WORKER_CONCURRENCY"]))
        multiplier = int(env.get("WORKER_PREFETCH_MULTIPLIER", DEFAULT_PREFETCH_MULTIPLIER))
        threads, threads_source = _threads(target, env, resources, concurrency)
        behavior = ((s.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {}
        triggers = tuple(_trigger(t, f"{where} trigger {i}") for i, t in enumerate(s.get("triggers") or []))
        if not triggers:
            raise ManifestError(f"{where}: no triggers")
        for t in triggers:
            if t.type in ("cpu", "memory"):
                amount = resources.cpu_request if t.type == "cpu" else resources.memory_request
                if t.metric_type == "Utilization" and not amount:
                    raise ManifestError(f"{where}: {t.type} Utilization trigger but no {t.type} request")
        probes = {k: container.get(k) or {} for k in ("startupProbe", "readinessProbe")}
        namespace = deployment["metadata"].get("namespace", "default")
        pod_labels = (deployment["spec"]["template"].get("metadata") or {}).get("labels") or {}
        scrape_job, scrape_interval, scrape_source = _scrape(objects, namespace, pod_labels)
        specs[target] = WorkerSpec(
            overlay=overlay, worker=target,
            namespace=namespace,
            queues=_queues(target, env),
            min_replicas=int(s.get("minReplicaCount", 0)),
            max_replicas=int(s.get("maxReplicaCount", 100)),
            idle_replicas=int(s["idleReplicaCount"]) if s.get("idleReplicaCount") is not None else None,
            polling_interval_s=int(s.get("pollingInterval", 30)),
            cooldown_s=int(s.get("cooldownPeriod", 300)),
            scale_up=_rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP, f"{where} scaleUp"),
            scale_down=_rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN, f"{where} scaleDown"),
            triggers=triggers,
            resources=resources,
            threads=threads, threads_source=threads_source,
            concurrency=concurrency, prefetch=concurrency * multiplier,
            shutdown_timeout_s=int(env.get("WORKER_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT)),
            termination_grace_s=int(pod.get("terminationGracePeriodSeconds", 30)),
            startup_probe_period_s=int(probes["startupProbe"].get("periodSeconds", 10)),
            readiness_probe_period_s=int(probes["readinessProbe"].get("periodSeconds", 10)),
            scrape_job=scrape_job, scrape_interval_s=scrape_interval, scrape_source=scrape_source,
            env=env,
        )
    return specs


def load(k8s_dir: Path, overlay: str) -> dict[str, WorkerSpec]:
    specs = worker_specs(render(k8s_dir, overlay_path(overlay)), overlay)
    missing = sorted(set(WORKER_DEFAULTS) - set(specs))
    if missing:
        raise ManifestError(f"{overlay}: no ScaledObject for {', '.join(missing)}")
    return specs
