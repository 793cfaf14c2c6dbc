"""Unpack the run's verified artifact, then complete it from the store (or rebuild what is missing)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ci_actions import artifact
from ci_actions.workspace import Commands, EntryResult, Job, complete, from_metadata, warnings_of


@dataclass(frozen=True)
class RestoreRequest:
    workspace: Path
    workspace_root: Path
    cache_dir: Path
    layer: str
    link_mode: str
    run: artifact.RunId
    commands: Commands  # what rebuilds an entry the store lost: this job's own inputs, not the artifact's
    shared_store: bool = False  # see cache-local's shared-store input


@dataclass
class RestoreReport:
    artifact_dir: Path
    manifest: artifact.ArtifactManifest
    entries: list[EntryResult]
    phases: dict[str, float]

    @property
    def all_hit(self) -> bool:
        return all(r.hit for r in self.entries)

    @property
    def warnings(self) -> list[str]:
        return warnings_of(self.entries)


def restore_workspace(request: RestoreRequest) -> RestoreReport:
    started = time.monotonic()
    directory = artifact.find(request.workspace_root, request.run)
    recorded = artifact.read_manifest(directory)
    from_metadata(recorded.metadata, recorded.run)  # refused before the workspace is touched
    manifest = artifact.unpack(directory, request.workspace)
    phases = {"unpack": time.monotonic() - started}
    wanted = [e for e in from_metadata(manifest.metadata, manifest.run) if e.wanted_for(request.layer)]
    mark = time.monotonic()
    # The generated client goes in last: it lives inside (or beside) the node_modules restored first.
    results = []
    for step in ([e for e in wanted if e.role != "prisma"], [e for e in wanted if e.role == "prisma"]):
        results += complete([Job(e, request.workspace, request.commands.for_entry(e)) for e in step],
                            request.cache_dir, request.link_mode, shared=request.shared_store)
    phases["dependencies"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    return RestoreReport(directory, manifest, results, phases)
