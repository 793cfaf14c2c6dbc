"""The load generator itself: pacing, bounds and failure accounting, against real local servers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support.loadgen import LoadGenerator, percentile
from tests.support.nginx import NamedServer, free_port


def test_counts_successes_and_bodies(upstream_factory: Callable[[str], NamedServer]) -> None:
    server = upstream_factory("A")
    with LoadGenerator(f"http://{server.address}/", rate=200, max_seconds=30) as load:
        time.sleep(1)
    report = load.stop()
    assert report.failed == 0 and report.failures == [] and report.downtime_seconds == 0
    assert report.first_failure is None and report.last_failure is None
    assert 100 <= report.total <= 260  # paced: never more than the schedule allows
    assert report.bodies == {"A": report.total}
    assert 0 < report.p50 <= report.p99 < 5
    assert load.stop() is report


def test_bounded_by_count_and_time(upstream_factory: Callable[[str], NamedServer]) -> None:
    server = upstream_factory("A")
    load = LoadGenerator(f"http://{server.address}/", rate=1000, max_requests=50).start()
    time.sleep(0.5)
    assert load.stop().total == 50
    started = time.monotonic()
    load = LoadGenerator(f"http://{server.address}/", rate=50, max_seconds=0.4).start()
    time.sleep(1)
    report = load.stop()
    assert time.monotonic() - started < 3
    assert report.total == 20  # requests scheduled at 0, 0.02, ... 0.38 s


def test_failures_and_downtime(upstream_factory: Callable[[str], NamedServer]) -> None:
    server = upstream_factory("A")
    with LoadGenerator(f"http://{server.address}/", rate=100, max_seconds=30) as load:
        time.sleep(0.5)
        server.stop()
        time.sleep(0.5)
    report = load.stop()
    assert report.failed > 20 and report.total - report.failed > 20
    assert report.first_failure is not None and report.first_failure > 0.4  # the stop came at 0.5 s
    assert report.last_failure is not None and report.last_failure > report.first_failure
    assert 0 < report.downtime_seconds <= report.elapsed - report.first_failure
    _t, status, error = report.failures[0]
    assert status is None and ("Connection" in error or "refused" in error)


def test_dead_port_is_all_failures() -> None:
    report = LoadGenerator(f"http://127.0.0.1:{free_port()}/", rate=100, max_requests=30).start()
    time.sleep(0.5)
    result = report.stop()
    assert (result.total, result.failed) == (30, 30)
    assert result.downtime_seconds > 0.2  # 30 requests at 100/s: one run of failures over 0.29 s


def test_only_loopback_http() -> None:
    for url in ("https://127.0.0.1/", "http://example.com/", "http://10.0.0.1:80/"):
        with pytest.raises(ValueError, match="loopback"):
            LoadGenerator(url)


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert [percentile(ordered, f) for f in (0.5, 0.99, 1.0)] == [50.0, 99.0, 100.0]
    assert percentile([0.2], 0.99) == 0.2 and percentile([], 0.99) == 0.0
