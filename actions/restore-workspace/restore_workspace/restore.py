"""Unpack the run's verified artifact, then complete it from the store (or rebuild what is missing)."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from ci_actions import artifact, timing
from ci_actions.store.keys import Scope
from ci_actions.workspace import (
    Commands,
    EntryResult,
    Job,
    StoreEntry,
    WorkspaceError,
    complete,
    from_metadata,
    warnings_of,
)
from restore_workspace import guard


@dataclass(frozen=True)
class RestoreRequest:
    workspace: Path
    workspace_root: Path
    cache_dir: Path
    layer: str
    link_mode: str
    run: artifact.RunId
    commands: Commands  # what rebuilds an entry the store lost: this job's own inputs, not the artifact's
    clean: bool = False  # wipe the workspace even if it holds work (guard.py); the input defaults to true
    shared_store: bool = False  # see cache-local's shared-store input
    scope: Scope = field(default_factory=Scope)  # the store's scope: the run's ref (see cache-local)


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
        rebuilt = [f"{r.entry.key} was not in the store; rebuilt it with `{shlex.join(r.built_with)}`"
                   for r in self.entries if not r.hit]
        return [*warnings_of(self.entries), *rebuilt]


def check_layer(entries: list[StoreEntry], layer: str) -> None:
    """A layer prepare did not make is an error, not a node_modules with nothing in it."""
    roles = {e.role for e in entries}
    if roles & {"deps-all", "deps-prod"} and f"deps-{layer}" not in roles:
        raise WorkspaceError(f"layer: {layer} was asked for, but prepare-workspace made no {layer} layer in "
                             f"this run; set prod-layer: true there, or use layer: all")


def restore_workspace(request: RestoreRequest) -> RestoreReport:
    started = time.monotonic()
    directory = artifact.find(request.workspace_root, request.run)
    recorded = artifact.read_manifest(directory)  # all checked before the workspace is touched:
    check_layer(from_metadata(recorded.metadata, recorded.run), request.layer)
    if not request.clean:
        guard.check(request.workspace_root, request.workspace)
    with timing.phase("unpack") as record:
        manifest = artifact.unpack(directory, request.workspace)
        record["bytes"] = manifest.archive_bytes
    phases = {"unpack": time.monotonic() - started}
    wanted = [e for e in from_metadata(manifest.metadata, manifest.run) if e.wanted_for(request.layer)]
    mark = time.monotonic()
    # The generated client goes in last: it lives inside (or beside) the node_modules restored first.
    results = []
    for step in ([e for e in wanted if e.role != "prisma"], [e for e in wanted if e.role == "prisma"]):
        results += complete([Job(e, request.workspace, request.commands.for_entry(e)) for e in step],
                            request.cache_dir, request.link_mode, scope=request.scope,
                            shared=request.shared_store)
    phases["dependencies"] = time.monotonic() - mark
    guard.record(request.workspace_root, request.workspace, manifest.run)
    phases["total"] = time.monotonic() - started
    return RestoreReport(directory, manifest, results, phases)
