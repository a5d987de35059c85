"""Counters and histograms recorded as plain numbers, rendered for Prometheus at scrape time.

prometheus_client's own ``Counter`` and ``Histogram`` children take a lock and scan their
buckets on every call: ~8 µs of CPU per proxied request (issue 17). The data plane records
from its one event-loop thread, so here a counter is an ``int`` in a dict keyed by its label
values, and a histogram a list (one count per bucket, then the sum) whose bucket is found by
``bisect`` on the bounds, precomputed once. ``Tallies`` is a prometheus_client collector:
registered on a registry, it yields at scrape time the same families, samples, label names,
``le`` strings and ``_created`` stamps as the library's own metrics would
(``tests/unit/test_metrics_render.py`` pins the text).

Guarantees:

* Recording takes no lock and, once a series exists, allocates nothing. It is meant for one
  thread (the event loop). A scrape from another thread is safe: it reads copies made by
  ``dict.copy`` and ``list`` (single C calls under the GIL), so it never sees a dict change
  size; a histogram's sum may then be one observation ahead of its counts.
* Each metric makes at most ``max_series`` label sets; later ones share one series whose
  labels are all ``OVERFLOW``, and a warning is logged once per metric. Series made with
  ``touch`` (a fixed set exported at 0 from the start) do not count against the cap.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

OVERFLOW = "_overflow"  # the labels of a metric's series once it is over its cap

log = logging.getLogger("signing_proxy.metrics")

Labels = tuple[str, ...]
V = TypeVar("V")


class _Tally(Generic[V]):
    """One metric: its label sets, each with its value and the time it was made."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], max_series: int) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.values: dict[Labels, V] = {}
        self.created: dict[Labels, float] = {}
        self._max_series = max_series
        self._made = 0
        self._warned = False
        self._overflow = tuple(OVERFLOW for _ in self.labelnames)

    def _zero(self) -> V:
        raise NotImplementedError

    def _make(self, labels: Labels) -> None:
        self.created[labels] = time.time()  # first: a scrape reading ``values`` finds its stamp
        self.values[labels] = self._zero()

    def _admit(self, labels: Labels) -> Labels:
        """The key ``labels`` (not yet a series) are recorded under, its series made."""
        if self._made < self._max_series:
            self._made += 1
            self._make(labels)
            return labels
        if not self._warned:
            self._warned = True
            log.warning("metric series cap reached", extra={"metric": self.name})
        if self._overflow not in self.values:
            self._make(self._overflow)
        return self._overflow

    def touch(self, labels: Labels) -> None:
        """Export ``labels`` from now on, at zero if never recorded (outside the cap)."""
        if labels not in self.values:
            self._make(labels)

    def series(self) -> int:
        return len(self.values)

    def _snapshot(self) -> tuple[dict[Labels, V], dict[Labels, float]]:
        values = self.values.copy()  # then the stamps: each key copied was stamped before it
        return values, self.created.copy()

    def empty(self) -> Metric:
        raise NotImplementedError

    def family(self) -> Metric:
        raise NotImplementedError


class CounterTally(_Tally[int]):
    kind = "counter"

    def _zero(self) -> int:
        return 0

    def inc(self, labels: Labels) -> None:
        try:
            self.values[labels] += 1
        except KeyError:
            self.values[self._admit(labels)] += 1

    def empty(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def family(self) -> CounterMetricFamily:
        family = self.empty()
        values, created = self._snapshot()
        for labels, value in values.items():
            family.add_metric(labels, float(value), created=created[labels])
        return family


class HistogramTally(_Tally[list[float]]):
    """Buckets as prometheus_client counts them: ``amount <= bound``, the first that holds;
    above the last bound, only ``+Inf``. The list holds one count per bucket, then the sum."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        max_series: int,
        bounds: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames, max_series)
        finite = tuple(float(bound) for bound in bounds)
        if not finite or list(finite) != sorted(set(finite)) or finite[-1] == float("inf"):
            raise ValueError(f"{name}: bounds must be finite, increasing and not empty")
        self.bounds = finite
        go = [floatToGoString(bound) for bound in finite]  # type: ignore[no-untyped-call]
        self._le: tuple[str, ...] = (*go, "+Inf")  # prometheus_client's own spelling of each bound

    def _zero(self) -> list[float]:
        return [0.0] * (len(self._le) + 1)

    def observe(self, labels: Labels, amount: float) -> None:
        try:
            state = self.values[labels]
        except KeyError:
            state = self.values[self._admit(labels)]
        state[bisect_left(self.bounds, amount)] += 1
        state[-1] += amount

    def empty(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def family(self) -> HistogramMetricFamily:
        family = self.empty()
        values, created = self._snapshot()
        for labels, live in values.items():
            state = list(live)
            cumulative, buckets = 0.0, []
            for le, count in zip(self._le, state[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(labels, buckets, state[-1])
            named = dict(zip(self.labelnames, labels, strict=True))
            family.add_sample(self.name + "_created", named, created[labels])
        return family


class Tallies:
    """A prometheus_client collector over its tallies, yielded in the order they were made."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._tallies: list[_Tally[int] | _Tally[list[float]]] = []

    def counter(self, name: str, documentation: str, labelnames: Sequence[str]) -> CounterTally:
        tally = CounterTally(name, documentation, labelnames, self.max_series)
        self._tallies.append(tally)
        return tally

    def histogram(
        self, name: str, documentation: str, labelnames: Sequence[str], bounds: Sequence[float]
    ) -> HistogramTally:
        tally = HistogramTally(name, documentation, labelnames, self.max_series, bounds)
        self._tallies.append(tally)
        return tally

    def series(self) -> int:
        """Label sets made, over every tally (overflow series included)."""
        return sum(tally.series() for tally in self._tallies)

    def describe(self) -> Iterator[Metric]:  # the names the registry checks for duplicates
        for tally in self._tallies:
            yield tally.empty()

    def collect(self) -> Iterator[Metric]:
        for tally in list(self._tallies):
            yield tally.family()
