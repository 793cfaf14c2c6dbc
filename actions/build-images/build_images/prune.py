"""List the project's images as releases, and prune what no release, container or rollback needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from build_images.plan import (
    CREATED_LABEL,
    PROJECT_LABEL,
    REVISION_LABEL,
    SERVICE_LABEL,
    LocalImage,
    PrunePlan,
    plan_prune,
)
from ci_actions import engine, ledger


@dataclass(frozen=True)
class PruneReport:
    plan: PrunePlan
    removed: list[LocalImage]
    failed: dict[str, str]  # image id -> why the engine refused
    bytes_freed: int


def project_images(client: docker.DockerClient, project: str) -> list[LocalImage]:
    """Every image build-images made for the project, tagged or dangling, newest first (not the classic
    builder's intermediate images: they carry the labels too, and go when their image goes)."""
    images = client.images.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    found = [LocalImage(id=i.id, tags=tuple(i.tags), service=i.labels.get(SERVICE_LABEL, ""),
                        revision=i.labels.get(REVISION_LABEL, ""), created=i.labels.get(CREATED_LABEL, ""),
                        size=int(i.attrs.get("Size", 0))) for i in images]
    return sorted(found, key=lambda i: (i.created, i.service), reverse=True)


def in_use(client: docker.DockerClient) -> set[str]:
    """Image ids of every container, running or stopped: the engine refuses to remove those anyway."""
    return {c.attrs["Image"] for c in client.containers.list(all=True, ignore_removed=True)}


def plan(client: docker.DockerClient, project: str, keep: int, state_dir: Path) -> PrunePlan:
    protected = ledger.protected_image_ids(ledger.Ledger(state_dir, project).releases())
    return plan_prune(project_images(client, project), keep=keep, in_use=in_use(client), protected=protected)


def prune(client: docker.DockerClient, project: str, keep: int, state_dir: Path) -> PruneReport:
    """Remove each planned image by untagging it (never forced: a container that appeared meanwhile keeps
    its image); bytes freed are what the engine's layer store shrank by."""
    prune_plan = plan(client, project, keep, state_dir)
    before = _layers_size(client)
    removed, failed = [], {}
    for image in prune_plan.remove:
        try:
            for ref in image.tags or (image.id,):
                client.images.remove(ref)
        except ImageNotFound:
            removed.append(image)
        except APIError as exc:
            failed[image.id] = exc.explanation or str(exc)
        else:
            removed.append(image)
    freed = max(0, before - _layers_size(client)) if removed else 0
    return PruneReport(prune_plan, removed, failed, freed)


def after_build(project: str, keep: int, state_dir: Path) -> tuple[PruneReport, str]:
    """The prune that follows a good build: its problem is a warning (returned), never a failed build,
    since every image is already built and tagged."""
    try:
        return prune(engine.connect(), project, keep, state_dir), ""
    except (DockerException, engine.EngineError, ledger.LedgerError) as exc:
        return PruneReport(PrunePlan({}, []), [], {}, 0), f"prune skipped: {exc}"


def _layers_size(client: docker.DockerClient) -> int:
    """The engine's layer store size (`docker system df`); 0 when the engine will not say."""
    try:
        return int(client.df().get("LayersSize") or 0)
    except APIError:
        return 0
