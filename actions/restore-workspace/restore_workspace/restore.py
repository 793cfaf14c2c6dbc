"""Unpack the run's verified artifact, then complete it from the store (or rebuild what is missing)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ci_actions import artifact
from ci_actions.workspace import EntryResult, from_metadata, materialize


@dataclass(frozen=True)
class RestoreRequest:
    workspace: Path
    workspace_root: Path
    cache_dir: Path
    layer: str
    link_mode: str
    run: artifact.RunId


@dataclass
class RestoreReport:
    artifact_dir: Path
    manifest: artifact.ArtifactManifest
    entries: list[EntryResult]
    phases: dict[str, float]

    @property
    def all_hit(self) -> bool:
        return all(r.hit for r in self.entries)


def restore_workspace(request: RestoreRequest) -> RestoreReport:
    started = time.monotonic()
    directory = artifact.find(request.workspace_root, request.run)
    manifest = artifact.unpack(directory, request.workspace)
    phases = {"unpack": time.monotonic() - started}
    wanted = [e for e in from_metadata(manifest.metadata) if e.wanted_for(request.layer)]
    deps = [e for e in wanted if e.role != "prisma"]
    mark = time.monotonic()
    with ThreadPoolExecutor(max(1, len(deps))) as pool:
        results = list(pool.map(
            lambda e: materialize(e, request.workspace, request.cache_dir, request.link_mode), deps))
    # The generated client goes in last: it lives inside (or beside) the node_modules just restored.
    results += [materialize(e, request.workspace, request.cache_dir, request.link_mode)
                for e in wanted if e.role == "prisma"]
    phases["dependencies"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    return RestoreReport(directory, manifest, results, phases)
