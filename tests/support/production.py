"""A stand-in production host for the example pipeline: a real nginx on 127.0.0.1 that owns the app's
public ports, a compose project name and a release ledger, all torn down afterwards (containers,
networks, volumes such as the database's, and the images build-images made for the project). Used by
the pipeline test, the demo and the deploy tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError

from hotswap_deploy.proxy import Upstream
from tests.support.nginx import NginxServer, start_nginx

SERVICES = ("backend", "frontend")
# before the first deploy: a dead address (`deploy setup` would point at its 503 placeholder instead)
NOTHING_YET = Upstream(["127.0.0.1:9"], [])


@dataclass(frozen=True)
class ProductionHost:
    project: str
    nginx: NginxServer
    state_dir: Path

    def env(self) -> dict[str, str]:
        """What the example workflow reads (act --env)."""
        return {"DEPLOY_PROJECT": self.project, "CI_ACTIONS_STATE_DIR": str(self.state_dir),
                "NGINX_CONFIG": str(self.nginx.config), "UPSTREAM_DIR": str(self.nginx.upstream_dir)}


@contextlib.contextmanager
def production_host(root: Path, project: str) -> Iterator[ProductionHost]:
    nginx = start_nginx(root / "nginx", project, dict.fromkeys(SERVICES, NOTHING_YET))
    try:
        yield ProductionHost(project, nginx, root / "state")
    finally:
        nginx.stop()
        remove_project(project)


def remove_project(project: str) -> None:
    client = docker.from_env()
    mine = {"label": f"com.docker.compose.project={project}"}
    for container in client.containers.list(all=True, filters=mine):
        container.remove(force=True)
    for network in client.networks.list(filters=mine):
        network.remove()
    for volume in client.volumes.list(filters=mine):
        with contextlib.suppress(APIError):
            volume.remove(force=True)
    for image in client.images.list(filters={"label": f"io.ci-actions.project={project}"}):
        for ref in image.tags or [image.id]:
            with contextlib.suppress(APIError):
                client.images.remove(ref, force=True)
    client.close()
