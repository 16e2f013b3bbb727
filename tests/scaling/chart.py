"""One PNG per rehearsed scenario: replicas and queue over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim import Result  # noqa: E402


def draw(result: Result, outcome: list, path: Path) -> None:
    minutes = [t / 60 for t in result.t]
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    ax.step(minutes, result.replicas, where="post", color="tab:blue", linewidth=2, label="spec.replicas (HPA)")
    ax.step(minutes, result.ready, where="post", color="tab:green", linewidth=1, linestyle="--", label="Ready pods")
    ax.axhline(result.spec.max_replicas, color="tab:gray", linewidth=0.8, linestyle=":",
               label=f"maxReplicaCount {result.spec.max_replicas}")
    ax.set_xlabel("minutes since the load arrived")
    ax.set_ylabel("replicas")
    ax.set_ylim(0, max(result.spec.max_replicas, max(result.replicas)) + 1)
    ax.grid(alpha=0.3)
    queue = ax.twinx()
    queue.plot(minutes, result.messages, color="tab:orange", linewidth=1, label="messages (ready + unacked)")
    queue.set_ylabel("messages", color="tab:orange")
    queue.set_ylim(bottom=0, top=max(1, max(result.messages)) * 1.1)
    if result.drained_at is not None:
        ax.axvline(result.drained_at / 60, color="tab:red", linewidth=0.8, label="queue drained")
    lines = ax.get_legend_handles_labels()
    more = queue.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)
    verdict = "met" if all(met for met, _, _ in outcome) else "NOT MET"
    s = result.scenario
    ax.set_title(f"{result.spec.overlay} / {s.name}: {s.title} - {verdict}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
