"""The phases hotswap-deploy records for pipeline-report: one per operation (with its service), the
failed one marked, and the rollback, on the executor tests' in-memory host and proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_actions import timing
from tests.unit.test_deploy_executor import FakeHost, FakeProxy, execute, failing, old_upstreams, planned


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / timing.FILE_NAME
    timing.record_to(path, job="deploy", action="hotswap-deploy")
    yield path
    timing.record_to(None)


def _phases(path: Path) -> list[tuple[str, str, str]]:
    found, warnings = timing.read(path)
    assert warnings == []
    return [(r["phase"], r.get("service", ""), r["outcome"]) for r in found]


def test_every_operation_of_a_deploy_is_a_phase(records):
    log: list[str] = []
    host, proxy = FakeHost(log), FakeProxy(log, old_upstreams())
    execute(planned(proxy=proxy, migrate=("migrate",), watch=0.05), host, proxy)
    assert _phases(records) == [
        ("migrate", "backend", "success"), ("start-beside", "backend", "success"),
        ("wait-healthy", "backend", "success"), ("switch", "backend", "success"),
        ("start-beside", "frontend", "success"), ("wait-healthy", "frontend", "success"),
        ("switch", "frontend", "success"), ("watch", "", "success"), ("switch", "backend", "success"),
        ("switch", "frontend", "success"), ("retire", "backend", "success"),
        ("retire", "frontend", "success")]


def test_a_failed_health_check_is_a_failed_phase_then_the_rollback(records):
    log: list[str] = []
    host, proxy = FakeHost(log, sick=("frontend",)), FakeProxy(log, old_upstreams())
    failing(planned(proxy=proxy), host, proxy)
    assert _phases(records)[-2:] == [("wait-healthy", "frontend", "failure"), ("rollback", "", "success")]
