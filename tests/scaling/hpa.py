"""The horizontal pod autoscaler's algorithm, as Kubernetes implements it.

Restated from kubernetes pkg/controller/podautoscaler (v1.28):
replica_calculator.go (per-metric proposals) and horizontal.go
(reconcileAutoscaler, computeReplicasForMetrics,
normalizeDesiredReplicasWithBehaviors). The documented form
(https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/):

    desiredReplicas = ceil(currentReplicas * currentMetricValue / desiredMetricValue)

skipped when the ratio is within the tolerance (0.1) of 1, computed per
metric, the highest proposal winning; then the behavior: the stabilization
windows (scale-up takes the *lowest* recommendation of its window, scale-down
the *highest* of its window) and the policies (Pods / Percent per
periodSeconds, counted from the replicas at the start of the period, the
policy chosen by selectPolicy), then min/max.

Units follow the Go code where its integer arithmetic changes results: CPU in
millicores, memory in bytes, other metrics as milli-values, and the
utilization percentage truncated to an integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from manifests import Rules

# kube-controller-manager defaults: --horizontal-pod-autoscaler-tolerance,
# -sync-period, -cpu-initialization-period, -initial-readiness-delay.
TOLERANCE = 0.1
SYNC_PERIOD_S = 15
CPU_INITIALIZATION_PERIOD_S = 300
INITIAL_READINESS_DELAY_S = 30


@dataclass
class PodView:
    """What the HPA knows of one pod: phase, readiness and its resource
    metric (from metrics-server), if it has one yet."""

    name: str
    pending: bool  # phase Pending (not started)
    deleting: bool  # has a deletionTimestamp
    ready: bool
    start_time: float | None  # status.startTime
    ready_transition: float | None  # lastTransitionTime of the Ready condition
    request: int  # the resource's request, summed over containers (milli-units)
    metric: int | None  # usage (milli-units), None = no metric for this pod
    metric_timestamp: float = 0.0
    metric_window: float = 0.0


def group_pods(pods: list[PodView], cpu: bool, now: float):
    """groupPods: (readyPodCount, unready, missing, ignored) name sets.

    Deleted pods are ignored; pending pods count as unready; pods without a
    metric are missing; for CPU only, a pod is unready while it is not Ready
    within the 5-minute initialization period, or its sample predates one
    metric window after it became Ready (so start-up CPU does not count),
    and after that period only when it has never been Ready.
    """
    ready_count = 0
    unready, missing, ignored = set(), set(), set()
    for pod in pods:
        if pod.deleting:
            ignored.add(pod.name)
            continue
        if pod.pending:
            unready.add(pod.name)
            continue
        if pod.metric is None:
            missing.add(pod.name)
            continue
        if cpu:
            if pod.ready_transition is None or pod.start_time is None:
                is_unready = True
            elif pod.start_time + CPU_INITIALIZATION_PERIOD_S > now:
                is_unready = (not pod.ready) or pod.metric_timestamp < pod.ready_transition + pod.metric_window
            else:
                is_unready = (not pod.ready) and pod.start_time + INITIAL_READINESS_DELAY_S > pod.ready_transition
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return ready_count, unready, missing, ignored


def utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target_percent: int):
    """GetResourceUtilizationRatio: sum(usage) * 100 / sum(requests), as an
    integer percentage, over the pods that have a metric; ratio to target."""
    total = sum(metrics.values())
    requested = sum(requests[name] for name in metrics)
    if requested == 0:
        raise ValueError("no requests for the pods with metrics")
    utilization = (total * 100) // requested
    return utilization / target_percent, utilization


def _pod_metric_replicas(current: int, pods: list[PodView], cpu: bool, now: float, ratio_of, missing_value):
    """The part GetResourceReplicas and calcPlainMetricReplicas share: group
    the pods, and when some are missing or unready, recompute the ratio with
    them filled in (missing: `missing_value(ratio, name)` unless None, unready on a
    scale-up: 0) and keep the current count if the direction flips or the new
    ratio is within tolerance. `ratio_of(metrics)` gives (ratio, shown value)."""
    ready_count, unready, missing, ignored = group_pods(pods, cpu, now)
    metrics = {p.name: p.metric for p in pods
               if p.metric is not None and p.name not in ignored and p.name not in unready}
    if not metrics:
        raise ValueError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, shown = ratio_of(metrics)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, shown
        return math.ceil(ratio * ready_count), shown
    for name in missing:
        value = missing_value(ratio, name)
        if value is not None:
            metrics[name] = value
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio, _ = ratio_of(metrics)
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, shown
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, shown
    return replicas, shown


def resource_utilization_replicas(current: int, target_percent: int, pods: list[PodView], cpu: bool, now: float):
    """GetResourceReplicas (metricType Utilization): (replicas, utilization %)."""
    requests = {p.name: p.request for p in pods}

    def missing_value(ratio, name):
        # On a scale-down, missing pods count as using 100 % (or the target
        # when above 100 %) of their request; on a scale-up, nothing; at
        # exactly the target they stay out.
        if ratio < 1.0:
            return requests[name] * max(100, target_percent) // 100
        return 0 if ratio > 1.0 else None

    return _pod_metric_replicas(current, pods, cpu, now,
                                lambda m: utilization_ratio(m, requests, target_percent), missing_value)


def plain_metric_replicas(current: int, target: int, pods: list[PodView], cpu: bool, now: float):
    """calcPlainMetricReplicas (resource metricType AverageValue, via
    GetRawResourceReplicas): average usage per pod against the target."""

    def ratio_of(metrics):
        average = sum(metrics.values()) // len(metrics)
        return average / target, average

    # Scale-down: missing pods count as exactly the target; scale-up: 0.
    return _pod_metric_replicas(current, pods, cpu, now, ratio_of,
                                lambda ratio, _name: target if ratio < 1.0 else 0)


def external_average_value_replicas(status_replicas: int, target_per_pod: int, usage: int) -> int:
    """GetExternalPerPodMetricReplicas (external metric, AverageValue target,
    what KEDA's scalers use by default): the metric is the total (e.g. the
    queue's messages); usageRatio = usage / (target * statusReplicas); outside
    the tolerance, replicas = ceil(usage / target)."""
    replicas = status_replicas
    ratio = usage / (target_per_pod * status_replicas) if status_replicas else math.inf
    if abs(1.0 - ratio) > TOLERANCE:
        replicas = math.ceil(usage / target_per_pod)
    return replicas


def external_value_replicas(current: int, target: int, usage: int, ready_pods: int) -> int:
    """GetExternalMetricReplicas (external metric, Value target):
    usageRatio = usage / target; outside the tolerance,
    ceil(usageRatio * readyPods); from 0 replicas, ceil(usageRatio)."""
    ratio = usage / target
    if current == 0:
        return math.ceil(ratio)
    if abs(1.0 - ratio) <= TOLERANCE:
        return current
    return math.ceil(ratio * ready_pods)


@dataclass
class _Event:
    t: float
    change: int


@dataclass
class Autoscaler:
    """One HPA's controller state: recommendations and scale events, kept
    across syncs as the controller keeps them (per HPA key)."""

    min_replicas: int
    max_replicas: int
    scale_up: Rules
    scale_down: Rules
    recommendations: list = field(default_factory=list)  # [(t, replicas)]
    up_events: list = field(default_factory=list)
    down_events: list = field(default_factory=list)

    def reconcile(self, now: float, current: int, proposals: list[int]) -> tuple[int, str]:
        """reconcileAutoscaler for one sync: the new spec.replicas and why.

        `proposals` are the per-metric replica counts (metrics that failed
        left out; computeReplicasForMetrics refuses to scale down when some
        failed, which the caller handles by passing none).
        """
        if not self.recommendations:
            self.recommendations.append((now, current))  # recordInitialRecommendation
        if current == 0 and self.min_replicas != 0:
            return 0, "scaling disabled (0 replicas)"
        if current > self.max_replicas:
            desired, reason = self.max_replicas, "above maxReplicas"
        elif current < self.min_replicas:
            desired, reason = self.min_replicas, "below minReplicas"
        else:
            if not proposals:
                return current, "no valid metric"
            metric_desired = max(proposals)
            stabilized = self._stabilize(now, current, metric_desired)
            desired, reason = self._rate_limited(now, current, stabilized)
            if stabilized != metric_desired:
                reason = ("scale-up stabilized" if metric_desired >= current else "scale-down stabilized") + \
                         f" ({metric_desired} -> {stabilized}); {reason}"
        if desired != current:
            self._store_event(now, current, desired)
        return desired, reason

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        """stabilizeRecommendationWithBehaviors: the lowest recommendation of
        the scale-up window and the highest of the scale-down window bound
        the result; the unstabilized one is recorded (an old sample beyond
        both windows is reused)."""
        up_cutoff = now - self.scale_up.stabilization_s
        down_cutoff = now - self.scale_down.stabilization_s
        up, down = desired, desired
        old_index = None
        for i, (t, rec) in enumerate(self.recommendations):
            if t > up_cutoff:
                up = min(rec, up)
            if t > down_cutoff:
                down = max(rec, down)
            if t < up_cutoff and t < down_cutoff:
                old_index = i
        recommendation = current
        if recommendation < up:
            recommendation = up
        if recommendation > down:
            recommendation = down
        if old_index is not None:
            self.recommendations[old_index] = (now, desired)
        else:
            self.recommendations.append((now, desired))
        return recommendation

    @staticmethod
    def _changed(period_s: int, events: list, now: float) -> int:
        """getReplicasChangePerPeriod: replicas changed in the last period."""
        cutoff = now - period_s
        return sum(e.change for e in events if e.t > cutoff)

    def _limit(self, now: float, current: int, rules: Rules, up: bool) -> int:
        """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors."""
        if rules.select == "Disabled":
            return current
        # Scale-up: Max picks the largest proposal, Min the smallest;
        # scale-down: Max picks the largest change, i.e. the smallest count.
        pick_largest = (rules.select == "Max") == up
        result = None
        for policy in rules.policies:
            added = self._changed(policy.period_s, self.up_events, now)
            deleted = self._changed(policy.period_s, self.down_events, now)
            start = current - added + deleted
            if up:
                proposed = (start + policy.value if policy.type == "Pods"
                            else math.ceil(start * (1 + policy.value / 100)))
            else:
                proposed = (start - policy.value if policy.type == "Pods"
                            else int(start * (1 - policy.value / 100)))
            if result is None:
                result = proposed
            else:
                result = max(result, proposed) if pick_largest else min(result, proposed)
        return current if result is None else result

    def _rate_limited(self, now: float, current: int, desired: int) -> tuple[int, str]:
        """convertDesiredReplicasWithBehaviorRate."""
        if desired > current:
            limit = max(self._limit(now, current, self.scale_up, up=True), current)
            maximum = min(self.max_replicas, limit)
            if desired > maximum:
                return maximum, "scale-up limit" if maximum == limit and limit < self.max_replicas else "maxReplicas"
        elif desired < current:
            limit = min(self._limit(now, current, self.scale_down, up=False), current)
            minimum = max(self.min_replicas, limit)
            if desired < minimum:
                return minimum, "scale-down limit" if minimum == limit and limit > self.min_replicas else "minReplicas"
        return desired, "within range"

    def _store_event(self, now: float, previous: int, new: int) -> None:
        """storeScaleEvent: events older than the longest policy period are
        marked outdated and reused (here: dropped, the same for the sums)."""
        if new > previous:
            longest = max((p.period_s for p in self.scale_up.policies), default=0)
            self.up_events = [e for e in self.up_events if e.t >= now - longest]
            self.up_events.append(_Event(now, new - previous))
        else:
            longest = max((p.period_s for p in self.scale_down.policies), default=0)
            self.down_events = [e for e in self.down_events if e.t >= now - longest]
            self.down_events.append(_Event(now, previous - new))
