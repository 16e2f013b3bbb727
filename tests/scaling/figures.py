"""Where the measured figures come from: this machine's cache, or the
committed file, keyed so a stale measurement is never taken for a fresh one.

Cache: $ML_WORKERS_CACHE/scaling-rehearsal/figures-<key>.json, the key a hash
of the CPU model, the CPU count, the worker sources (git tree of crates/ and
Cargo.lock, plus any uncommitted change to them), the build flags
(.cargo/config.toml) and the measuring code itself. The committed
tests/scaling/figures.json is the fallback: it records the CPU, the load and
the commit it was measured on, and the rehearsal says when it is not this
machine's.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMITTED = HERE / "figures.json"
SCHEMA = 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _git(root: Path, *args) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def sources(root: Path) -> dict:
    """The worker sources the figures depend on, as git sees them."""
    tree = _git(root, "rev-parse", "HEAD:crates").strip()
    lock = _git(root, "rev-parse", "HEAD:Cargo.lock").strip()
    diff = _git(root, "diff", "HEAD", "--", "crates", "Cargo.lock", "Cargo.toml", ".cargo")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", "crates")
    dirty = bool(diff.strip() or untracked.strip())
    return {
        "commit": _git(root, "rev-parse", "--short=12", "HEAD").strip(),
        "crates_tree": tree,
        "cargo_lock": lock,
        "dirty": dirty,
        "diff_sha256": hashlib.sha256((diff + untracked).encode()).hexdigest()[:16] if dirty else None,
    }


def key(root: Path) -> str:
    h = hashlib.sha256()
    src = sources(root)
    for part in (cpu_model(), str(cpus()), src["crates_tree"], src["cargo_lock"], str(src["diff_sha256"])):
        h.update(part.encode() + b"\0")
    for path in (root / ".cargo" / "config.toml", HERE / "measure.py"):
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("ML_WORKERS_CACHE", Path.home() / ".cache" / "ml-workers"))
    return base / "scaling-rehearsal"


def cache_path(root: Path) -> Path:
    return cache_dir() / f"figures-{key(root)}.json"


def load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("schema") == SCHEMA else None


def save(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def describe(figures: dict, root: Path) -> list[str]:
    """Where and when the figures were measured, and how that differs from here."""
    host, src = figures["host"], figures["sources"]
    lines = [f"measured {figures['measured_at']} on {host['cpu_model']} ({host['cpus']} CPUs), "
             f"load average {' / '.join(f'{x:.2f}' for x in host['loadavg_before'])} before, "
             f"{' / '.join(f'{x:.2f}' for x in host['loadavg_after'])} after",
             f"workers at commit {src['commit']}{' with uncommitted changes' if src['dirty'] else ''} "
             f"(crates tree {src['crates_tree'][:12]})"]
    here = sources(root)
    if host["cpu_model"] != cpu_model() or host["cpus"] != cpus():
        lines.append(f"NOTE: not this machine ({cpu_model()}, {cpus()} CPUs)")
    if src["crates_tree"] != here["crates_tree"] or src["dirty"] != here["dirty"]:
        lines.append("NOTE: the worker sources changed since (re-measure with --measure)")
    return lines
