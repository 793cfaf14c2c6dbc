"""test-services' readiness: how a container's state is judged, and the wait's order and bounds (a fake
clock and inspect stand in for the engine: this is ordering logic only)."""

from __future__ import annotations

import pytest

from test_services.health import NotReady, health_log, judge, wait_ready

CHECK = {"Healthcheck": {"Test": ["CMD-SHELL", "pg_isready"]}}


def state(status: str = "running", health: str | None = None, code: int = 0, checked: bool = True,
          log: list | None = None) -> dict:
    attrs = {"State": {"Status": status, "ExitCode": code}, "Config": CHECK if checked else {}}
    if health:
        attrs["State"]["Health"] = {"Status": health, "Log": log or []}
    return attrs


@pytest.mark.parametrize(("attrs", "ready", "failed"), [
    (state(health="healthy"), True, ""),
    (state(health="starting"), False, ""),
    (state(health="unhealthy"), False, "turned unhealthy"),
    (state(checked=False), True, ""),
    (state("exited", code=0, checked=False), True, ""),
    (state("exited", code=0), False, "exited with code 0"),
    (state("exited", code=137, checked=False), False, "exited with code 137"),
    (state("created"), False, ""),
    (state("restarting"), False, ""),
    ({"State": {"Status": "running"}, "Config": {"Healthcheck": {"Test": ["NONE"]}}}, True, ""),
])
def test_judge(attrs, ready, failed):
    verdict = judge(attrs)
    assert (verdict.ready, verdict.failed) == (ready, failed)


class Engine:
    """Each container's states in order, one per inspect; a clock that moves only when the wait sleeps."""

    def __init__(self, **states: list[dict]) -> None:
        self.states = states
        self.now = 0.0
        self.sleeps: list[float] = []

    def inspect(self, container: str) -> dict:
        queue = self.states[container]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_wait_returns_one_poll_after_the_slowest_turns_healthy():
    engine = Engine(pg=[state(health="starting")] * 5 + [state(health="healthy")],
                    redis=[state(health="starting"), state(health="healthy")])
    ready = wait_ready({"pg": "postgres", "redis": "redis"}, engine.inspect, 60, clock=lambda: engine.now,
                       sleep=engine.sleep, interval=0.1)
    assert ready == {"redis": (pytest.approx(0.1), ""), "pg": (pytest.approx(0.5), "")}
    assert engine.sleeps == [0.1] * 5


def test_a_failure_ends_the_wait_at_once_naming_the_service():
    engine = Engine(pg=[state(health="starting"), state(health="unhealthy")],
                    redis=[state(health="starting")])
    with pytest.raises(NotReady, match=r"^service postgres turned unhealthy$") as caught:
        wait_ready({"pg": "postgres", "redis": "redis"}, engine.inspect, 60, clock=lambda: engine.now,
                   sleep=engine.sleep)
    assert caught.value.container == "pg" and len(engine.sleeps) == 1


def test_the_wait_is_bounded():
    engine = Engine(pg=[state(health="starting")])
    with pytest.raises(NotReady, match=r"^service postgres did not turn healthy within 2s \(still starting"):
        wait_ready({"pg": "postgres"}, engine.inspect, 2, clock=lambda: engine.now, sleep=engine.sleep,
                   interval=0.5)
    assert sum(engine.sleeps) == pytest.approx(2.0)


def test_no_health_check_is_ready_when_running_with_a_note():
    engine = Engine(app=[state("created", checked=False), state(checked=False)])
    ready = wait_ready({"app": "app"}, engine.inspect, 5, clock=lambda: engine.now, sleep=engine.sleep)
    assert ready["app"][1] == "has no health check: ready once it runs"


def test_the_health_log_shows_the_last_probes():
    probes = [{"Start": f"2026-12-01T10:00:0{i}.123456Z", "ExitCode": 1, "Output": f"refused {i}\n"}
              for i in range(7)]
    assert health_log(state(health="unhealthy", log=probes)) == [
        f"10:00:0{i}.123 exit 1: refused {i}" for i in range(2, 7)]
