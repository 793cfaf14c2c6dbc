"""Prepare a workspace: dependencies per package dir in parallel, Prisma once, then pack it.

On a hit an entry is only checked in the store (its manifest whole, every blob there) and restored
nowhere: the artifact leaves it out and each later job restores it (restore-workspace), and every key
comes from files read before any install (the lock pins the Prisma versions). On a miss it is built
by its command and saved (the installs run at once, the store operations one after another). The one
hit placed here is a package's node_modules whose Prisma client missed: the generator needs it. A
failed install or generate raises WorkspaceError with the directory and the tool's own message, and
saves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ci_actions import artifact, timing
from ci_actions.store.keys import Scope
from ci_actions.workspace import (
    EntryResult,
    Job,
    Miss,
    StoreEntry,
    WorkspaceError,
    complete,
    generate_command,
    look_up,
    merged,
    to_metadata,
    warnings_of,
)
from prepare_workspace import checks, plan


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
    scope: Scope = field(default_factory=Scope)  # the store's scope: the run's ref (see cache-local)


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
    return plan.Toolchain(version("node"), installed_npm() or version("npm"),
                          f"{uname.sysname}-{uname.machine}".lower())


def installed_npm() -> str | None:
    """The version `npm --version` prints, read from the package.json of the npm-cli.js that `npm` on
    PATH runs: asking npm costs a Node start-up and npm's loading (0.4 s here) on every prepare, hit
    or miss. None for anything else (a wrapper script, a shim): then npm is asked."""
    found = shutil.which("npm")
    cli = Path(found).resolve() if found else None
    if cli is None or cli.name != "npm-cli.js" or cli.parent.name != "bin":
        return None
    try:
        package = json.loads((cli.parent.parent / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = package.get("version") if isinstance(package, dict) and package.get("name") == "npm" else None
    return version if isinstance(version, str) else None


def dependency_entries(request: PrepareRequest, checked: checks.Checked,
                       tools: plan.Toolchain) -> list[StoreEntry]:
    return [entry for package in checked.packages
            for entry in plan.dependency_entries(package.directory, package.install_inputs, tools,
                                                 request.install_command, prod_layer=request.prod_layer)]


def prisma_entries(request: PrepareRequest, checked: checks.Checked) -> list[StoreEntry]:
    entries = []
    for schema in checked.schemas:
        command = generate_command(schema.path, schema.package, request.generate_command)
        try:
            entries.append(plan.prisma_entry(schema.path, schema.text, schema.package, schema.prisma_version,
                                             schema.client_version, command))
        except ValueError as exc:
            raise WorkspaceError(f"prisma-schema: {schema.path}: {exc}") from exc
    return entries


def _prod_scratch(package: checks.Package, stack: ExitStack) -> Path:
    """A scratch tree holding only the files the install reads: the production-only install is built
    there, so the workspace's full install is never disturbed."""
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ci-actions-prod-")))
    for name, content in package.install_inputs:
        path = scratch / package.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return scratch


def _prisma(request: PrepareRequest, entries: list[StoreEntry], deps: list[EntryResult]) -> list[EntryResult]:
    """Each client checked in the store; for those that missed, their package's node_modules placed
    first (a hit that was only checked: `prisma generate` reads it), then generated and saved. `deps`
    is updated in place with what was restored."""
    found = look_up([Job(e, request.workspace, e.command, place=False) for e in entries], request.cache_dir,
                    request.link_mode, scope=request.scope, shared=request.shared_store)
    needed = {item.job.entry.directory for item in found if isinstance(item, Miss)}
    unplaced = [i for i, r in enumerate(deps) if r.entry.role == "deps-all" and r.entry.directory in needed
                and r.hit and not r.restored]
    placed = complete([Job(deps[i].entry, request.workspace, deps[i].entry.command) for i in unplaced],
                      request.cache_dir, request.link_mode, scope=request.scope, shared=request.shared_store)
    for index, result in zip(unplaced, placed, strict=True):
        result.seconds += deps[index].seconds
        deps[index] = result
    return merged(found)


def prepare(request: PrepareRequest) -> PrepareReport:
    """Check everything, then plan every entry, before the first install: no mistake costs a minute."""
    started = time.monotonic()
    destination = request.run.directory(request.workspace_root)
    with timing.phase("checks"):
        checked = checks.check(request.workspace, request.package_dirs, request.prisma_schemas, destination,
                               request.run)
        deps = dependency_entries(request, checked, toolchain())
        prisma = prisma_entries(request, checked)
    phases: dict[str, float] = {"checks": time.monotonic() - started}
    with ExitStack() as stack:
        packages = {p.directory: p for p in checked.packages}
        jobs = [Job(e, _prod_scratch(packages[e.directory], stack), e.command, place=False)
                if e.role == "deps-prod" else Job(e, request.workspace, e.command, place=False) for e in deps]
        results = complete(jobs, request.cache_dir, request.link_mode, scope=request.scope,
                           shared=request.shared_store)
    phases["dependencies"] = time.monotonic() - started - phases["checks"]

    mark = time.monotonic()
    results += _prisma(request, prisma, results)
    phases["prisma"] = time.monotonic() - mark

    mark = time.monotonic()
    with timing.phase("pack") as record:
        packed = artifact.pack(request.workspace, destination, run=request.run, exclude=request.exclude,
                               metadata=to_metadata(deps + prisma))
        record["bytes"] = packed.manifest.archive_bytes
    expired = artifact.remove_expired(request.workspace_root, older_than=request.retention,
                                      keep=destination)
    phases["pack"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    return PrepareReport(results, packed, phases, expired)
