"""Prepare a workspace: dependencies per package dir in parallel, Prisma once, then pack it.

Each store entry is restored on a hit; on a miss it is built by its command and saved. A failed
install or generate raises WorkspaceError with the directory and the tool's own message, and saves
nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ci_actions import artifact, cache
from ci_actions.workspace import (
    EntryResult,
    StoreEntry,
    WorkspaceError,
    build,
    materialize,
    to_metadata,
)
from prepare_workspace import plan


@dataclass(frozen=True)
class PrepareRequest:
    workspace: Path
    package_dirs: list[str]
    install_command: list[str]
    prod_layer: bool
    prisma_schemas: list[str]
    generate_command: list[str] | None  # None: `npx --no-install prisma generate --schema <schema>`
    cache_dir: Path
    workspace_root: Path
    exclude: list[str]
    retention: float
    link_mode: str
    run: artifact.RunId


@dataclass
class PrepareReport:
    entries: list[EntryResult]
    packed: artifact.Packed
    phases: dict[str, float]
    expired: list[Path]

    @property
    def all_hit(self) -> bool:
        return all(r.hit for r in self.entries)

    def directory_hits(self) -> dict[str, bool]:
        return {r.entry.directory: r.hit for r in self.entries if r.entry.role == "deps-all"}


def toolchain() -> plan.Toolchain:
    def version(tool: str) -> str:
        try:
            return subprocess.run([tool, "--version"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise WorkspaceError(f"`{tool} --version` failed ({exc}); is Node.js installed on the runner?") \
                from exc
    uname = os.uname()
    return plan.Toolchain(version("node"), version("npm"), f"{uname.sysname}-{uname.machine}".lower())


def _spec(request: PrepareRequest, entry: StoreEntry, workspace: Path | None = None) -> cache.CacheSpec:
    return cache.CacheSpec(entry.key, list(entry.paths), workspace or request.workspace, request.cache_dir)


def _prod_layer(request: PrepareRequest, entry: StoreEntry) -> EntryResult:
    """Make sure the store holds the production-only install, built in a scratch copy of the dir."""
    started = time.monotonic()
    if cache.restore(_spec(request, entry), lookup_only=True).hit:
        return EntryResult(entry, True, time.monotonic() - started)
    with tempfile.TemporaryDirectory(prefix="ci-actions-prod-") as scratch:
        package = Path(scratch) / entry.directory
        package.mkdir(parents=True)
        for name in ("package.json", *plan.LOCK_FILES, ".npmrc"):
            source = request.workspace / entry.directory / name
            if source.exists():
                shutil.copy2(source, package / name)
        build(entry, Path(scratch))
        saved = cache.save(_spec(request, entry, Path(scratch)))
    return EntryResult(entry, False, time.monotonic() - started, saved.warnings)


def dependency_entries(request: PrepareRequest, tools: plan.Toolchain) -> list[StoreEntry]:
    entries = []
    for directory in request.package_dirs:
        package = request.workspace / directory
        lock = next((package / name for name in plan.LOCK_FILES if (package / name).exists()), None)
        if lock is None:
            raise WorkspaceError(f"{directory}: no package-lock.json; `npm ci` needs one. Run `npm install` "
                               "there and commit the lock file.")
        entries += plan.dependency_entries(directory, lock.read_bytes(), tools, request.install_command,
                                           prod_layer=request.prod_layer)
    return entries


def prisma_entries(request: PrepareRequest) -> list[StoreEntry]:
    entries = []
    for schema_line in request.prisma_schemas:
        schema = PurePosixPath(schema_line)
        path = request.workspace / schema
        if not path.is_file():
            raise WorkspaceError(f"prisma-schema: {schema} does not exist in the workspace")
        package = next((p for p in schema.parents if (request.workspace / p / "package.json").exists()), None)
        if package is None:
            raise WorkspaceError(f"prisma-schema: no package.json above {schema}")
        version_file = request.workspace / package / "node_modules" / "prisma" / "package.json"
        try:
            version = json.loads(version_file.read_text())["version"]
        except (OSError, ValueError, KeyError) as exc:
            raise WorkspaceError(f"prisma-schema: {schema}: the `prisma` package is not installed in "
                               f"{package} (add it to its devDependencies)") from exc
        command = request.generate_command or [
            "npx", "--no-install", "prisma", "generate", f"--schema={schema.relative_to(package)}"]
        entries.append(plan.prisma_entry(schema, path.read_text(), package, version, command))
    return entries


def prepare(request: PrepareRequest) -> PrepareReport:
    started = time.monotonic()
    phases: dict[str, float] = {}
    deps = dependency_entries(request, toolchain())
    with ThreadPoolExecutor(max(1, len(deps))) as pool:
        jobs = [pool.submit(_prod_layer, request, e) if e.role == "deps-prod" else
                pool.submit(materialize, e, request.workspace, request.cache_dir, request.link_mode)
                for e in deps]
        results = [job.result() for job in jobs]
    phases["dependencies"] = time.monotonic() - started

    mark = time.monotonic()
    prisma = prisma_entries(request)
    results += [materialize(e, request.workspace, request.cache_dir, request.link_mode) for e in prisma]
    phases["prisma"] = time.monotonic() - mark

    mark = time.monotonic()
    destination = request.run.directory(request.workspace_root)
    packed = artifact.pack(request.workspace, destination, run=request.run, exclude=request.exclude,
                           metadata=to_metadata(deps + prisma))
    expired = artifact.remove_expired(request.workspace_root, older_than=request.retention,
                                      keep=destination)
    phases["pack"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    return PrepareReport(results, packed, phases, expired)
