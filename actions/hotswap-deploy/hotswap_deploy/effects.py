"""What each operation does, and what undoes it, on a `Host` and a `Proxy`.

Every inverse is computed from the operation as recorded and from labels that only this release put
on its containers, and is safe to run again or after the operation was cut short (a failure, a kill):
that is what lets the executor's rollback and crash recovery be the same replay.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from docker.errors import DockerException

from ci_actions.compose import ComposeError
from hotswap_deploy.containers import STOPPED, mask
from hotswap_deploy.downtime import DowntimeMeter
from hotswap_deploy.health import HealthCheck, HealthError, with_port
from hotswap_deploy.host import Box, Host
from hotswap_deploy.operations import (
    Migrate,
    Operation,
    Recreate,
    Retire,
    StartBeside,
    Switch,
    WaitHealthy,
    Watch,
    migrate_args,
)
from hotswap_deploy.plan import ServiceTarget
from hotswap_deploy.proxy import Proxy, Upstream

WATCH_FAILURES = 3  # consecutive failed probes of a new container that end the watch
MIGRATE_TAIL = 30  # lines of a failed migration's output quoted


class DeployError(Exception):
    """The deploy did not go live; the system already serves the previous release again (`rolled_back`
    says whether anything had to be put back to get there)."""

    def __init__(self, message: str, *, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


@dataclass
class Run:
    """One release's operations in progress: where they act, and what they measured."""

    release: str
    targets: dict[str, ServiceTarget]
    host: Host
    proxy: Proxy | None
    secrets: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)
    downtime: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    began: dict[str, float] = field(default_factory=dict)  # when each service's start-beside/recreate began

    def mark(self, name: str) -> None:
        self.timings[name] = round(time.monotonic() - self.started, 3)

    def since_began(self, name: str, service: str) -> None:
        self.timings[f"{service}.{name}"] = round(time.monotonic() - self.began[service], 3)

    def mine(self, service: str) -> list[Box]:
        return [box for box in self.host.containers(service) if box.release == self.release]

    def new(self, service: str) -> tuple[Box, str]:
        """The release's container of `service`, and the address where it serves."""
        mine = self.mine(service)
        if not mine:
            raise DeployError(f"compose started no new container for {service}")
        return mine[-1], self.host.address(mine[-1], self.targets[service].port)

    def check(self, service: str, address: str) -> HealthCheck:
        """The service's health check aimed at `address`'s port (a new container's own)."""
        health = self.targets[service].health
        return dataclasses.replace(health, url=with_port(health.url, int(address.rsplit(":", 1)[1])))


def do(op: Operation, run: Run) -> None:
    _DO[type(op)](op, run)


def undo(op: Operation, run: Run) -> str:
    """Undo `op` as far as it got; returns what was put back ('' when nothing needed it)."""
    inverse = _UNDO.get(type(op))
    return inverse(op, run) if inverse else ""


def _migrate(op: Migrate, run: Run) -> None:
    status, output = run.host.migrate(migrate_args(op))
    run.mark("migrated")
    if status != 0:
        tail = mask(output.strip(), run.secrets).splitlines()[-MIGRATE_TAIL:]
        cause = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
        raise DeployError(f"migration failed (exit {status}): {cause}; nothing was switched and the current "
                          f"version keeps serving. Its last {len(tail)} lines:\n" + "\n".join(tail))


def _start_beside(op: StartBeside, run: Run) -> None:
    """Compose counts stopped containers for `--scale` and, with `--no-recreate`, would start one of them
    instead of a new container: they serve nothing, so they go first."""
    found = run.host.containers(op.service)
    for box in found:
        if box.status in STOPPED:
            run.host.remove(box, grace=0)
            run.warnings.append(f"removed the stopped container {box.name} of {op.service} ({box.status}) "
                                "before starting the new one")
    run.began[op.service] = time.monotonic()
    run.host.start_beside(op.service, sum(box.status not in STOPPED for box in found) + 1)
    run.new(op.service)


def _remove_mine(op: StartBeside, run: Run) -> str:
    """Every container of the service this release started, diagnosed first (what the user needs)."""
    mine = run.mine(op.service)
    diagnoses = [run.host.diagnosis(box, run.secrets) for box in mine]
    for box in mine:
        run.host.remove(box, grace=0)
    return "\n".join(diagnoses)


def _wait_healthy(op: WaitHealthy, run: Run) -> None:
    box, address = run.new(op.service)
    run.host.wait_healthy(run.check(op.service, address), alive=lambda: run.host.death(box))
    run.since_began("healthy_after", op.service)


def _switch(op: Switch, run: Run) -> None:
    """With `backup`, the addresses that were primary before stay as nginx backup servers: a new
    container that fails is retried on the old ones, and a rollback is this one switch back."""
    _box, address = run.new(op.service)
    backup = [a for a in (op.restore.primary if op.restore else []) if a != address] if op.backup else []
    run.proxy.switch(op.service, Upstream([address], backup))
    if op.backup:
        run.since_began("switched_after", op.service)
        run.mark(f"{op.service}.switched")


def _switch_back(op: Switch, run: Run) -> str:
    """Back to what served before the deploy; a service that had no upstream goes to the placeholder
    (503), never to a removed container."""
    back = op.restore or run.proxy.placeholder()
    if run.proxy.current(op.service) == back:
        return ""
    run.proxy.switch(op.service, back)
    return op.service


def _watch(op: Watch, run: Run) -> None:
    """For the window, every new container must stay up and keep answering its health URL."""
    run.mark("watch_started")
    watched = {}
    for service in run.targets:
        box, address = run.new(service)
        watched[service] = box, run.check(service, address)
    interval = min(check.interval for _box, check in watched.values())
    failures = dict.fromkeys(watched, 0)
    deadline = time.monotonic() + op.seconds
    while time.monotonic() < deadline:
        for service, (box, check) in watched.items():
            reason = run.host.death(box)
            if reason:
                raise DeployError(f"{service} failed in the watch window: {reason}")
            result = run.host.probe(check)
            failures[service] = 0 if result.ok else failures[service] + 1
            if failures[service] >= WATCH_FAILURES:
                raise DeployError(f"{service} stopped passing its health check in the watch window: "
                                  f"{result.detail}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    run.mark("watched")


def _retire(op: Retire, run: Run) -> None:
    """The service's containers that are not this release's get no traffic any more: stop them
    gracefully and remove them. One that will not go is a warning (the release is live)."""
    for box in run.host.containers(op.service):
        if box.release != run.release:
            try:
                run.host.remove(box, grace=op.grace)
            except DockerException as exc:
                run.warnings.append(f"old container {box.name} of {op.service} was not removed ({exc}); it "
                                    "gets no traffic, remove it by hand")
    run.mark("retired")


def _recreate(op: Recreate, run: Run) -> None:
    """The seed's behaviour, measured: compose replaces the container in place, then the health URL as
    written (the fixed port) must answer."""
    target = run.targets[op.service]
    run.began[op.service] = time.monotonic()
    quick = dataclasses.replace(target.health, body_match="", request_timeout=0.3)
    with DowntimeMeter(lambda: run.host.probe(quick).ok) as meter:
        try:
            run.host.recreate(op.service)
            run.host.wait_healthy(target.health, alive=lambda: None)
        except (HealthError, ComposeError) as exc:
            nothing = "" if op.back_to else "; there was no earlier container to go back to"
            raise DeployError(f"{op.service} is not healthy after recreate: {exc}{nothing}") from exc
    run.downtime[op.service] = meter.downtime
    run.since_began("healthy_after", op.service)
    run.mark("recreated")


def _recreate_back(op: Recreate, run: Run) -> str:
    """From the image (and commit) the replaced container ran; not health-checked again."""
    running = [box for box in run.host.containers(op.service) if box.status == "running"]
    if op.back_to is None or (running and all(box.release != run.release for box in running)):
        return ""
    run.host.recreate(op.service, op.back_to)
    return f"{op.service} from {op.back_to.image}"


_DO = {Migrate: _migrate, StartBeside: _start_beside, WaitHealthy: _wait_healthy, Switch: _switch,
       Watch: _watch, Retire: _retire, Recreate: _recreate}
_UNDO = {StartBeside: _remove_mine, Switch: _switch_back, Recreate: _recreate_back}
