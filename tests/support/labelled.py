"""Docker objects found by one label: what a test or bench left behind, and their removal (containers
first: they hold networks and volumes). Only what carries the label is ever listed or removed."""

from __future__ import annotations

import contextlib

import docker
from docker.errors import APIError, NotFound


def labelled(client: docker.DockerClient, label: str) -> dict[str, list[str]]:
    """Names of the containers, networks and volumes that carry `label` (`key` or `key=value`)."""
    filters = {"label": label}
    return {"containers": sorted(c.name for c in client.containers.list(all=True, filters=filters)),
            "networks": sorted(n.name for n in client.networks.list(filters=filters)),
            "volumes": sorted(v.name for v in client.volumes.list(filters=filters))}


def remove_labelled(client: docker.DockerClient, label: str) -> None:
    filters = {"label": label}
    for container in client.containers.list(all=True, filters=filters):
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=filters):
        with contextlib.suppress(NotFound, APIError):
            network.remove()
    for volume in client.volumes.list(filters=filters):
        with contextlib.suppress(NotFound, APIError):
            volume.remove(force=True)
