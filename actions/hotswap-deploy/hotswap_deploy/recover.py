"""Crash recovery: a deploy killed mid-way left a `started` release with no `finished` line.

The next deploy (or `deploy status`) brings the project back to one version, under the deploy lock:
- **back** to the previous release when every service still has an old container running (killed
  before retiring them): the proxy points at the old containers and the new ones are removed;
- else **forward** when every service has a new container that the ledger says was switched in (it
  had passed its health check), or still has an old one: the proxy points at what is kept (new where
  there is one), the rest is removed, and the release is live;
- else (a first deploy killed before every service was switched in): **nothing** stays live; the new
  containers are removed and a service with nothing left is pointed at the placeholder, which answers
  503 (never at a removed container).

In every case the service's stopped containers (a retire killed between stop and remove) are removed.
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
    found, sides = {}, {}
    for service in services:
        found[service] = containers.service_containers(client, project, service)
        up = [c for c in containers.running(found[service])
              if containers.death(c, c.attrs.get("RestartCount", 0)) is None]
        new = [c for c in up if c.labels.get(containers.RELEASE_LABEL) == release.id]
        sides[service] = ([c for c in up if c not in new], new if service in release.switched else [])
    if all(old for old, _ in sides.values()):
        way, kept = "back", {s: old for s, (old, _) in sides.items()}
    elif all(old or new for old, new in sides.values()):
        way, kept = "forward", {s: new or old for s, (old, new) in sides.items()}
    else:
        way, kept = "nothing", {s: old for s, (old, _) in sides.items()}
    for service in services:
        if proxy is not None:
            port = container_port(model, service)
            addresses = [containers.address(c, port) for c in kept[service]]
            proxy.switch(service, Upstream(addresses, []) if addresses else proxy.placeholder())
        for container in found[service]:
            ours = container.labels.get(containers.RELEASE_LABEL) == release.id
            if container not in kept[service] and (ours or way == "forward" or container.status in
                                                   containers.STOPPED):
                container.remove(force=True)
    head = f"deploy {release.id} ({release.sha[:12]}) was interrupted"
    if way == "forward":
        summary = (f"{head} after its new containers were switched in; they had passed their health checks "
                   "and stay live")
        book.finish(release, ledger.LIVE, reason=summary,
                    rollback_targets=ledger.next_rollback_targets(releases, release.sha, keep))
        return summary
    empty = [s for s in services if not kept[s]]
    summary = f"{head}; back on the previous release" if way == "back" else (
        f"{head} before every service was switched in and there is no earlier release; nothing is live "
        f"({', '.join(empty)} answer 503 from the placeholder)")
    book.finish(release, "recovered", reason=summary)
    return summary
