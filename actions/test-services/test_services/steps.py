"""test-services as GitHub steps: main (up), post (always down) and stop/ (an explicit down)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
from pathlib import Path

from ci_actions import engine, ledger, runner, timing
from ci_actions.compose import ComposeError
from test_services import inputs, stack
from test_services.inputs import INPUTS, MAIN, STOP
from test_services.leases import Holder, LeaseError, parent_pid
from test_services.naming import PROJECT
from test_services.plan import PlanError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PROJECTS_ENV = "CI_ACTIONS_TEST_SERVICES_PROJECTS"  # the job's stacks, for stop/ (space-separated)
ENV_FILE_ENV = "CI_ACTIONS_TEST_SERVICES_ENV_FILE"


def job_holder() -> Holder | None:
    """The job's own process: the shim's parent (the runner's Runner.Worker, or act). This process is the
    launcher's exec, a child of the node shim, which lives only as long as the step."""
    return Holder.of(parent_pid(os.getppid()))


def stop_with_the_shim() -> None:
    """A cancelled job ends the node shim; its SIGTERM then reaches this process too, which unwinds `up`
    (the runner signals the shim, not its child)."""
    shim = os.getppid()
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != shim:  # the shim died before prctl took effect
        raise SystemExit(1)


def summary(started: stack.Stack) -> str:
    rows = [f"| {e.service} | `{e.host}:{e.port}` | {', '.join(f'{k}→{p}' for k, p in e.ports.items())} | "
            f"{started.ready.get(e.service, 0):.1f}s |" for e in started.endpoints.values()]
    names = ", ".join(f"`{name}`" for name in started.env)
    return "\n".join([f"### test-services: `{started.project}`", "", "| service | address | ports | ready |",
                      "|---|---|---|---|", *rows, "", f"Exported: {names}.", ""])


def main() -> None:
    runner.start_timing("test-services")
    try:
        values = runner.read_inputs(INPUTS, MAIN)
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    context = runner.run_context()
    request = inputs.request(values, runner.workspace(), run_id=context.run_id, job=context.job,
                             attempt=context.attempt, holder=job_holder())

    def remember(project: str) -> None:
        runner.save_state("project", project)
        runner.save_state("state-dir", str(values["state-dir"]))
    stop_with_the_shim()
    try:
        client = engine.connect()
        with runner.group("test-services up"):
            started = stack.up(request, client, runner.info, on_project=remember)
    except (PlanError, ComposeError) as exc:
        runner.fail(str(exc), status=2)
    except (stack.UpError, LeaseError, engine.EngineError) as exc:
        for line in getattr(exc, "details", []):
            runner.info(line)
        runner.fail(str(exc))
    for line in _report(started):
        runner.info(line)
    outputs = started.outputs()
    runner.set_output("project", started.project)
    runner.set_output("env-file", str(started.env_file))
    runner.set_output("services", json.dumps(outputs["services"]))
    runner.set_output("ready-seconds", json.dumps(outputs["ready-seconds"]))
    for name, value in outputs.items():
        if name not in ("project", "env-file", "services", "ready-seconds"):
            runner.set_output(name, value)
    for name, value in started.env.items():
        runner.export_variable(name, value)
    runner.export_variable(ENV_FILE_ENV, str(started.env_file))
    projects = [*runner_env(PROJECTS_ENV).split(), started.project]
    runner.export_variable(PROJECTS_ENV, " ".join(projects))
    runner.append_summary(summary(started))


def runner_env(name: str) -> str:
    """A variable an earlier step of this action exported (ours, not the runner's)."""
    return os.environ.get(name, "")


def _report(started: stack.Stack) -> list[str]:
    lines = [f"{e.service}: {e.host}:{e.port} (ready after {started.ready.get(e.service, 0):.1f}s)"
             for e in started.endpoints.values()]
    lines.append(f"up in {started.seconds:.1f}s; exported {', '.join(started.env)} "
                 f"(env file {started.env_file})")
    return lines


def _down(projects: list[str], state_dir: Path) -> None:
    if not projects:
        runner.info("test-services: no stack to remove")
        return
    try:
        client = engine.connect()
    except engine.EngineError as exc:
        runner.fail(str(exc))
    failed = False
    for project in projects:
        with timing.phase("down"):
            removed = stack.down(client, state_dir, project)
        runner.info(f"test-services: {project}: removed {removed.describe()}" if removed.anything
                    else f"test-services: {project}: nothing left to remove")
        for problem in removed.problems:
            runner.warning(f"test-services: {project}: {problem} (the next `up` on this runner retries)")
            failed = True
    if failed:
        raise SystemExit(1)


def post() -> None:
    """Always (post-if: always()): the stack this step started, whatever became of the job."""
    runner.start_timing("test-services")
    project, state_dir = runner.get_state("project"), runner.get_state("state-dir")
    _down([project] if PROJECT.match(project) else [],
          Path(state_dir) if state_dir else ledger.default_state_dir())


def stop() -> None:
    runner.start_timing("test-services")
    try:
        values = runner.read_inputs(INPUTS, STOP)
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    projects = [values["project"]] if values["project"] else runner_env(PROJECTS_ENV).split()
    _down([p for p in projects if p], values["state-dir"])
    runner.export_variable(PROJECTS_ENV, " ".join(p for p in runner_env(PROJECTS_ENV).split()
                                                  if p not in projects))
