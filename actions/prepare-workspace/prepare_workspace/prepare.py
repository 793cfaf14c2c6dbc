"""Prepare a workspace: dependencies per package dir in parallel, Prisma once, then pack it.

Each store entry is restored on a hit; on a miss it is built by its command and saved (see
workspace.complete: the installs run at once, the store operations one after another). A failed
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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ci_actions import artifact
from ci_actions.workspace import (
    EntryResult,
    Job,
    StoreEntry,
    WorkspaceError,
    complete,
    generate_command,
    relative_path,
    to_metadata,
    warnings_of,
)
from prepare_workspace import plan


@dataclass(frozen=True)
class PrepareRequest:
    workspace: Path
    package_dirs: list[str]
    install_command: list[str]
    prod_layer: bool
    prisma_schemas: list[str]
    generate_command: list[str] | None  # None: `npx --no-install prisma generate --schema=<schema>`
    cache_dir: Path
    workspace_root: Path
    exclude: list[str]
    retention: float
    link_mode: str
    run: artifact.RunId
    shared_store: bool = False  # see cache-local's shared-store input


@dataclass
class PrepareReport:
    entries: list[EntryResult]
    packed: artifact.Packed
    phases: dict[str, float]
    expired: list[Path]

    @property
    def all_hit(self) -> bool:
        return all(r.hit for r in self.entries)

    @property
    def warnings(self) -> list[str]:
        skipped = [f"left out of the artifact (unpack would refuse it): {p}" for p in self.packed.skipped]
        return [*warnings_of(self.entries), *skipped]

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


def _package_dir(request: PrepareRequest, directory: str) -> str:
    """A package dir named by the input, normalised: a real directory inside the workspace (`.` is
    the workspace itself), checked before anything is installed."""
    name = directory.strip().rstrip("/").removeprefix("./") or "."
    try:
        if name != ".":
            relative_path(name, "package-dirs")
    except ValueError as exc:
        raise WorkspaceError(f"package-dirs: {directory!r} must be a directory inside the workspace "
                             f"{request.workspace}") from exc
    package = request.workspace / name
    if package.is_symlink() or not package.is_dir():
        raise WorkspaceError(f"package-dirs: {directory!r} is not a directory in the workspace "
                             f"{request.workspace}")
    return name


def dependency_entries(request: PrepareRequest, tools: plan.Toolchain) -> list[StoreEntry]:
    entries = []
    for line in request.package_dirs:
        directory = _package_dir(request, line)
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
        command = generate_command(schema, package, request.generate_command)
        try:
            entries.append(plan.prisma_entry(schema, path.read_text(), package, version, command))
        except ValueError as exc:
            raise WorkspaceError(f"prisma-schema: {schema}: {exc}") from exc
    return entries


def _prod_scratch(request: PrepareRequest, entry: StoreEntry, stack: ExitStack) -> Path:
    """A scratch tree holding only the package's manifest files: the production-only install is built
    there, so the workspace's full install is never disturbed."""
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ci-actions-prod-")))
    package = scratch / entry.directory
    package.mkdir(parents=True)
    for name in ("package.json", *plan.LOCK_FILES, ".npmrc"):
        source = request.workspace / entry.directory / name
        if source.exists():
            shutil.copy2(source, package / name)
    return scratch


def prepare(request: PrepareRequest) -> PrepareReport:
    started = time.monotonic()
    phases: dict[str, float] = {}
    deps = dependency_entries(request, toolchain())
    with ExitStack() as stack:
        jobs = [Job(e, _prod_scratch(request, e, stack), e.command, place=False) if e.role == "deps-prod"
                else Job(e, request.workspace, e.command) for e in deps]
        results = complete(jobs, request.cache_dir, request.link_mode, shared=request.shared_store)
    phases["dependencies"] = time.monotonic() - started

    mark = time.monotonic()
    prisma = prisma_entries(request)
    results += complete([Job(e, request.workspace, e.command) for e in prisma], request.cache_dir,
                        request.link_mode, shared=request.shared_store)
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
