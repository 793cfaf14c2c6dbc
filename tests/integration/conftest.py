"""Fixtures for integration tests against a real Docker engine.

The engine and the base images come from the harness scripts; a test that needs them fails (never
skips) with the command that fixes the machine:

    scripts/ensure-docker.sh        # starts dockerd when none answers, links the compose plugin
    scripts/build-base-images.sh    # ci-actions/{busybox,node,postgres,redis}:local, no registry
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
import requests
from docker.errors import DockerException, ImageNotFound

BUSYBOX_IMAGE = "ci-actions/busybox:local"
NODE_IMAGE = "ci-actions/node:local"
POSTGRES_IMAGE = "ci-actions/postgres:local"
REDIS_IMAGE = "ci-actions/redis:local"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the engine carry the `docker` marker, so `-m "not docker"` leaves them out."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker SDK client for the engine of the environment (DOCKER_HOST or the default socket)."""
    problem = None
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except (DockerException, requests.RequestException) as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block: no chained traceback in the report
        pytest.fail(f"no Docker engine answers; run scripts/ensure-docker.sh ({problem})", pytrace=False)
    yield client
    client.close()


def _local_image(client: docker.DockerClient, tag: str) -> str:
    try:
        client.images.get(tag)
    except ImageNotFound:
        missing = True
    else:
        missing = False
    if missing:
        pytest.fail(f"image {tag} is missing; run scripts/build-base-images.sh", pytrace=False)
    return tag


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    """The tag of the local busybox base image, after checking the engine has it."""
    return _local_image(docker_client, BUSYBOX_IMAGE)


@pytest.fixture(scope="session")
def node_image(docker_client: docker.DockerClient) -> str:
    """The tag of the local Node runtime image (the machine's node + its libraries + npm)."""
    return _local_image(docker_client, NODE_IMAGE)


@pytest.fixture(scope="session")
def service_images(docker_client: docker.DockerClient) -> tuple[str, str]:
    """The local Postgres and Redis images the example app's data services run."""
    return _local_image(docker_client, POSTGRES_IMAGE), _local_image(docker_client, REDIS_IMAGE)
