"""The Docker engine through the docker SDK, with one clear error when it cannot be reached."""

from __future__ import annotations

import docker
import requests
from docker.errors import DockerException


class EngineError(Exception):
    """The Docker engine does not answer."""


def connect(timeout: float = 120) -> docker.DockerClient:
    """A client for the engine of the environment (DOCKER_HOST or the default socket), pinged once."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"the Docker engine does not answer ({exc}). Check it with `docker info`; start it with "
            "`sudo systemctl start docker` (or `dockerd`), and check DOCKER_HOST and that this user may "
            "use /var/run/docker.sock.") from None
    return client
