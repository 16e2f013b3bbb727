"""Scaling rehearsal: the rendered KEDA ScaledObjects and Deployments, driven
through a simulated cluster by figures measured from the real release
workers, against the outcomes k8s/README.md promises.

Entry point: scripts/scaling-rehearsal (see --help). Exit status 0 when every
expected outcome is met, 1 when one is not, 2 when the rehearsal cannot run.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import figures as figs  # noqa: E402
import manifests  # noqa: E402
import scenarios  # noqa: E402
import sim  # noqa: E402
from promql import QueryError  # noqa: E402
from scenarios import mmss  # noqa: E402

DEFAULT_OVERLAYS = ["base", "prod"]


def mib(b):
    return f"{b / 2**20:.0f}Mi"


# --- figures ------------------------------------------------------------------


def get_figures(args) -> tuple[dict, str]:
    cache = figs.cache_path(ROOT)
    if args.measure or not args.no_measure:
        cached = None if args.measure else figs.load(cache)
        if cached:
            return cached, f"cache {cache}"
        import measure
        target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "ml-workers" / "target"))
        models = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache" / "ml-workers" / "models"))
        print("==> measuring the release workers (--measure, or no cached figures for this machine and these sources)")
        t0 = time.monotonic()
        measured = measure.measure(ROOT, target, models, skip_build=args.skip_build)
        figs.save(cache, measured)
        source = f"measured now in {time.monotonic() - t0:.0f} s, cached as {cache}"
        if args.save_figures:
            figs.save(figs.COMMITTED, measured)
            source += f" and written to {figs.COMMITTED.relative_to(ROOT)}"
        return measured, source
    cached = figs.load(cache)
    if cached:
        return cached, f"cache {cache}"
    committed = figs.load(figs.COMMITTED)
    if committed:
        return committed, (f"committed {figs.COMMITTED.relative_to(ROOT)} "
                           f"(no cached figures for this machine and these sources: {cache.name})")
    raise SystemExit(f"no figures: neither {cache} nor {figs.COMMITTED} (run scripts/scaling-rehearsal --measure)")


def derive(figures: dict) -> dict:
    """Adds the 30-minute transcription: its CPU and times extrapolated
    linearly (whisper works through the audio window by window) from the two
    measured lengths; its memory is the longer sample's, not extrapolated
    (what grows between the two samples is not known to grow further)."""
    out = copy.deepcopy(figures)
    tasks = out["workers"]["whisper-worker"]["tasks"]
    short, long = tasks["clip"], tasks["long"]
    span = long["audio_s"] - short["audio_s"]
    if span > 0:
        extra = scenarios.LONGEST_AUDIO_S - long["audio_s"]

        def grow(key):
            slope = max(0.0, (long[key] - short[key]) / span)
            return long[key] + slope * extra

        tasks[f"long-{scenarios.LONGEST_AUDIO_S}s"] = {
            **long, "audio_s": scenarios.LONGEST_AUDIO_S, "count": 0, "extrapolated": True,
            "cpu_s_per_task": grow("cpu_s_per_task"), "per_task_s": grow("per_task_s"),
            "runqueue_s_per_task": grow("runqueue_s_per_task"), "task_s_per_task": grow("task_s_per_task"),
            "model_s_per_task": grow("model_s_per_task"),
        }
    return out


def print_figures(figures: dict, source: str):
    print(f"==> measured figures ({source})")
    for line in figs.describe(figures, ROOT):
        print(f"    {line}")
    print(f"    {figures['method']}")
    print("    (per task: wall time of the run / tasks; in model: share of the worker's task time in model calls; "
          "CPU-wait: time its threads were runnable but had no CPU, i.e. what the busy host took)")
    print(f"    {'worker':<15} {'threads':>7} {'ready':>7} {'start CPU-s':>11} {'idle RSS':>9} "
          f"{'idle cores':>10} {'model copy':>10}  settings")
    for worker, w in figures["workers"].items():
        settings = ", ".join(f"{k}={v}" for k, v in w["settings"].items())
        print(f"    {worker:<15} {w['threads']:>7} {w['ready_s']:>6.2f}s {w['startup_cpu_s']:>11.2f} "
              f"{mib(w['idle_rss']):>9} {w['idle_cores']:>10.3f} {w['model_copy_s']:>9.2f}s  {settings}")
    print(f"    {'task':<28} {'n':>4} {'per task':>9} {'in model':>8} {'busy cores':>10} {'CPU-s/task':>10} "
          f"{'CPU-wait/task':>13} {'peak RSS':>9} {'settled':>8}")
    for worker, w in figures["workers"].items():
        for kind, t in w["tasks"].items():
            label = f"{worker}/{kind}" + (" (extrap.)" if t.get("extrapolated") else "")
            n = "-" if t.get("extrapolated") else t["count"]
            extra = f"  audio {t['audio_s']:g} s" if "audio_s" in t else ""
            share = t["model_s_per_task"] / t["task_s_per_task"] if t["task_s_per_task"] else 0
            print(f"    {label:<28} {n:>4} {t['per_task_s']:>8.3f}s {share:>8.0%} {t['busy_cores']:>10.2f} "
                  f"{t['cpu_s_per_task']:>10.3f} {t.get('runqueue_s_per_task', 0):>12.3f}s "
                  f"{mib(t['peak_rss']):>9} {mib(t['settled_rss']):>8}{extra}")
        if worker == "whisper-worker" and "clip" in w["tasks"] and "long" in w["tasks"]:
            c, l = w["tasks"]["clip"], w["tasks"]["long"]
            growth = (l["peak_rss"] - c["peak_rss"]) / max(l["audio_s"] - c["audio_s"], 1e-6) * 60
            print(f"    {'':<28} peak RSS {growth / 2**20:+.0f}Mi per audio minute between the two samples "
                  f"(not extrapolated: the 30-minute task keeps the {l['audio_s']:g}-s sample's memory)")
        la = w["loadavg_before"] + w["loadavg_after"]
        print(f"    {'':<28} load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} before {worker}, "
              f"{la[3]:.2f} / {la[4]:.2f} / {la[5]:.2f} after")


# --- one scenario -------------------------------------------------------------


def print_spec(spec, model):
    r = spec.resources
    print(f"  {spec.worker}: replicas {spec.min_replicas}-{spec.max_replicas}, "
          f"requests {r.cpu_request:g} CPU / {mib(r.memory_request or 0)}, "
          f"limits {r.cpu_limit:g} CPU / {mib(r.memory_limit or 0)}, "
          f"{spec.threads} threads ({spec.threads_source}), concurrency {spec.concurrency}, prefetch {spec.prefetch}")
    for t in spec.triggers:
        print(f"    trigger {t.describe()}")
    up, down = spec.scale_up, spec.scale_down
    fmt = lambda rules: ", ".join(f"{p.type} {p.value}/{p.period_s}s" for p in rules.policies)  # noqa: E731
    print(f"    behavior: up {fmt(up)} ({up.select}, window {up.stabilization_s}s); "
          f"down {fmt(down)} ({down.select}, window {down.stabilization_s}s)")
    if spec.min_replicas >= 1 and spec.idle_replicas is None:
        print(f"    KEDA activation: not in play (minReplicaCount {spec.min_replicas} >= 1, no idleReplicaCount; "
              f"cooldownPeriod {spec.cooldown_s}s only applies to scaling to zero)")
    print(f"    Prometheus: {spec.scrape_source}" + (f", every {spec.scrape_interval_s}s" if spec.scrape_interval_s else ""))
    start = sim.SCHEDULE_S + model.init_s + model.ready_s
    print(f"    pod: consuming {start:.1f} s after creation, {model.startup_cores:.2f} cores while loading; "
          + "; ".join(f"{p.kind}: {p.duration_s:.2f} s per task at {p.busy_cores:.2f} cores"
                      for p in model.profiles.values()))


def print_timeline(result, verbose):
    print("    t       replicas  ready  msgs   trigger readings -> proposals                      -> desired (why)")
    shown_first = False
    for s in result.syncs:
        if s.t < 0:
            continue
        changed = s.desired != s.current
        if not (verbose or changed or not shown_first):
            continue
        shown_first = True
        i = result.t.index(s.t) if s.t in result.t else None
        ready = result.ready[i] if i is not None else "?"
        msgs = result.messages[i] if i is not None else "?"
        readings = ", ".join(f"{name} {text}" + (f"->{p}" if p is not None else "")
                             for name, (text, p) in s.readings.items())
        print(f"    {mmss(s.t):>6}  {s.current:>3} -> {s.desired:<3} {ready:>4} {msgs:>6}   {readings}  ({s.reason})")
    changes, previous = [], None
    for t, r in zip(result.t, result.replicas):
        if r != previous and t >= 0 or previous is None:
            changes.append(f"{mmss(max(t, 0))} {r}")
        previous = r
    print(f"    replicas: {', '.join(changes)}")
    print(f"    queue drained at {mmss(result.drained_at)}; simulated until {mmss(result.t[-1])}")


def run_scenario(spec, figures, scenario, args):
    model = sim.pod_model(spec, figures["workers"][spec.worker])
    result = sim.Cluster(spec, model, scenario).run()
    outcome = [check(result) for check in scenario.checks]
    print(f"\n  -- {spec.overlay} / {scenario.name}: {scenario.title}")
    if scenario.note:
        print(f"    ({scenario.note})")
    print_timeline(result, args.verbose)
    for met, expected, seen in outcome:
        print(f"    {'ok     ' if met else 'NOT MET'}  expected {expected}; seen {seen}")
    if not args.no_charts:
        import chart
        path = Path(args.out) / f"{spec.overlay}-{scenario.name}.png"
        chart.draw(result, outcome, path)
        print(f"    chart: {path}")
    return all(met for met, _, _ in outcome)


def self_test() -> bool:
    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py", top_level_dir=str(HERE))
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=0).run(suite)
    return result.wasSuccessful()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/scaling-rehearsal",
        description="Rehearse KEDA + HPA scaling of the rendered manifests with figures measured from the workers.")
    parser.add_argument("--overlay", action="append", help=f"base or an overlay name (default: {' '.join(DEFAULT_OVERLAYS)})")
    parser.add_argument("--scenario", action="append", help="run only these scenarios (default: all)")
    parser.add_argument("--measure", action="store_true", help="measure the release workers now (builds them)")
    parser.add_argument("--no-measure", action="store_true",
                        help="never measure: the cached figures, else the committed tests/scaling/figures.json")
    parser.add_argument("--skip-build", action="store_true", help="with --measure: use the release binaries as built")
    parser.add_argument("--save-figures", action="store_true",
                        help="with a measurement: also write tests/scaling/figures.json (to commit)")
    parser.add_argument("--k8s-dir", default=os.environ.get("DEPLOY_K8S_DIR", str(ROOT / "k8s")),
                        help="the kustomize tree (default: $DEPLOY_K8S_DIR, else k8s/)")
    parser.add_argument("--out", default=str(figs.cache_dir() / "charts"), help="folder for the PNG charts")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every HPA sync, not only the changes")
    args = parser.parse_args(argv)
    if args.measure and args.no_measure:
        parser.error("--measure and --no-measure exclude each other")

    print("==> self-test of the HPA/KEDA model (tests/scaling/test_*.py)")
    if not self_test():
        print("ERROR: the model's own tests fail; not rehearsing")
        return 2

    figures, source = get_figures(args)
    figures = derive(figures)
    print_figures(figures, source)
    print("==> assumptions")
    for line in sim.assumptions():
        print(f"    {line}")

    chosen = scenarios.all_scenarios(figures["workers"])
    names = {s.name for s in chosen}
    for name in args.scenario or []:
        if name not in names:
            parser.error(f"unknown scenario {name!r} (one of {', '.join(sorted(names))})")
    if args.scenario:
        chosen = [s for s in chosen if s.name in args.scenario]

    summary = []
    for overlay in args.overlay or DEFAULT_OVERLAYS:
        try:
            specs = manifests.load(Path(args.k8s_dir), overlay)
        except manifests.ManifestError as e:
            print(f"ERROR: {e}")
            return 2
        print(f"\n==> {overlay}: kubectl kustomize {Path(args.k8s_dir) / manifests.overlay_path(overlay)}")
        for worker in sorted({s.worker for s in chosen}):
            print_spec(specs[worker], sim.pod_model(specs[worker], figures["workers"][worker]))
        for scenario in chosen:
            try:
                met = run_scenario(specs[scenario.worker], figures, scenario, args)
            except (QueryError, manifests.ManifestError) as e:
                print(f"ERROR: {overlay} / {scenario.name}: {e}")
                return 2
            summary.append((overlay, scenario.name, met))

    print("\n==> outcomes")
    for overlay, name, met in summary:
        print(f"    {'met    ' if met else 'NOT MET'}  {overlay} / {name}")
    failed = [s for s in summary if not s[2]]
    if failed:
        print(f"{len(failed)} of {len(summary)} rehearsed outcomes not met")
        return 1
    print(f"all {len(summary)} rehearsed outcomes met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
