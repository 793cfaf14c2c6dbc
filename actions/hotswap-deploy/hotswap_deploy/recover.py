"""Crash recovery: a deploy killed mid-way left a `started` release with no `finished` line.

The next deploy (or `deploy status`) brings the project back to one version: the previous release
when every service still has its old containers running (the usual case: killed before retiring
them), else the new one, which had passed its health checks before it was switched in. The proxy is
pointed at the containers kept, the others are removed, and the ledger says what happened.
"""

from __future__ import annotations

import docker

from ci_actions import ledger
from hotswap_deploy import containers
from hotswap_deploy.plan import container_port
from hotswap_deploy.proxy import Proxy, Upstream


def recover(client: docker.DockerClient, book: ledger.Ledger, proxy: Proxy | None, model: dict,
            services: list[str], keep: int) -> str:
    """Returns what was done ('' when no deploy was interrupted). Call it under the deploy lock."""
    releases = book.releases()
    release = ledger.in_flight(releases)
    if release is None:
        return ""
    project = model["name"]
    sides = {}
    for service in services:
        up = [c for c in containers.running(containers.service_containers(client, project, service))
              if containers.death(c, c.attrs.get("RestartCount", 0)) is None]
        new = [c for c in up if c.labels.get(containers.RELEASE_LABEL) == release.id]
        sides[service] = ([c for c in up if c not in new], new)
    back = all(old for old, _ in sides.values())
    for service, (old, new) in sides.items():
        kept, drop = (old, new) if back or not new else (new, old)
        if kept and proxy is not None:
            port = container_port(model, service)
            proxy.switch(service, Upstream([containers.address(c, port) for c in kept], []))
        for container in drop:
            container.remove(force=True)
    if back:
        summary = f"deploy {release.id} ({release.sha[:12]}) was interrupted; back on the previous release"
        book.finish(release, "recovered", reason=summary)
    else:
        summary = (f"deploy {release.id} ({release.sha[:12]}) was interrupted after retiring the old "
                   "containers; its new containers were healthy and stay live")
        book.finish(release, ledger.LIVE, reason=summary,
                    rollback_targets=ledger.next_rollback_targets(releases, release.sha, keep))
    return summary
