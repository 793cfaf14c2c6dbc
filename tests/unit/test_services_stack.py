"""test-services' executor logic without an engine: the undo runs in reverse and never stops half-way,
and the outputs carry endpoints but never the URLs (they may hold passwords)."""

from __future__ import annotations

from pathlib import Path

from test_services.plan import PublishedPort, StackPlan
from test_services.stack import Removed, Stack, _Undo


def test_undo_runs_in_reverse_and_keeps_going_past_a_failure():
    done: list[str] = []
    undo = _Undo()
    undo.push("release the ports", lambda: done.append("release"))
    undo.push("remove the folder", lambda: 1 / 0)
    undo.push("remove the stack", lambda: done.append("remove") or Removed(problems=["network x: busy"]))
    assert undo.run() == ["network x: busy", "remove the folder: division by zero"]
    assert done == ["remove", "release"]
    assert undo.run() == []  # once only


def test_outputs_name_the_endpoints_and_hold_no_url():
    pg, metrics = PublishedPort("postgres", 5432), PublishedPort("postgres", 9187)
    plan = StackPlan("ci-1-a", ("c.yml",), ("postgres",), ("postgres",), ("postgres",), (pg, metrics))
    stack = Stack("ci-1-a", plan, {pg: 20001, metrics: 20002},
                  {"DATABASE_URL": "postgresql://app:s3cr3t@127.0.0.1:20001/app"}, Path("/s/env"),
                  {"postgres": 7.25}, 8.0)
    outputs = stack.outputs()
    assert outputs == {
        "project": "ci-1-a", "env-file": "/s/env",
        "services": {"postgres": {"host": "127.0.0.1", "port": 20001,
                                  "ports": {"5432": 20001, "9187": 20002}}},
        "ready-seconds": {"postgres": 7.25},
        "postgres-host": "127.0.0.1", "postgres-port": "20001", "postgres-port-5432": "20001",
        "postgres-port-9187": "20002"}
    assert "s3cr3t" not in repr(outputs)
