"""`deploy status` and `deploy history`: what is live, what a rollback can reach, and every release.

`status` takes the deploy lock and recovers an interrupted deploy first, so what it prints is a
consistent state: one version live and the proxy pointing at its containers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ci_actions import engine, ledger
from hotswap_deploy import containers, settings
from hotswap_deploy.deploy import resolve_compose
from hotswap_deploy.host import DockerHost
from hotswap_deploy.lock import deploy_lock
from hotswap_deploy.plan import container_port
from hotswap_deploy.proxy import Upstream
from hotswap_deploy.recover import recover

STATUS_LOCK_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServiceState:
    service: str
    containers: list[str]  # "name image status address"
    upstream: Upstream | None


@dataclass(frozen=True)
class Status:
    project: str
    live: ledger.Release | None
    recovered: str
    services: list[ServiceState]
    rollback_targets: list[ledger.Release]


def status(state_dir: Path, project: str) -> Status:
    saved = settings.load(state_dir, project)
    client = engine.connect()
    compose, model = resolve_compose(dataclasses.replace(saved.compose, project=project), state_dir)
    book = ledger.Ledger(state_dir, compose.project)
    proxy = saved.proxy_for(compose.project)
    with deploy_lock(book.directory, timeout=STATUS_LOCK_TIMEOUT, holder={"run": "deploy status"}):
        with DockerHost(client, compose) as host:
            recovered = recover(host, book, proxy, saved.keep)
        states = []
        for service in saved.services:
            port = container_port(model, service)
            found = []
            for c in containers.service_containers(client, compose.project, service):
                where = containers.address(c, port) if c.status == "running" else "-"
                found.append(f"{c.name} {c.attrs['Config']['Image']} {c.status} {where}")
            states.append(ServiceState(service, found, proxy.current(service) if proxy else None))
        releases = book.releases()
    return Status(compose.project, ledger.live(releases), recovered, states,
                  ledger.rollback_targets(releases))


def render(state: Status) -> str:
    live = state.live
    head = (f"live {live.sha[:12]} (release {live.id}, {live.kind} by {live.actor or '-'}, run "
            f"{live.run or '-'})") if live else "nothing live"
    lines = [f"project {state.project}: {head}"]
    if state.recovered:
        lines.append(f"recovered: {state.recovered}")
    for service in state.services:
        upstream = service.upstream
        routed = "no proxy"
        if upstream:
            routed = ", ".join(upstream.primary) + (f" (backup {', '.join(upstream.backup)})"
                                                    if upstream.backup else "")
        lines.append(f"  {service.service}: proxy -> {routed}")
        lines += [f"    {line}" for line in service.containers] or ["    no containers"]
    targets = ", ".join(r.sha[:12] for r in state.rollback_targets) or "none"
    lines.append(f"rollback targets: {targets}")
    return "\n".join(lines)


def history_table(releases: list[ledger.Release]) -> str:
    lines = [f"{'started':20} {'sha':12} {'kind':8} {'outcome':12} {'by':10} images / reason"]
    for r in releases:
        images = " ".join(f"{s}={i.ref}" for s, i in r.images.items())
        lines.append(f"{r.started_at[:19]:20} {r.sha[:12]:12} {r.kind:8} {r.outcome or 'in flight':12} "
                     f"{(r.actor or '-')[:10]:10} {images}" + (f"  ({r.reason})" if r.reason else ""))
    return "\n".join(lines)
