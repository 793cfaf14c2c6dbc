"""A bounded HTTP load generator for deploy tests and bench/.

    with LoadGenerator("http://127.0.0.1:8080/", rate=150) as load:
        ...                      # switch, kill, roll back
    report = load.stop()         # also called by __exit__
    assert report.failed == 0, report.summary()

Requests are plain GETs, one new connection each (`Connection: close`, no keep-alive), paced on a
global schedule of `rate` per second by `workers` threads. Any non-2xx status or connection error is
a failure. The run is always bounded: it ends at `max_seconds` or `max_requests`, whichever is first,
even if nobody calls stop().
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_FAILURES_KEPT = 200
MAX_BODIES_KEPT = 100


@dataclass(frozen=True)
class LoadReport:
    total: int
    failed: int
    failures: list[tuple[float, int | None, str]]  # (seconds since start, status or None, error)
    elapsed: float
    rate: float  # achieved requests per second
    first_failure: float | None
    last_failure: float | None
    downtime_seconds: float  # per run of consecutive failures: first start to last end, summed
    bodies: Counter[str] = field(default_factory=Counter)  # first bytes of 2xx bodies -> count
    p50: float = 0.0  # seconds, over the requests that succeeded
    p99: float = 0.0

    def summary(self) -> str:
        shown = "; ".join(f"t={t:.3f}s {status or '-'} {error}" for t, status, error in self.failures[:5])
        return (f"{self.total} requests at {self.rate:.0f}/s over {self.elapsed:.1f}s, {self.failed} failed, "
                f"downtime {self.downtime_seconds:.3f}s, latency p50 {self.p50 * 1000:.1f} ms p99 "
                f"{self.p99 * 1000:.1f} ms" + (f" ({shown})" if shown else ""))


class LoadGenerator:
    def __init__(self, url: str, rate: float = 120.0, max_seconds: float = 300, max_requests: int = 60000,
                 workers: int = 8, request_timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise ValueError(f"load goes only to plain http on loopback, not {url!r}")
        if rate <= 0 or max_seconds <= 0 or max_requests <= 0 or workers <= 0:
            raise ValueError("rate, max_seconds, max_requests and workers must be positive")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.rate = rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.request_timeout = request_timeout
        self._workers = workers
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next = 0
        self._results: list[tuple[float, float, int | None, str]] = []  # start, end, status, error
        self._bodies: Counter[str] = Counter()
        self._start = 0.0
        self._report: LoadReport | None = None

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LoadGenerator:
        if self._threads:
            raise RuntimeError("this LoadGenerator already ran")
        self._start = time.monotonic()
        self._threads = [threading.Thread(target=self._work, name=f"loadgen-{i}", daemon=True)
                         for i in range(self._workers)]
        for thread in self._threads:
            thread.start()
        return self

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def _take(self) -> float | None:
        """The scheduled start (seconds since start) of the next request, or None when done."""
        with self._lock:
            index = self._next
            if self._stop.is_set() or index >= self.max_requests:
                return None
            self._next += 1
        at = index / self.rate
        return at if at < self.max_seconds else None

    def _work(self) -> None:
        while (at := self._take()) is not None:
            delay = self._start + at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            begin = time.monotonic() - self._start
            status, error, body = self._get()
            end = time.monotonic() - self._start
            with self._lock:
                self._results.append((begin, end, status, error))
                if not error and (len(self._bodies) < MAX_BODIES_KEPT or body in self._bodies):
                    self._bodies[body] += 1

    def _get(self) -> tuple[int | None, str, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.request_timeout)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read(4096)
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}", ""
        finally:
            conn.close()
        text = body[:64].decode("utf-8", "replace").strip()
        if not 200 <= response.status < 300:
            return response.status, f"HTTP {response.status}: {text[:40]}", ""
        return response.status, "", text

    def stop(self) -> LoadReport:
        if self._report is not None:
            return self._report
        self._stop.set()
        for thread in self._threads:
            thread.join(self.request_timeout + 5)
        elapsed = self.elapsed
        with self._lock:
            results = sorted(self._results)
            bodies = Counter(self._bodies)
        failures = [(begin, status, error) for begin, _end, status, error in results if error]
        downtime = 0.0
        run_start: float | None = None
        run_end = 0.0
        for begin, end, _status, error in results:
            if error:
                run_start = begin if run_start is None else run_start
                run_end = max(run_end, end)
            elif run_start is not None:
                downtime += run_end - run_start
                run_start = None
        if run_start is not None:
            downtime += run_end - run_start
        latencies = sorted(end - begin for begin, end, _status, error in results if not error)
        self._report = LoadReport(
            total=len(results), failed=len(failures), failures=failures[:MAX_FAILURES_KEPT],
            elapsed=elapsed, rate=len(results) / elapsed if elapsed > 0 else 0.0,
            first_failure=failures[0][0] if failures else None,
            last_failure=failures[-1][0] if failures else None,
            downtime_seconds=downtime, bodies=bodies, p50=percentile(latencies, 0.50),
            p99=percentile(latencies, 0.99))
        return self._report


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 for none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]
