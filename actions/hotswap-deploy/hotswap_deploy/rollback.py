"""Manual rollback: a deploy of a retained release's exact images, with the same zero-downtime switch."""

from __future__ import annotations

from docker.errors import ImageNotFound

from ci_actions import engine, ledger
from hotswap_deploy import settings
from hotswap_deploy.deploy import DeployRequest


class RollbackError(Exception):
    """The release asked for is not retained (the message lists the ones that are)."""


def pick(releases: list[ledger.Release], to: str) -> ledger.Release:
    """`previous` or a sha (a prefix of 7+ characters) among the live release's rollback targets."""
    targets = ledger.rollback_targets(releases)
    if to == "previous" and targets:
        return targets[0]
    if len(to) >= 7:
        for release in targets:
            if release.sha.startswith(to):
                return release
    retained = "; ".join(f"{r.sha[:12]} (deployed {r.started_at[:19]}, release {r.id})" for r in targets)
    raise RollbackError(f"release {to!r} is not retained for rollback; retained: {retained or 'none'}")


def rollback_request(saved: settings.Settings, project: str, to: str, *, lock_timeout: float, run: str = "",
                     actor: str = "") -> DeployRequest:
    """A deploy of the release `to` names, switched exactly as `saved` says (migrations are not re-run)."""
    target = pick(ledger.Ledger(saved.state_dir, project).releases(), to)
    missing = [s for s in saved.services if s not in target.images]
    if missing:
        raise RollbackError(f"release {target.id} has no image for {', '.join(missing)}")
    client = engine.connect()
    for service in saved.services:
        image = target.images[service]
        try:
            found = client.images.get(image.ref).id
        except ImageNotFound:
            found = ""
        if found != image.id:
            raise RollbackError(f"{image.ref} no longer names the image release {target.id} deployed "
                                f"({image.id}); it was moved or pruned")
    return DeployRequest(settings=saved, images={s: target.images[s].ref for s in saved.services},
                         sha=target.sha, kind="rollback", run=run, actor=actor, lock_timeout=lock_timeout)
