"""Pure planning for a deploy: which image each service gets, on which container port, checked how,
and the exact compose commands (Kamal's split: these builders never run anything; `deploy.py` does).

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
    migrate: tuple[str, ...] = ()
    watch_seconds: float = 0.0

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

    def start_args(self, service: str, scale: int) -> list[str]:
        """Start one more container of `service` beside the running ones, never touching them."""
        return ["up", "-d", "--no-deps", "--no-build", "--no-recreate", "--scale", f"{service}={scale}",
                service]

    def recreate_args(self, service: str) -> list[str]:
        """The seed's deploy: compose stops the old container, then starts the new one."""
        return ["up", "-d", "--no-deps", "--no-build", service]

    def migrate_args(self) -> list[str]:
        """Migrations run once, in a one-off container of the first service's new image."""
        return ["run", "--rm", "--no-deps", "-T", self.targets[0].service, *self.migrate]

    def describe(self) -> list[str]:
        lines = [f"release {self.release_id} of {self.project} at {self.sha} ({self.strategy})"]
        if self.migrate:
            lines.append(f"  migrate: docker compose {shlex.join(self.migrate_args())}")
        for t in self.targets:
            start = self.start_args(t.service, 2) if self.strategy == "blue-green" else \
                self.recreate_args(t.service)
            lines.append(f"  {t.service}: {t.image} (port {t.port}); docker compose {shlex.join(start)}; "
                         f"health {t.health.url} ({t.health.expect_status}"
                         f"{', body has ' + repr(t.health.body_match) if t.health.body_match else ''})")
        if self.watch_seconds:
            lines.append(f"  watch {self.watch_seconds:g} s with the old containers as backup, then retire "
                         "them")
        return lines


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


def plan_deploy(model: dict, *, release_id: str, sha: str, strategy: str, services: list[str],
                images: dict[str, str], health: dict[str, HealthCheck], migrate: tuple[str, ...] = (),
                watch_seconds: float = 0.0) -> DeployPlan:
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not services:
        raise PlanError("services is empty; list the services to deploy, in order (e.g. backend, frontend)")
    refs = resolve_images(model, services, images, sha)
    missing = [s for s in services if s not in health]
    if missing:
        raise PlanError(f"health-url has no URL for {', '.join(missing)}; every deployed service needs one "
                        "(`service: http://localhost/health`)")
    targets = [ServiceTarget(s, refs[s], container_port(model, s), with_sha(health[s], sha),
                             stop_grace(model, s)) for s in services]
    return DeployPlan(model["name"], release_id, sha, strategy, targets, migrate, watch_seconds)
