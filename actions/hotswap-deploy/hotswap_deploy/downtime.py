"""The recreate strategy's downtime meter: the figure the user is shown for what blue-green avoids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

INTERVAL = 0.1


class DowntimeMeter:
    """Calls `up()` every 100 ms in a thread while a recreate runs; the downtime is the longest span it
    answered False. The caller leaves only once the service answers again, so a span still open at
    exit ends there."""

    def __init__(self, up: Callable[[], bool]) -> None:
        self.up = up
        self.downtime = 0.0
        self._down_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> DowntimeMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._answered(time.monotonic())

    def _answered(self, now: float) -> None:
        if self._down_since is not None:
            self.downtime = max(self.downtime, now - self._down_since)
            self._down_since = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if self.up():
                self._answered(now)
            elif self._down_since is None:
                self._down_since = now
            self._stop.wait(INTERVAL)
