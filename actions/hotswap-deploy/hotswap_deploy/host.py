"""What the operations do to the machine, behind one seam: `Host` (the Docker engine, the compose CLI
with this release's override, HTTP probes) and `DockerHost`, its real implementation. The executor
and the effects know only `Host`, so their ordering is unit-tested against an in-memory one."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from ci_actions.compose import Compose, write_override
from hotswap_deploy import containers
from hotswap_deploy.health import HealthCheck, Probe, probe, wait_healthy
from hotswap_deploy.operations import Previous, recreate_args, start_args
from hotswap_deploy.plan import SHA_ENV


@dataclass(frozen=True)
class Box:
    """One container of a service, as the engine listed it."""

    id: str
    name: str
    status: str
    release: str  # the release label ('' when no deploy of ours started it)
    image: str  # the image ref it was created from
    sha: str  # its GIT_SHA ('' when it has none)


class Host(Protocol):
    def containers(self, service: str) -> list[Box]:
        """The service's containers (not one-off `run` ones), oldest first."""
        ...

    def start_beside(self, service: str, scale: int) -> None:
        """`compose up --no-recreate --scale service=scale` with the release's override."""
        ...

    def recreate(self, service: str, back_to: Previous | None = None) -> None:
        """`compose up` replacing the service's container: from the release's override, or `back_to`."""
        ...

    def migrate(self, args: list[str]) -> tuple[int, str]:
        """A one-off `compose run` with the release's override: its exit status and output."""
        ...

    def address(self, box: Box, port: int) -> str:
        """`127.0.0.1:<host port>` where the container publishes `port` (LookupError when it does not)."""
        ...

    def death(self, box: Box) -> str | None:
        """Why the container no longer serves (stopped, restarted, unhealthy), or None."""
        ...

    def remove(self, box: Box, grace: float) -> None:
        """Stop it within `grace` seconds, then remove it (gone already is fine)."""
        ...

    def diagnosis(self, box: Box, secrets: list[str]) -> str:
        """State, health log and log tail, secrets masked."""
        ...

    def probe(self, check: HealthCheck) -> Probe: ...

    def wait_healthy(self, check: HealthCheck, alive: Callable[[], str | None]) -> None: ...


class DockerHost:
    """The real host: the engine through the SDK, compose through its CLI, probes over loopback. Use it
    as a context manager: the release's override file lives in a private temp dir meanwhile. Recovery
    needs no override: it only undoes and retires."""

    def __init__(self, client: docker.DockerClient, compose: Compose, override: str = "") -> None:
        self.client, self.compose, self.text = client, compose, override
        self._seen: dict[str, Container] = {}

    def __enter__(self) -> DockerHost:
        self._tmp = tempfile.TemporaryDirectory(prefix="ci-actions-deploy-")
        self.override = Path(self._tmp.name) / "hotswap-deploy.override.yml"
        self.override.write_text(self.text)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def containers(self, service: str) -> list[Box]:
        found = containers.service_containers(self.client, self.compose.project, service)
        self._seen.update((c.id, c) for c in found)
        return [Box(c.id, c.name, c.status, c.labels.get(containers.RELEASE_LABEL, ""),
                    c.attrs["Config"]["Image"], containers.env_of(c, SHA_ENV)) for c in found]

    def start_beside(self, service: str, scale: int) -> None:
        self.compose.check(*start_args(service, scale), overrides=(self.override,), timeout=300)

    def recreate(self, service: str, back_to: Previous | None = None) -> None:
        override = self.override
        if back_to is not None:
            env = {"environment": {SHA_ENV: back_to.sha}} if back_to.sha else {}
            spec = {"image": back_to.image, **env}
            override = write_override(Path(self._tmp.name) / f"{service}.previous.json", {service: spec})
        self.compose.check(*recreate_args(service), overrides=(override,), timeout=600)

    def migrate(self, args: list[str]) -> tuple[int, str]:
        result = self.compose.run(*args, overrides=(self.override,), timeout=1800)
        return result.returncode, result.stdout + result.stderr

    def address(self, box: Box, port: int) -> str:
        return containers.address(self._seen[box.id], port)

    def death(self, box: Box) -> str | None:
        return containers.death(self._seen[box.id])

    def remove(self, box: Box, grace: float) -> None:
        """Graceful stop (whole seconds, rounded up: compose's grace of 500ms still gets a second)."""
        container = self._seen[box.id]
        try:
            if grace:
                container.stop(timeout=math.ceil(grace))
            container.remove(force=True)
        except NotFound:
            pass

    def diagnosis(self, box: Box, secrets: list[str]) -> str:
        return containers.diagnosis(self._seen[box.id], secrets)

    def probe(self, check: HealthCheck) -> Probe:
        return probe(check)

    def wait_healthy(self, check: HealthCheck, alive: Callable[[], str | None]) -> None:
        wait_healthy(check, alive=alive)
