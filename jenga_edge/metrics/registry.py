"""A small thread-safe metrics registry, rendered in the Prometheus text format.

Stdlib only (no prometheus_client on gateways). Three metric kinds, rendered in
the Prometheus text exposition format 0.0.4:

    Counter    monotonically increasing, `inc(n=1, **labels)`
    Gauge      `set(value, **labels)`, or a callback evaluated at scrape time
    Histogram  fixed buckets, `observe(seconds)`; exposes cumulative
               `_bucket{le=...}` (ending in `+Inf`), `_sum` and `_count`

`inc` is meant to be called once per batch with a count, not once per event:
it is a dict lookup and an add under a per-metric lock. Label values are checked
(see `no_ip_labels`) only the first time a label combination is seen, so the
check costs nothing on the hot path. The value argument of inc/set/observe is
positional-only, so any label name (even `n` or `value`) can be passed by keyword.

The agent's own metrics are in agent.py; the endpoint in server.py.
"""

from __future__ import annotations

import bisect
import collections
import ipaddress
import itertools
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypedDict, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

# Batch latency buckets, seconds: 50 µs .. 1 s. A batch of a few hundred events
# through a small ONNX graph takes well under a millisecond on a gateway CPU.
BATCH_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

LabelCheck = Callable[[str, str], None]
LabelValues = tuple[str, ...]

_V = TypeVar("_V")  # what one series holds
_S = TypeVar("_S")  # what series() shows of it


class HistogramSeries(TypedDict):
    """One histogram series as `Histogram.series` gives it."""

    buckets: list[tuple[float, int]]  # (le, cumulative count), ending with +Inf
    sum: float
    count: int


_HistogramState = list[Any]  # [bucket counts, sum, count]
_MetricT = TypeVar("_MetricT", bound="_Metric[Any, Any]")


# ----------------------------------------------------------------- formatting


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as the exposition format writes it (`+Inf`, `NaN`, ...)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _label_text(names: tuple[str, ...], values: tuple[str, ...], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def no_ip_labels(name: str, value: str) -> None:
    """Label check used by AgentMetrics: an IP address is never a label value.

    Two reasons. Cardinality: every distinct label value is a new time series
    kept forever by the agent and by Prometheus, and the addresses seen by a
    gateway are unbounded (one scan is enough to make thousands). Privacy: the
    metrics endpoint is scraped, forwarded and stored far more widely than
    alerts are, and an address is personal data in many jurisdictions. Addresses
    belong in alerts, not in metrics.
    """
    text = value.strip().strip("[]")
    for parse in (ipaddress.ip_address, ipaddress.ip_interface):
        try:
            parse(text)
        except ValueError:
            continue
        raise ValueError(
            f"metric label {name}={value!r} is an IP address; IP addresses are "
            "never used as label values (unbounded cardinality, personal data)"
        )


# -------------------------------------------------------------------- metrics


class _Metric(Generic[_V, _S]):
    """A metric's name, help and label names, and its series by label values."""

    kind = "untyped"
    _reserved: tuple[str, ...] = ()

    def __init__(self, name: str, help: str, labelnames: Iterable[str] = (), *, label_check: LabelCheck | None = None):
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}: expected [a-zA-Z_:][a-zA-Z0-9_:]*")
        names = tuple(labelnames)
        for ln in names:
            if not isinstance(ln, str) or not _LABEL_NAME.match(ln) or ln.startswith("__"):
                raise ValueError(
                    f"{name}: invalid label name {ln!r}: expected [a-zA-Z_][a-zA-Z0-9_]* not starting with '__'"
                )
            if ln in self._reserved:
                raise ValueError(f"{name}: label name {ln!r} is reserved for a {self.kind}")
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate label names in {names}")
        self.name = name
        self.help = help
        self.labelnames = names
        self._label_check = label_check
        self._lock = threading.Lock()
        self._values: dict[LabelValues, _V] = {}

    def _key(self, labels: dict[str, str]) -> LabelValues:
        names = self.labelnames
        if len(labels) != len(names):
            raise ValueError(f"{self.name}: expected labels {list(names)}, got {sorted(labels)}")
        try:
            key = tuple([v if v.__class__ is str else str(v) for v in map(labels.__getitem__, names)])
        except KeyError:
            raise ValueError(f"{self.name}: expected labels {list(names)}, got {sorted(labels)}") from None
        if key not in self._values and self._label_check is not None:
            for n, v in zip(names, key):
                self._label_check(n, v)
        return key

    def series(self) -> dict[LabelValues, _S]:
        """A copy of {label values: value}."""
        raise NotImplementedError

    def labelled(self) -> dict[str, _S]:
        """{label value: value} for a metric with exactly one label name."""
        if len(self.labelnames) != 1:
            raise ValueError(f"{self.name}: labelled() needs exactly one label name")
        return {k[0]: v for k, v in self.series().items()}

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        lines.extend(self._sample_lines())
        return lines

    def _sample_lines(self) -> list[str]:
        raise NotImplementedError


class _Number(_Metric[float, float]):
    """A metric whose series are numbers: a counter, a gauge."""

    def series(self) -> dict[LabelValues, float]:
        """A copy of {label values: value}."""
        with self._lock:
            return dict(self._values)

    def _sample_lines(self) -> list[str]:
        values = self.series()
        if not values and not self.labelnames:
            values = {(): 0}
        return [f"{self.name}{_label_text(self.labelnames, k)} {format_value(v)}" for k, v in sorted(values.items())]


class Counter(_Number):
    """A monotonically increasing count, one series per label combination."""

    kind = "counter"

    def inc(self, n: float = 1, /, **labels: str) -> None:
        if not n >= 0:  # also rejects NaN
            raise ValueError(f"{self.name}: a counter only goes up, got inc({n!r})")
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            values = self._values
            values[key] = values.get(key, 0) + n

    def value(self, **labels: str) -> float:
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())


class Gauge(_Number):
    """A value that goes up and down; or, with `callback`, one read at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        label_check: LabelCheck | None = None,
        callback: Callable[[], float] | None = None,
    ):
        super().__init__(name, help, labelnames, label_check=label_check)
        self._callback: Callable[[], float] | None = None
        if callback is not None:
            self.set_function(callback)

    def set_function(self, callback: Callable[[], float] | None) -> None:
        """Read the value from `callback()` at scrape time (None: back to set())."""
        if callback is not None and self.labelnames:
            raise ValueError(f"{self.name}: a callback gauge cannot have labels")
        self._callback = callback

    def set(self, value: float, /, **labels: str) -> None:
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values[key] = value

    def inc(self, n: float = 1, /, **labels: str) -> None:
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values[key] = self._values.get(key, 0) + n

    def dec(self, n: float = 1, /, **labels: str) -> None:
        self.inc(-n, **labels)

    def replace(self, value: float, /, **labels: str) -> None:
        """Drop every series and set this one, atomically (an info gauge on reload)."""
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values.clear()
            self._values[key] = value

    def remove(self, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values.pop(key, None)

    def value(self, **labels: str) -> float | None:
        """The current value; a callback's result, or None if the callback fails."""
        if self._callback is not None:
            try:
                return self._callback()
            except Exception:  # noqa: BLE001 - a broken callback must not break a scrape
                return None
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0)

    def series(self) -> dict[LabelValues, float]:
        if self._callback is not None:
            value = self.value()
            return {} if value is None else {(): value}
        return super().series()

    def _sample_lines(self) -> list[str]:
        if self._callback is not None:
            value = self.value()
            if value is None:
                return []  # the callback failed: no sample rather than a wrong one
            return [f"{self.name} {format_value(value)}"]
        return super()._sample_lines()


class Histogram(_Metric[_HistogramState, HistogramSeries]):
    """Counts observations into fixed buckets; optionally keeps the last `recent`.

    `recent` (unlabelled use) keeps a bounded reservoir of the most recent
    observations so `quantile` is exact over that window instead of being
    interpolated inside a bucket.
    """

    kind = "histogram"
    _reserved = ("le",)

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Iterable[float] = BATCH_BUCKETS,
        recent: int = 0,
        label_check: LabelCheck | None = None,
    ):
        super().__init__(name, help, labelnames, label_check=label_check)
        bounds = [float(b) for b in buckets]
        if bounds and math.isinf(bounds[-1]) and bounds[-1] > 0:
            bounds.pop()  # +Inf is always added
        if not bounds:
            raise ValueError(f"{name}: a histogram needs at least one finite bucket")
        if any(math.isnan(b) or math.isinf(b) for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"{name}: buckets must be finite and strictly increasing, got {bounds}")
        self.buckets = tuple(bounds)
        self._recent: collections.deque[float] | None = collections.deque(maxlen=recent) if recent > 0 else None

    def observe(self, value: float, /, **labels: str) -> None:
        if value != value:
            raise ValueError(f"{self.name}: cannot observe NaN")
        key = self._key(labels) if labels or self.labelnames else ()
        i = bisect.bisect_left(self.buckets, value)  # first bucket with value <= le
        with self._lock:
            state = self._values.get(key)
            if state is None:
                state = self._values[key] = [[0] * (len(self.buckets) + 1), 0.0, 0]
            state[0][i] += 1
            state[1] += value
            state[2] += 1
            if self._recent is not None:
                self._recent.append(value)

    @contextmanager
    def time(self, **labels: str) -> Iterator[None]:
        """Observe the wall time (perf_counter) of a `with` block."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start, **labels)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            if self._recent is not None:
                self._recent.clear()

    def series(self) -> dict[LabelValues, HistogramSeries]:
        """{label values: {"buckets": [(le, cumulative count), ...], "sum": s, "count": n}}."""
        with self._lock:
            raw = {k: (list(s[0]), s[1], s[2]) for k, s in self._values.items()}
        out: dict[LabelValues, HistogramSeries] = {}
        for key, (counts, total, count) in raw.items():
            cumulative: list[tuple[float, int]] = []
            running = 0
            for le, c in zip((*self.buckets, math.inf), counts):
                running += c
                cumulative.append((le, running))
            out[key] = {"buckets": cumulative, "sum": total, "count": count}
        return out

    def count(self) -> int:
        with self._lock:
            n: int = sum(s[2] for s in self._values.values())
        return n

    def sum(self) -> float:
        with self._lock:
            total: float = sum(s[1] for s in self._values.values())
        return total

    def quantile(self, q: float) -> float | None:
        """Estimate the q-quantile (0..1) of what was observed; None if nothing was.

        From the reservoir of recent observations when there is one (nearest
        rank), else interpolated linearly inside the bucket, like PromQL's
        histogram_quantile (a value in the +Inf bucket reads as the top bound).
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self._recent is not None:
            with self._lock:
                recent = sorted(self._recent)
            if not recent:
                return None
            return recent[max(0, math.ceil(q * len(recent)) - 1)]
        with self._lock:
            counts = [0] * (len(self.buckets) + 1)
            for state in self._values.values():
                counts = [a + b for a, b in zip(counts, state[0])]
        total = sum(counts)
        if total == 0:
            return None
        rank, running = q * total, 0
        for i, c in enumerate(counts):
            if c and running + c >= rank:
                if i == len(self.buckets):
                    return self.buckets[-1]
                lower = self.buckets[i - 1] if i > 0 else 0.0
                return lower + (self.buckets[i] - lower) * max(0.0, rank - running) / c
            running += c
        return self.buckets[-1]

    def _sample_lines(self) -> list[str]:
        series = self.series()
        if not series and not self.labelnames:
            zero = [(le, 0) for le in (*self.buckets, math.inf)]
            series = {(): {"buckets": zero, "sum": 0.0, "count": 0}}
        lines = []
        for key, s in sorted(series.items()):
            for le, c in s["buckets"]:
                lt = _label_text(self.labelnames, key, ("le", format_value(le)))
                lines.append(f"{self.name}_bucket{lt} {c}")
            lt = _label_text(self.labelnames, key)
            lines.append(f"{self.name}_sum{lt} {format_value(s['sum'])}")
            lines.append(f"{self.name}_count{lt} {s['count']}")
        return lines


class Registry:
    """An ordered set of metrics with unique names, rendered in registration order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric[Any, Any]] = {}

    def register(self, metric: _MetricT) -> _MetricT:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name!r} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(
        self, name: str, help: str, labelnames: Iterable[str] = (), *, label_check: LabelCheck | None = None
    ) -> Counter:
        return self.register(Counter(name, help, labelnames, label_check=label_check))

    def gauge(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        label_check: LabelCheck | None = None,
        callback: Callable[[], float] | None = None,
    ) -> Gauge:
        return self.register(Gauge(name, help, labelnames, label_check=label_check, callback=callback))

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Iterable[float] = BATCH_BUCKETS,
        recent: int = 0,
        label_check: LabelCheck | None = None,
    ) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets=buckets, recent=recent, label_check=label_check))

    def get(self, name: str) -> _Metric[Any, Any]:
        with self._lock:
            return self._metrics[name]

    def metrics(self) -> list[_Metric[Any, Any]]:
        with self._lock:
            return list(self._metrics.values())

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        for metric in self.metrics():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n" if lines else ""
