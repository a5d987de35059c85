"""``proxy.tallies``: buckets exactly as prometheus_client counts them, the cap, ``touch``,
and a scrape from another thread while series are being made."""

from __future__ import annotations

import math
import random
import threading

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from proxy.metrics import Metrics
from proxy.tallies import OVERFLOW, Tallies

BOUNDS = (0.0001, 0.00025, 0.001, 0.5, 1.0, 10.0)


def _amounts() -> list[float]:
    rng = random.Random(17)
    edges = [x for b in BOUNDS for x in (b, math.nextafter(b, 0.0), math.nextafter(b, math.inf))]
    return edges + [0.0, -1.0, 11.0, 1e9] + [rng.uniform(0, 12) for _ in range(500)]


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    ]


def test_a_histogram_buckets_and_sums_as_prometheus_client_does() -> None:
    oracle = CollectorRegistry()
    library = Histogram("h_seconds", "doc", ["venue"], buckets=BOUNDS, registry=oracle)
    ours = CollectorRegistry()
    tallies = Tallies(max_series=10)
    tally = tallies.histogram("h_seconds", "doc", ["venue"], BOUNDS)
    ours.register(tallies)
    for amount in _amounts():
        library.labels("coinex").observe(amount)
        tally.observe(("coinex",), amount)
    assert _samples(ours) == _samples(oracle)


def test_a_fixed_series_made_at_zero_is_outside_the_cap() -> None:
    metrics = Metrics(max_series=2)
    metrics.connection_refused("header_timeout")
    metrics.connection_refused("body_timeout")
    metrics.connection_refused("no_request")  # the cap is reached, but this series exists
    text = metrics.render().decode()
    assert 'signing_proxy_connections_refused_total{reason="no_request"} 1.0' in text
    assert OVERFLOW not in text


def test_a_scrape_in_another_thread_never_sees_a_table_change_size() -> None:
    metrics = Metrics()
    errors: list[BaseException] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                metrics.render()
            except BaseException as error:  # reported below, by the main thread
                errors.append(error)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for number in range(5000):
            metrics.request("coinex", f"account{number}", "forwarded")
            metrics.added(f"venue{number}", 0.001)
    finally:
        done.set()
        scraper.join()
    assert errors == []
    assert generate_latest(metrics.registry).count(b"signing_proxy_requests_total{") == 5000
