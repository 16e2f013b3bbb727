"""A small Prometheus: scraped samples and the few PromQL forms KEDA
prometheus triggers here use.

Supported: `AGG(selector)` and `AGG(rate|irate|increase(selector[range]))`
with AGG one of sum, avg, max, min, count, and a bare selector that yields a
single series. Anything else raises `QueryError`, so a trigger the rehearsal
cannot evaluate fails loudly instead of reading as 0.

Semantics restated from Prometheus (promql/functions.go, engine.go):
instant selectors take the newest sample within the 5-minute lookback that
is not a staleness marker (a target that disappears gets one at its next
scrape); `rate` is `extrapolatedRate` (counter resets corrected,
extrapolated towards the range edges by at most half a sample interval).
"""

from __future__ import annotations

import math
import re

LOOKBACK_S = 300.0
STALE = float("nan")


class QueryError(Exception):
    pass


_SELECTOR = r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^}]*)\})?"
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _matchers(text: str | None):
    out = []
    text = (text or "").strip()
    pos = 0
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if not m:
            raise QueryError(f"cannot parse label matchers {{{text}}}")
        out.append((m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")))
        pos = m.end()
    return out


def _range_s(text: str) -> float:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise QueryError(f"cannot parse range [{text}]")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def parse(query: str):
    """(aggregation or None, function or None, metric, matchers, range_s)."""
    q = " ".join(query.split())
    m = re.fullmatch(r"(sum|avg|max|min|count)\s*\((.*)\)", q)
    agg, inner = (m.group(1), m.group(2).strip()) if m else (None, q)
    m = re.fullmatch(r"(rate|irate|increase)\s*\(\s*" + _SELECTOR + r"\s*\[\s*([0-9a-z]+)\s*\]\s*\)", inner)
    if m:
        return agg, m.group(1), m.group(2), _matchers(m.group(3)), _range_s(m.group(4))
    m = re.fullmatch(_SELECTOR, inner)
    if m:
        return agg, None, m.group(1), _matchers(m.group(2)), 0.0
    raise QueryError(f"the rehearsal cannot evaluate {query!r} (only AGG(selector) and AGG(rate(selector[range])))")


def _selects(labels: dict, matchers) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


def extrapolated_rate(samples: list[tuple[float, float]], start: float, end: float, is_rate: bool) -> float | None:
    """Prometheus's extrapolatedRate for a counter over (start, end]."""
    if len(samples) < 2:
        return None
    result = samples[-1][1] - samples[0][1]
    previous = samples[0][1]
    for _, v in samples[1:]:
        if v < previous:  # counter reset
            result += previous
        previous = v
    first_t, first_v = samples[0]
    last_t = samples[-1][0]
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    to_start, to_end = first_t - start, end - last_t
    average_gap = sampled / (len(samples) - 1)
    threshold = average_gap * 1.1
    interval = sampled
    if to_start >= threshold:
        to_start = average_gap / 2
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    interval += to_start
    if to_end >= threshold:
        to_end = average_gap / 2
    interval += to_end
    result *= interval / sampled
    if is_rate:
        result /= end - start
    return result


class Tsdb:
    """Series keyed by (metric, sorted labels), each a list of (t, value)."""

    def __init__(self, exported=()):
        self.series: dict[tuple, list[tuple[float, float]]] = {}
        self.exported = set(exported)  # names the targets export (queried before the first scrape too)

    def add(self, t: float, metric: str, labels: dict, value: float) -> None:
        key = (metric, tuple(sorted(labels.items())))
        self.series.setdefault(key, []).append((t, value))

    def mark_stale(self, t: float, predicate) -> None:
        """Staleness markers for the series of a target that went away."""
        for key, samples in self.series.items():
            if predicate(dict(key[1])) and samples and not math.isnan(samples[-1][1]):
                samples.append((t, STALE))

    def metrics(self) -> set[str]:
        return self.exported | {k[0] for k in self.series}

    def query(self, query: str, now: float) -> float | None:
        """The query's single value at `now`; None for an empty result."""
        agg, function, metric, matchers, range_s = parse(query)
        if metric not in self.metrics():
            raise QueryError(f"{query!r}: the simulated workers export no {metric}")
        values = []
        for (name, labels), samples in self.series.items():
            if name != metric or not _selects(dict(labels), matchers):
                continue
            if function is None:
                recent = [(t, v) for t, v in samples if now - LOOKBACK_S < t <= now]
                if recent and not math.isnan(recent[-1][1]):
                    values.append(recent[-1][1])
                continue
            window = [(t, v) for t, v in samples if now - range_s < t <= now and not math.isnan(v)]
            if function == "irate":
                if len(window) >= 2:
                    (t1, v1), (t2, v2) = window[-2:]
                    values.append((v2 - v1 if v2 >= v1 else v2) / (t2 - t1))
                continue
            value = extrapolated_rate(window, now - range_s, now, is_rate=function == "rate")
            if value is not None:
                values.append(value)
        if not values:
            return None
        if agg is None:
            if len(values) > 1:
                raise QueryError(f"{query!r} returns {len(values)} series; KEDA needs one value")
            return values[0]
        return {"sum": sum, "max": max, "min": min, "avg": lambda v: sum(v) / len(v), "count": len}[agg](values)
