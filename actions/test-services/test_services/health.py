"""Readiness: each container's own health check, as Docker reports it, polled until every one is
healthy. No sleep stands in for it: `up` returns one poll interval after the last turns healthy.

A container without a health check counts as ready once it runs (with a warning), and one that exits 0
without one as a finished one-shot service. One that exits otherwise, or turns `unhealthy`, fails at
once; nothing waits past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

POLL_INTERVAL = 0.1


class NotReady(Exception):
    """A service did not become ready; `service`, `container` and `state` let the caller show why."""

    def __init__(self, message: str, service: str, container: str, state: dict) -> None:
        super().__init__(message)
        self.service, self.container, self.state = service, container, state


@dataclass(frozen=True)
class Verdict:
    ready: bool = False
    failed: str = ""  # why it never will be
    note: str = ""  # ready without a health check


def has_healthcheck(attrs: dict) -> bool:
    test = ((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def judge(attrs: dict) -> Verdict:
    """One container's inspect output, judged."""
    state = attrs.get("State") or {}
    status = state.get("Status", "")
    health = (state.get("Health") or {}).get("Status", "")
    checked = has_healthcheck(attrs)
    if status == "running":
        if not checked:
            return Verdict(ready=True, note="has no health check: ready once it runs")
        if health == "healthy":
            return Verdict(ready=True)
        if health == "unhealthy":
            return Verdict(failed="turned unhealthy")
        return Verdict()
    if status in ("exited", "dead"):
        code = state.get("ExitCode")
        if code == 0 and not checked:
            return Verdict(ready=True, note="exited 0: a one-shot service that finished")
        error = f" ({state['Error']})" if state.get("Error") else ""
        return Verdict(failed=f"exited with code {code}{error}")
    return Verdict()  # created, restarting, paused: not yet


def wait_ready(containers: dict[str, str], inspect: Callable[[str], dict], timeout: float, *,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               interval: float = POLL_INTERVAL) -> dict[str, tuple[float, str]]:
    """Poll container id -> service until each is ready: {container: (seconds it took, note)}. The first
    failure, or the deadline, raises NotReady naming the service."""
    started = clock()
    deadline = started + timeout
    pending = dict(containers)
    ready: dict[str, tuple[float, str]] = {}
    while pending:
        for container, service in list(pending.items()):
            attrs = inspect(container)
            verdict = judge(attrs)
            if verdict.failed:
                raise NotReady(f"service {service} {verdict.failed}", service, container, attrs)
            if verdict.ready:
                ready[container] = (clock() - started, verdict.note)
                del pending[container]
        if not pending:
            break
        if clock() >= deadline:
            container, service = next(iter(pending.items()))
            attrs = inspect(container)
            health = ((attrs.get("State") or {}).get("Health") or {}).get("Status") or \
                (attrs.get("State") or {}).get("Status", "unknown")
            raise NotReady(f"service {service} did not turn healthy within {timeout:g}s (still {health})",
                           service, container, attrs)
        sleep(min(interval, max(deadline - clock(), 0)))
    return ready


def health_log(attrs: dict, limit: int = 5, width: int = 300) -> list[str]:
    """The last health probes Docker kept: when, exit code, output (cut)."""
    lines = []
    for probe in ((attrs.get("State") or {}).get("Health") or {}).get("Log") or []:
        output = " ".join(str(probe.get("Output") or "").split())
        lines.append(f"{str(probe.get('Start', ''))[11:23]} exit {probe.get('ExitCode')}: "
                     f"{output[:width] or '(no output)'}")
    return lines[-limit:]
