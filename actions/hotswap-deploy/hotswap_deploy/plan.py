"""Pure planning for a deploy: which image each service gets, on which container port, checked how,
and the ordered operations that move it there (Kamal's split: nothing here runs anything; `executor`
does). Every input check happens here, before the deploy takes its lock.

The new containers come from the compose service definition itself, with only the image changed (and,
for blue-green, the published port moved to an ephemeral loopback port so old and new run side by
side), so env, volumes, networks and labels are exactly what the user declared.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass

from ci_actions.image_names import service_repository
from hotswap_deploy.containers import RELEASE_LABEL
from hotswap_deploy.health import HealthCheck
from hotswap_deploy.operations import (
    Migrate,
    Operation,
    Previous,
    Recreate,
    Retire,
    StartBeside,
    Switch,
    WaitHealthy,
    Watch,
    migrate_args,
    recreate_args,
    start_args,
)
from hotswap_deploy.proxy import Proxy, Upstream

STRATEGIES = ("blue-green", "recreate")
SHA_ENV = "GIT_SHA"  # the commit, in each new container's environment
# `docker compose config` writes durations as Go does: 15s, 1m30s, 1h0m0s, 500ms
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class PlanError(ValueError):
    """The inputs and the compose model do not give a deploy; the message names the input or service."""


@dataclass(frozen=True)
class ServiceTarget:
    service: str
    image: str
    port: int
    health: HealthCheck
    stop_grace: float = 10.0


@dataclass(frozen=True)
class DeployPlan:
    project: str
    release_id: str
    sha: str
    strategy: str
    targets: list[ServiceTarget]
    operations: list[Operation] = dataclasses.field(default_factory=list)

    def override_yaml(self) -> str:
        """The compose override for this release: the image, the commit as `GIT_SHA` in the container's
        environment (so an app can report what it runs without a build arg that busts the layer cache),
        the release label and, for blue-green, an ephemeral loopback port. YAML because blue-green needs
        `!override` to replace (not merge) the published ports; every scalar is JSON-quoted, which YAML
        reads as is."""
        lines = ["services:"]
        for target in self.targets:
            lines += [f"  {target.service}:", f"    image: {json.dumps(target.image)}",
                      "    environment:", f"      {SHA_ENV}: {json.dumps(self.sha)}",
                      "    labels:", f"      {RELEASE_LABEL}: {json.dumps(self.release_id)}"]
            if self.strategy == "blue-green":
                lines += ["    ports: !override", f"      - {json.dumps(f'127.0.0.1::{target.port}')}"]
        return "\n".join(lines) + "\n"

    def bound(self, upstreams: dict[str, Upstream | None], running: dict[str, Previous | None]) -> DeployPlan:
        """The plan with what its inverses go back to, read when the deploy starts: each service's
        upstream (blue-green) or running container (recreate)."""
        def bind(op: Operation) -> Operation:
            if isinstance(op, Switch):
                return dataclasses.replace(op, restore=upstreams[op.service])
            if isinstance(op, Recreate):
                return dataclasses.replace(op, back_to=running[op.service])
            return op
        return dataclasses.replace(self, operations=[bind(op) for op in self.operations])

    def describe(self) -> list[str]:
        """What `--dry-run` prints: every operation in order, what it runs, and its inverse."""
        targets = {t.service: t for t in self.targets}
        return [f"release {self.release_id} of {self.project} at {self.sha} ({self.strategy})",
                *(f"  {number}. {_describe(op, targets)}" for number, op in enumerate(self.operations, 1))]


def _health(check: HealthCheck) -> str:
    match = f", body has {check.body_match!r}" if check.body_match else ""
    return f"{check.url} ({check.expect_status}{match}) within {check.timeout:g} s"


def _describe(op: Operation, targets: dict[str, ServiceTarget]) -> str:
    if isinstance(op, Migrate):
        return f"migrate: docker compose {shlex.join(migrate_args(op))}; undo: none (migrations stay)"
    if isinstance(op, Watch):
        return f"watch {op.seconds:g} s: every new container stays up and answers; the old ones are backup"
    target = targets[op.service]
    if isinstance(op, StartBeside):
        return (f"start-beside {op.service}: {target.image} on 127.0.0.1::{target.port}; docker compose "
                f"{shlex.join(start_args(op.service, '<running+1>'))}; undo: remove the new container")
    if isinstance(op, WaitHealthy):
        return f"wait-healthy {op.service}: {_health(target.health)}, on the new container's port"
    if isinstance(op, Switch):
        to = "the new container, backup what served before" if op.backup else "the new container only"
        commands = "; ".join(op.commands.describe()) if op.commands else "(no proxy)"
        return f"switch {op.service} to {to}: {commands}; undo: switch back to what served before"
    if isinstance(op, Retire):
        return (f"retire {op.service} (live from here): stop the old containers (grace {op.grace:g} s), "
                "remove them; undo: none")
    return (f"recreate {op.service}: {target.image}; docker compose {shlex.join(recreate_args(op.service))}; "
            f"then {_health(target.health)}; downtime measured; undo: recreate from the image it ran before")


def resolve_images(model: dict, services: list[str], images: dict[str, str], sha: str) -> dict[str, str]:
    """Each service's image: from build-images' JSON output, else `<repository>:<sha>` by the same
    naming rule build-images tags with."""
    declared = model.get("services", {})
    for service in services:
        if service not in declared:
            raise PlanError(f"service {service} is not in the compose project {model.get('name')} "
                            f"(services: {', '.join(declared)})")
    if images:
        missing = [s for s in services if s not in images]
        if missing:
            raise PlanError(f"images has no entry for {', '.join(missing)}; give every service in "
                            "`services` an image, or use `sha`")
        return {s: images[s] for s in services}
    if not sha:
        raise PlanError("give either `images` (build-images' output) or `sha`")
    return {s: f"{service_repository(model['name'], s, declared[s])}:{sha}" for s in services}


def container_port(model: dict, service: str) -> int:
    """The port the service listens on inside its container: its published target, else `expose`."""
    spec = model["services"][service]
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and port.get("target"):
            return int(port["target"])
    for port in spec.get("expose") or []:
        return int(str(port).split("/")[0].split("-")[0])
    raise PlanError(f"service {service} declares no container port; add `expose:` (or `ports:`) so the "
                    "proxy knows where to send traffic")


def stop_grace(model: dict, service: str) -> float:
    """The service's `stop_grace_period` in seconds (compose's default: 10 s)."""
    text = str(model["services"][service].get("stop_grace_period") or "10s")
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return 10.0
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def with_sha(check: HealthCheck, sha: str) -> HealthCheck:
    """`{sha}` in a body match is the commit being deployed, so a rollback checks for its own commit."""
    return dataclasses.replace(check, body_match=check.body_match.replace("{sha}", sha))


def operations(strategy: str, targets: list[ServiceTarget], migrate: tuple[str, ...], watch_seconds: float,
               proxy: Proxy | None) -> list[Operation]:
    """Blue-green: each service started beside, healthy, switched in with the old as backup; the watch;
    the backups dropped; then (live) the old retired. Recreate: each service replaced in place."""
    ops: list[Operation] = [Migrate(targets[0].service, migrate)] if migrate else []
    if strategy == "recreate":
        return ops + [Recreate(t.service) for t in targets]
    def switch(service: str, backup: bool) -> Switch:
        return Switch(service, backup, commands=proxy.plan(service) if proxy else None)
    for t in targets:
        ops += [StartBeside(t.service), WaitHealthy(t.service), switch(t.service, True)]
    ops += [Watch(watch_seconds)] if watch_seconds else []
    ops += [switch(t.service, False) for t in targets]
    return ops + [Retire(t.service, t.stop_grace) for t in targets]


def plan_deploy(model: dict, *, release_id: str, sha: str, strategy: str, services: list[str],
                images: dict[str, str], health: dict[str, HealthCheck], proxy: Proxy | None,
                migrate: tuple[str, ...] = (), watch_seconds: float = 0.0) -> DeployPlan:
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "blue-green" and proxy is None:
        raise PlanError("blue-green needs a proxy (nginx-config and upstream-dir); use strategy recreate for "
                        "services that publish a fixed host port. Nothing was touched.")
    if not services:
        raise PlanError("services is empty; list the services to deploy, in order (e.g. backend, frontend)")
    refs = resolve_images(model, services, images, sha)
    missing = [s for s in services if s not in health]
    if missing:
        raise PlanError(f"health-url has no URL for {', '.join(missing)}; every deployed service needs one "
                        "(`service: http://localhost/health`)")
    targets = [ServiceTarget(s, refs[s], container_port(model, s), with_sha(health[s], sha),
                             stop_grace(model, s)) for s in services]
    return DeployPlan(model["name"], release_id, sha, strategy, targets,
                      operations(strategy, targets, migrate, watch_seconds, proxy))
