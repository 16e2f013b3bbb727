"""The rehearsed scenarios and the outcomes k8s/README.md's table promises.

The table (base overlay): queue-length targets 5 / 2 / 10 messages per
replica, replicas 1-10 / 1-5 / 1-20, llm-worker also on CPU > 70 %,
whisper-worker on memory > 70 %, vector-worker scaling up aggressively, and
scale-down after 5 / 10 / 3 minutes. Overlays other than base keep the
windows but have their own ceilings (prod's are larger): there the expected
ceiling is the overlay's maxReplicaCount.

A check returns (met, expected, seen); every one can fail.
"""

from __future__ import annotations

from sim import Result, Scenario

# k8s/README.md, "Kubernetes deployment" table.
TABLE = {
    "llm-worker": {"ceiling": 10, "scale_down_after_s": 300},
    "whisper-worker": {"ceiling": 5, "scale_down_after_s": 600},
    "vector-worker": {"ceiling": 20, "scale_down_after_s": 180},
}
# Longest transcription the workers accept (MEDIA_MAX_DURATION_SECS default).
LONGEST_AUDIO_S = 1800


def mmss(t) -> str:
    if t is None:
        return "never"
    sign = "-" if t < 0 else ""
    t = abs(int(round(t)))
    return f"{sign}{t // 60}:{t % 60:02d}"


def ceiling(spec) -> tuple[int, str]:
    if spec.overlay == "base":
        return TABLE[spec.worker]["ceiling"], "the README table"
    return spec.max_replicas, f"{spec.overlay}'s maxReplicaCount"


# --- checks -------------------------------------------------------------------


def at_most(n_of_spec, why):
    def check(r: Result):
        n = n_of_spec(r.spec)
        peak, when = r.peak()
        return peak <= n, f"at most {n} replicas ({why})", f"peak {peak} at {mmss(when)}"
    return check


def reaches_ceiling(within_s=None, why="the README table"):
    def check(r: Result):
        n, source = ceiling(r.spec)
        peak, when = r.peak()
        first = r.first_time(lambda x: x >= n)
        expected = f"up to {n} replicas ({source})" + (f" within {mmss(within_s)}" if within_s else "")
        met = peak == n and first is not None and (within_s is None or first <= within_s)
        seen = f"peak {peak}, first at {mmss(first if first is not None else when)}"
        if peak > n:
            seen += " (above the ceiling)"
        elif peak < n and r.drained_at is not None and r.drained_at < r.t[-1]:
            seen += (f"; all {r.total} tasks were done at {mmss(r.drained_at)}, before the scale-up policy "
                     f"allowed {n}: {peak} replicas sufficed")
        return met, expected, seen
    return check


def adds_replica_within(within_s, why):
    def check(r: Result):
        n = r.spec.hpa_min_replicas + 1
        first = r.first_time(lambda x: x >= n)
        return (first is not None and first <= within_s,
                f"a replica added (>= {n}) within {mmss(within_s)} ({why})", f"first {n}+ at {mmss(first)}")
    return check


def drained():
    def check(r: Result):
        return (r.drained_at is not None, f"all {r.total} tasks done",
                f"{r.done} done" + (f", queue empty at {mmss(r.drained_at)}" if r.drained_at is not None else
                                    f" by {mmss(r.t[-1])}"))
    return check


def _scale_down_timing(r: Result):
    """(first scale-down, replicas before it, last sync before it that still
    asked for at least that many) after t = 0."""
    first = r.first_decrease_after(0)
    if first is None:
        return None, None, None
    before = r.replicas[r.t.index(first) - 1]
    asked = [s.t for s in r.syncs
             if 0 <= s.t < first and max((p for _, p in s.readings.values() if p is not None), default=0) >= before]
    return first, before, (max(asked) if asked else None)


def scale_down_not_before(after="the queue drains", only_if_scaled=False):
    """Scale-down begins no sooner than the table's window after the load
    ends, and does begin: the fleet is back at its minimum before the end.

    "The load ends" as the autoscaler sees it: the last sync at which a
    trigger still asked for the replicas the first scale-down removes from.
    (The literal drain can be later: while the last tasks run, the queue
    already asks for fewer replicas, and the window counts from there.)
    """
    def check(r: Result):
        window = TABLE[r.spec.worker]["scale_down_after_s"]
        n = r.spec.hpa_min_replicas
        expected = (f"scale-down no sooner than {window // 60} min after {after} (after the last sync asking "
                    f"for that many replicas), and back to {n}")
        if r.drained_at is None:
            return False, expected, "the load never ended"
        first, before, asked = _scale_down_timing(r)
        if only_if_scaled and r.peak()[0] <= n:
            return True, expected, f"never above {n}, nothing to scale down"
        if first is None:
            return False, expected, "no scale-down at all"
        back = r.first_time(lambda x: x <= n, after=r.drained_at)
        since_asked = first - asked if asked is not None else None
        met = since_asked is not None and since_asked >= window and back is not None
        seen = (f"{before} -> {before - 1 if before else 0} at {mmss(first)}: {mmss(since_asked)} after the last "
                f"sync asking for {before} ({mmss(asked)}), {mmss(first - r.drained_at)} after {after} at "
                f"{mmss(r.drained_at)}; back to {n} at {mmss(back)}")
        return met, expected, seen
    return check


def memory_follows_threshold():
    """The memory trigger adds a replica when, and only when, a pod's memory
    is past its target (for one pod the HPA acts above target * 1.1)."""
    def check(r: Result):
        trigger = next((t for t in r.spec.triggers if t.type == "memory"), None)
        if trigger is None:
            return False, "a memory trigger (README: whisper scales on memory > 70 %)", "none in the ScaledObject"
        request = r.spec.resources.memory_request
        peak_rss = r.peak_rss
        if trigger.metric_type == "Utilization":
            share = 100 * peak_rss / request
            over = share > trigger.target * (1 + 0.1)
            level = f"{peak_rss / 2**20:.0f}Mi, {share:.0f}% of the {request / 2**30:g}Gi request"
            target = f"{trigger.target:g} % trigger ({trigger.target * 1.1:.0f} % with the HPA's 0.1 tolerance)"
        else:
            over = peak_rss > trigger.target * (1 + 0.1)
            level = f"{peak_rss / 2**20:.0f}Mi"
            target = f"{trigger.target / 2**20:.0f}Mi trigger (+ the HPA's 0.1 tolerance)"
        peak, when = r.peak()
        n = r.spec.hpa_min_replicas
        if over:
            return peak > n, f"a replica added: the pod's RSS ({level}) is past the {target}", \
                f"peak {peak} at {mmss(when)}"
        return peak <= n, f"stays at {n}: the pod's RSS ({level}) is under the {target}", \
            f"peak {peak} at {mmss(when)}"
    return check


# --- scenarios ----------------------------------------------------------------


def all_scenarios(figures: dict) -> list[Scenario]:
    whisper_long = "long-1800s" if "long-1800s" in figures["whisper-worker"]["tasks"] else "long"
    return [
        Scenario(
            "llm-one-task", "llm-worker",
            "one summarize task at a time (long articles, each published when the last is done, 20 in a row)",
            arrivals=[], sequential=(20, "ml.summarize", "long-article"), horizon_s=3600,
            checks=[at_most(lambda s: max(2, s.hpa_min_replicas), "README: one LLM task -> 1 replica, at most 2"),
                    drained()],
        ),
        Scenario(
            "llm-burst-200", "llm-worker", "a burst of 200 summarize tasks (long articles)",
            arrivals=[(0, 200, "ml.summarize", "long-article")], horizon_s=7200,
            checks=[reaches_ceiling(), drained(), scale_down_not_before()],
        ),
        Scenario(
            "whisper-memory", "whisper-worker",
            "a transcription of the long sample every 6 s for 10 minutes (about one at a time), at measured memory",
            arrivals=[(t, 1, "ml.transcribe", "long") for t in range(0, 600, 6)], horizon_s=7200,
            checks=[memory_follows_threshold(), drained(),
                    scale_down_not_before("the last transcription ends", only_if_scaled=True)],
        ),
        Scenario(
            "whisper-memory-pressure", "whisper-worker",
            f"what-if: one {LONGEST_AUDIO_S // 60}-minute transcription (time extrapolated) whose pod sits at 85 % "
            "of its memory request",
            arrivals=[(0, 1, "ml.transcribe", whisper_long)], horizon_s=7200, busy_rss_fraction=0.85,
            checks=[adds_replica_within(180, "README: a replica near its request adds another"),
                    scale_down_not_before("the transcription ends")],
            note="the RSS is set, not measured: it shows how the trigger acts once long audio grows memory",
        ),
        Scenario(
            "whisper-backlog", "whisper-worker", "20 transcriptions of the long sample at once",
            arrivals=[(0, 20, "ml.transcribe", "long")], horizon_s=7200,
            checks=[drained(), scale_down_not_before()],
        ),
        Scenario(
            "vector-burst-2000", "vector-worker", "a burst of 2,000 embed tasks",
            arrivals=[(0, 2000, "ml.embed", "mix")], horizon_s=3600,
            checks=[reaches_ceiling(within_s=120), drained(), scale_down_not_before()],
        ),
    ]
