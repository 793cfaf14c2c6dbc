"""What a prepared workspace promises its consumers: the store entries that complete it.

prepare-workspace builds each entry (or restores it) and records them in the artifact's manifest;
restore-workspace reads them back and restores each one, or rebuilds it with the recorded command
when the store no longer has it (evicted, or dropped as damaged).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ci_actions import artifact, cache
from ci_actions.store.store import LINK_MODES

LAYERS = ("all", "prod")
LOG_EDGE = 12  # lines kept from each end of a failed command's output: tools put the cause first


class WorkspaceError(Exception):
    """A step that builds the workspace failed; the message names the directory and quotes the tool."""


@dataclass(frozen=True)
class StoreEntry:
    role: str  # "deps-all", "deps-prod" or "prisma"
    directory: str  # where `command` runs, relative to the workspace
    key: str
    paths: tuple[str, ...]
    command: tuple[str, ...]  # argv that rebuilds the entry's paths from the workspace

    def wanted_for(self, layer: str) -> bool:
        return self.role in (f"deps-{layer}", "prisma")


@dataclass
class EntryResult:
    entry: StoreEntry
    hit: bool
    seconds: float
    warnings: list[str] = field(default_factory=list)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags `workspace prepare` and `workspace restore` share: where, which run, how."""
    parser.add_argument("--workspace-root", type=Path, default=artifact.default_root())
    parser.add_argument("--cache-dir", type=Path, default=cache.default_cache_dir())
    parser.add_argument("--link-mode", choices=LINK_MODES, default="auto")
    parser.add_argument("--repository", default="local")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--attempt", type=int, default=1)


def run_of(args: argparse.Namespace) -> artifact.RunId:
    return artifact.RunId(args.repository, args.run_id, args.attempt)


def warnings_of(results: list[EntryResult]) -> list[str]:
    return [warning for result in results for warning in result.warnings]


def run_cli(action: Callable[[], Any], render: Callable[[Any], dict]) -> int:
    """The workspace commands' shell protocol: errors and warnings on stderr, a JSON report on stdout."""
    try:
        report = action()
    except (WorkspaceError, artifact.ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in warnings_of(report.entries):
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(render(report)))
    return 0


def to_metadata(entries: list[StoreEntry]) -> dict:
    return {"entries": [asdict(e) for e in entries]}


def from_metadata(metadata: dict) -> list[StoreEntry]:
    return [StoreEntry(e["role"], e["directory"], e["key"], tuple(e["paths"]), tuple(e["command"]))
            for e in metadata.get("entries", [])]


def run_command(command: tuple[str, ...], cwd: Path, what: str) -> None:
    """Run a build command; on failure raise with its exit code and the tail of its output."""
    try:
        result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise WorkspaceError(f"{what}: cannot run `{shlex.join(command)}` in {cwd}: {exc}") from exc
    if result.returncode != 0:
        output = result.stderr.strip() or result.stdout
        raise WorkspaceError(f"{what}: `{shlex.join(command)}` failed in {cwd} "
                             f"(exit {result.returncode}):\n{excerpt(output)}")


def excerpt(output: str) -> str:
    """The start (npm and Prisma say what is wrong first) and the end of a long output."""
    lines = output.strip().splitlines()
    if len(lines) <= 2 * LOG_EDGE:
        return "\n".join(lines)
    skipped = len(lines) - 2 * LOG_EDGE
    return "\n".join([*lines[:LOG_EDGE], f"[… {skipped} lines …]", *lines[-LOG_EDGE:]])


def build(entry: StoreEntry, workspace: Path) -> None:
    """Run the entry's command and check it produced the entry's paths.

    A package without dependencies gets an empty node_modules, so its (empty) layer is still stored
    and the next run hits instead of installing again.
    """
    run_command(entry.command, workspace / entry.directory, f"{entry.directory}: {entry.role}")
    for path in entry.paths:
        if entry.role.startswith("deps-"):
            (workspace / path).mkdir(exist_ok=True)
        elif not (workspace / path).exists():
            raise WorkspaceError(f"{entry.directory}: `{shlex.join(entry.command)}` succeeded but did not "
                                 f"create {path}; check the generator's output in the schema")


def materialize(entry: StoreEntry, workspace: Path, cache_dir: Path, link_mode: str) -> EntryResult:
    """Restore the entry's exact key; on a miss, build it with its command and save it."""
    started = time.monotonic()
    spec = cache.CacheSpec(entry.key, list(entry.paths), workspace, cache_dir)
    outcome = cache.restore(spec, link_mode=link_mode)
    if outcome.hit:
        return EntryResult(entry, True, time.monotonic() - started, outcome.warnings)
    for path in entry.paths:
        shutil.rmtree(workspace / path, ignore_errors=True)
    build(entry, workspace)
    saved = cache.save(spec)
    return EntryResult(entry, False, time.monotonic() - started, outcome.warnings + saved.warnings)
