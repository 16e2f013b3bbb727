"""The model's own tests: the HPA formulas on cases worked by hand from the
Kubernetes documentation and source, the PromQL subset, quantities, and the
simulated cluster on a spec small enough to follow. Run by
scripts/scaling-rehearsal before every rehearsal (python -m unittest also works
from this folder)."""

from __future__ import annotations

import unittest

import hpa
import manifests
import promql
import sim
from manifests import Policy, Resources, Rules, Trigger, WorkerSpec


def pod(name, metric, request=1000, ready=True, start=-1000.0, ready_at=-990.0, pending=False, deleting=False,
        ts=0.0):
    return hpa.PodView(name, pending, deleting, ready, None if pending else start, None if pending else ready_at,
                       request, metric, ts, 15)


class ReplicaCalculator(unittest.TestCase):
    def test_external_average_value_is_total_over_target(self):
        # 200 messages, 5 per replica: ceil(200 / 5) whatever the replicas.
        self.assertEqual(hpa.external_average_value_replicas(1, 5000, 200_000), 40)
        self.assertEqual(hpa.external_average_value_replicas(3, 5000, 7_000), 2)

    def test_external_average_value_within_tolerance_keeps_replicas(self):
        # 52 messages on 10 replicas of 5: ratio 1.04, inside 0.1.
        self.assertEqual(hpa.external_average_value_replicas(10, 5000, 52_000), 10)
        self.assertEqual(hpa.external_average_value_replicas(10, 5000, 56_000), 12)

    def test_docs_example_doubles_and_halves(self):
        # "if the current metric value is 200m, and the desired value is
        # 100m, the number of replicas will be doubled ... 50m halved".
        self.assertEqual(hpa.plain_metric_replicas(1, 100, [pod("a", 200)], True, 0)[0], 2)
        self.assertEqual(hpa.plain_metric_replicas(2, 100, [pod("a", 50), pod("b", 50)], True, 0)[0], 1)

    def test_utilization_of_a_small_request(self):
        # One pod busy on 3.8 cores with a 1-core request, target 70 %:
        # 380 % -> ceil(380 / 70) = 6.
        replicas, utilization = hpa.resource_utilization_replicas(1, 70, [pod("a", 3800)], True, 0)
        self.assertEqual((replicas, utilization), (6, 380))

    def test_utilization_within_tolerance(self):
        self.assertEqual(hpa.resource_utilization_replicas(2, 70, [pod("a", 750), pod("b", 750)], True, 0)[0], 2)

    def test_missing_pod_counts_as_zero_on_scale_up(self):
        # One pod at 100 % of its request (target 50 %) and a new one without a
        # metric yet: with the new pod at 0 the ratio is exactly 1 -> keep 2.
        pods = [pod("a", 1000), pod("b", None)]
        self.assertEqual(hpa.resource_utilization_replicas(2, 50, pods, False, 0)[0], 2)

    def test_missing_pod_counts_as_full_request_on_scale_down(self):
        # One idle pod (10 %) and one missing (counted at 100 %): 55 % of
        # target 70 -> ceil(0.78 * 2) = 2, no scale-down past the unknown pod.
        pods = [pod("a", 100), pod("b", None)]
        self.assertEqual(hpa.resource_utilization_replicas(2, 70, pods, False, 0)[0], 2)

    def test_unready_cpu_pod_ignored_then_zero_on_scale_up(self):
        # A pod still starting (not Ready, within the CPU initialization
        # period) does not count its start-up CPU; on a scale-up it counts 0.
        pods = [pod("a", 1400), pod("b", 900, ready=False, start=-20, ready_at=-20)]
        replicas, _ = hpa.resource_utilization_replicas(2, 70, pods, True, 0)
        # (1400 + 0) / 2000 = 70 % -> ratio 1.0 -> keep 2.
        self.assertEqual(replicas, 2)

    def test_fresh_ready_pod_waits_one_metric_window(self):
        # Ready 5 s ago, sample taken at that moment: its window still covers
        # start-up, so the pod is unready for CPU.
        ready, unready, _, _ = hpa.group_pods([pod("a", 500, start=-60, ready_at=-5, ts=0)], True, 0)
        self.assertEqual((ready, unready), (0, {"a"}))
        ready, unready, _, _ = hpa.group_pods([pod("a", 500, start=-60, ready_at=-5, ts=0)], False, 0)
        self.assertEqual((ready, unready), (1, set()))

    def test_deleting_pods_are_ignored(self):
        pods = [pod("a", 700), pod("b", 5000, deleting=True)]
        self.assertEqual(hpa.resource_utilization_replicas(2, 70, pods, True, 0)[0], 2)


def llm_like_rules():
    up = Rules(0, "Max", (Policy("Percent", 100, 60), Policy("Pods", 2, 60)))
    down = Rules(300, "Max", (Policy("Pods", 1, 60),))
    return up, down


class Behavior(unittest.TestCase):
    def test_scale_up_policies_per_period(self):
        up, down = llm_like_rules()
        a = hpa.Autoscaler(1, 10, up, down)
        self.assertEqual(a.reconcile(0, 1, [40])[0], 3)  # max(1 + 2, ceil(1 * 2))
        self.assertEqual(a.reconcile(15, 3, [40])[0], 3)  # same period: started at 1
        self.assertEqual(a.reconcile(45, 3, [40])[0], 3)
        self.assertEqual(a.reconcile(60, 3, [40])[0], 6)  # the event at 0 is one period old
        self.assertEqual(a.reconcile(120, 6, [40])[0], 10)  # capped by maxReplicas

    def test_scale_up_select_min(self):
        up = Rules(0, "Min", (Policy("Percent", 100, 60), Policy("Pods", 2, 60)))
        a = hpa.Autoscaler(1, 10, up, llm_like_rules()[1])
        self.assertEqual(a.reconcile(0, 4, [40])[0], 6)  # min(8, 6)

    def test_disabled_direction(self):
        up, _ = llm_like_rules()
        a = hpa.Autoscaler(1, 10, up, Rules(0, "Disabled", (Policy("Pods", 1, 60),)))
        self.assertEqual(a.reconcile(0, 5, [1])[0], 5)

    def test_scale_down_waits_for_the_window_then_one_pod_a_minute(self):
        up, down = llm_like_rules()
        a = hpa.Autoscaler(1, 10, up, down)
        a.reconcile(0, 10, [10])
        seen = {}
        current = 10
        for t in range(15, 700, 15):
            current, _ = a.reconcile(t, current, [1])
            seen[t] = current
        self.assertEqual(seen[285], 10)  # the 10 at t=0 is still in the window
        self.assertEqual(seen[300], 9)  # t=0 is no longer after the cutoff
        self.assertEqual(seen[345], 9)
        self.assertEqual(seen[360], 8)  # one pod per 60 s
        self.assertEqual(seen[690], 3)

    def test_scale_up_stabilization_takes_the_lowest(self):
        up = Rules(30, "Max", (Policy("Pods", 1, 60),))
        a = hpa.Autoscaler(1, 5, up, llm_like_rules()[1])
        self.assertEqual(a.reconcile(0, 1, [1])[0], 1)
        self.assertEqual(a.reconcile(15, 1, [2])[0], 1)  # 1 at t=0 is in the 30 s window
        self.assertEqual(a.reconcile(30, 1, [2])[0], 2)

    def test_percent_scale_up_rounds_up(self):
        up = Rules(0, "Max", (Policy("Percent", 50, 60),))
        a = hpa.Autoscaler(1, 20, up, llm_like_rules()[1])
        self.assertEqual(a.reconcile(0, 3, [20])[0], 5)  # ceil(3 * 1.5)

    def test_percent_scale_down_rounds_down(self):
        down = Rules(0, "Max", (Policy("Percent", 50, 60),))
        a = hpa.Autoscaler(1, 20, llm_like_rules()[0], down)
        self.assertEqual(a.reconcile(0, 5, [1])[0], 2)  # int(5 * 0.5)
        self.assertEqual(a.reconcile(15, 2, [1])[0], 2)  # period started at 5: int(2.5) = 2

    def test_min_and_max_bounds(self):
        up, down = llm_like_rules()
        a = hpa.Autoscaler(2, 4, up, down)
        self.assertEqual(a.reconcile(0, 1, [1])[0], 2)
        self.assertEqual(a.reconcile(15, 6, [6])[0], 4)


class PromQL(unittest.TestCase):
    def test_rate_of_a_steady_counter(self):
        db = promql.Tsdb()
        for i in range(20):
            db.add(i * 15, "c_total", {"pod": "a", "queue": "q"}, i * 15)
        self.assertAlmostEqual(db.query('sum(rate(c_total{queue="q"}[2m]))', 285), 1.0)

    def test_sum_of_gauges_and_staleness(self):
        db = promql.Tsdb()
        db.add(0, "g", {"job": "x", "pod": "a"}, 1)
        db.add(0, "g", {"job": "x", "pod": "b"}, 0.5)
        db.add(0, "g", {"job": "y", "pod": "c"}, 9)
        self.assertEqual(db.query('sum(g{job="x"})', 10), 1.5)
        db.mark_stale(15, lambda labels: labels["pod"] == "b")
        self.assertEqual(db.query('sum(g{job="x"})', 20), 1)
        self.assertIsNone(db.query('sum(g{job="z"})', 20))

    def test_unsupported_queries_are_refused(self):
        db = promql.Tsdb()
        db.add(0, "g", {}, 1)
        with self.assertRaises(promql.QueryError):
            db.query("sum(g) / 2", 0)
        with self.assertRaises(promql.QueryError):
            db.query("sum(missing_metric)", 0)


class Quantities(unittest.TestCase):
    def test_quantities(self):
        self.assertEqual(manifests.parse_quantity("500m"), 0.5)
        self.assertEqual(manifests.parse_quantity("2"), 2)
        self.assertEqual(manifests.parse_quantity("1Gi"), 2**30)
        self.assertEqual(manifests.parse_quantity("512Mi"), 2**29)
        self.assertEqual(manifests.parse_quantity("1400m"), 1.4)
        with self.assertRaises(manifests.ManifestError):
            manifests.parse_quantity("2 cores")


def small_spec(**changes):
    base = dict(
        overlay="test", worker="llm-worker", namespace="ns", queues=("q",), min_replicas=1, max_replicas=4,
        idle_replicas=None, polling_interval_s=15, cooldown_s=300,
        scale_up=Rules(0, "Max", (Policy("Pods", 4, 15),)), scale_down=Rules(60, "Max", (Policy("Pods", 4, 15),)),
        triggers=(Trigger("rabbitmq", "queue-length", "AverageValue", 2, 0, queue_pattern="q"),),
        resources=Resources(1.0, 1.0, 2**30, 2**30), threads=1, threads_source="test", concurrency=1, prefetch=1,
        shutdown_timeout_s=300, termination_grace_s=330, startup_probe_period_s=5, readiness_probe_period_s=10,
        scrape_job="llm-worker", scrape_interval_s=15, scrape_source="test", env={})
    base.update(changes)
    return WorkerSpec(**base)


FIGURES = {"threads": 1, "settings": {"WORKER_CONCURRENCY": "1"}, "ready_s": 3.0, "startup_cpu_s": 3.0, "idle_cores": 0.0, "idle_rss": 100 * 2**20,
           "model_copy_s": 0.0,
           "tasks": {"t": {"per_task_s": 10.0, "cpu_s_per_task": 10.0, "task_s_per_task": 10.0,
                           "model_s_per_task": 10.0,
                           "busy_cores": 1.0, "peak_rss": 200 * 2**20, "settled_rss": 100 * 2**20}}}


class PodModel(unittest.TestCase):
    def figures(self, per_task_s, cpu_s, model_share, threads=2, concurrency=1):
        task_s = concurrency * per_task_s
        return {**FIGURES, "threads": threads, "settings": {"WORKER_CONCURRENCY": str(concurrency)},
                "tasks": {"t": {**FIGURES["tasks"]["t"], "per_task_s": per_task_s, "cpu_s_per_task": cpu_s,
                                "task_s_per_task": task_s, "model_s_per_task": model_share * task_s}}}

    def test_model_calls_follow_the_pod_threads(self):
        # Measured: 6 s per task, all in the model, 6 CPU-seconds (a busy host
        # gave it one core of its two threads). On 4 threads: 1.5 s, 4 cores.
        spec = small_spec(threads=4, resources=Resources(1.0, 4.0, 2**30, 2**30))
        profile = sim.pod_model(spec, self.figures(6.0, 6.0, 1.0)).profiles["t"]
        self.assertAlmostEqual(profile.duration_s, 1.5)
        self.assertAlmostEqual(profile.busy_cores, 4.0)

    def test_threads_beyond_the_limit_do_not_help(self):
        spec = small_spec(threads=8, resources=Resources(1.0, 2.0, 2**30, 2**30))
        self.assertAlmostEqual(sim.pod_model(spec, self.figures(6.0, 6.0, 1.0)).profiles["t"].duration_s, 3.0)

    def test_time_outside_the_model_stays(self):
        # Measured at concurrency 2: 0.1 s per task wall, so 0.2 s per slot,
        # a quarter of it in the model, 0.05 CPU-s: 0.15 s elsewhere. On one
        # thread, two slots: 0.15 + 0.05 / 0.5 = 0.25 s, 0.4 cores.
        spec = small_spec(threads=1, concurrency=2, prefetch=8, resources=Resources(0.25, 1.0, 2**30, 2**30))
        profile = sim.pod_model(spec, self.figures(0.1, 0.05, 0.25, threads=2, concurrency=2)).profiles["t"]
        self.assertAlmostEqual(profile.duration_s, 0.25)
        self.assertAlmostEqual(profile.busy_cores, 0.4)


class Cluster(unittest.TestCase):
    def test_one_pod_serves_a_backlog_at_its_measured_rate(self):
        spec = small_spec(max_replicas=1)
        result = sim.Cluster(spec, sim.pod_model(spec, FIGURES), sim.Scenario(
            "s", "llm-worker", "t", [(0, 6, None, "t")], 2000)).run()
        # 6 tasks of 10 CPU-seconds on one core, one at a time.
        self.assertAlmostEqual(result.drained_at, 60, delta=1)
        self.assertEqual(result.peak()[0], 1)

    def test_sequential_tasks_run_one_after_the_other(self):
        spec = small_spec(max_replicas=1)
        result = sim.Cluster(spec, sim.pod_model(spec, FIGURES), sim.Scenario(
            "s", "llm-worker", "t", [], 2000, sequential=(3, None, "t"))).run()
        # Each published as the previous one ends: 3 x 10 s.
        self.assertEqual(result.total, 3)
        self.assertAlmostEqual(result.drained_at, 30, delta=0.5)
        self.assertLessEqual(max(result.messages), 1)

    def test_pods_are_added_and_removed(self):
        spec = small_spec()
        result = sim.Cluster(spec, sim.pod_model(spec, FIGURES), sim.Scenario(
            "s", "llm-worker", "t", [(0, 8, None, "t")], 2000)).run()
        self.assertEqual(result.peak(), (4, sim.HPA_PHASE_S))  # ceil(8 / 2) at the first sync
        # New pods consume after 2 + 3 s: 8 tasks on 4 pods take 2 rounds.
        self.assertLess(result.drained_at, 40)
        back = result.first_time(lambda r: r == 1, after=result.drained_at)
        self.assertGreaterEqual(back - result.drained_at, 60 - 15)

    def test_keda_scales_from_zero_and_back(self):
        spec = small_spec(min_replicas=0, cooldown_s=60)
        result = sim.Cluster(spec, sim.pod_model(spec, FIGURES), sim.Scenario(
            "s", "llm-worker", "t", [(0, 1, None, "t")], 1000)).run()
        self.assertEqual(result.replicas[0], 0)  # idle at t = -60: scaled to zero during warm-up
        self.assertEqual(result.peak()[0], 1)
        self.assertIsNotNone(result.drained_at)
        self.assertEqual(result.replicas[-1], 0)

    def test_a_trigger_on_another_queue_reads_nothing(self):
        trigger = Trigger("rabbitmq", "queue-length", "AverageValue", 2, 0, queue_pattern="other")
        spec = small_spec(triggers=(trigger,))
        result = sim.Cluster(spec, sim.pod_model(spec, FIGURES), sim.Scenario(
            "s", "llm-worker", "t", [(0, 8, None, "t")], 300)).run()
        self.assertEqual(result.peak()[0], 1)


if __name__ == "__main__":
    unittest.main()
