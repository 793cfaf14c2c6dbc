"""What a prepared workspace promises its consumers: the store entries that complete it.

prepare-workspace builds each entry (or restores it) and records them in the artifact's manifest;
restore-workspace reads them back and restores each one, or rebuilds it when the store no longer has it
(evicted, or dropped as damaged).

The artifact's record is data another job wrote, so it is checked field by field before use, and it
never says what to run: a rebuild runs the consumer's own commands (its inputs), and what it built is
saved under the entry's key only when that command is the one the key was made with.

Store operations run one after another in this (single-threaded) process: each already spreads over
every core on forked workers, and a fork beside other threads inherits their pipes (two savers on
threads once waited on each other's flushers forever). The slow part of a miss, the install, runs as
child processes all at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ci_actions import artifact, cache, declared, timing
from ci_actions.beneath import DIRECTORY, parent_beneath
from ci_actions.declared import Input
from ci_actions.store.keys import Scope, branch_ref, validate_key
from ci_actions.store.store import LINK_MODES

if TYPE_CHECKING:  # a step's run, read by the runner module; the library never reads GitHub itself
    from collections.abc import Mapping

    from ci_actions.runner import RunContext

Report = TypeVar("Report")

LAYERS = ("all", "prod")
ROLES = ("deps-all", "deps-prod", "prisma")
DEFAULT_INSTALL = "npm ci"
LOG_EDGE = 12  # lines kept from each end of a failed command's output: tools put the cause first


class WorkspaceError(Exception):
    """A step that builds the workspace failed; the message names the directory and quotes the tool."""


@dataclass(frozen=True)
class StoreEntry:
    role: str  # one of ROLES
    directory: str  # the package dir the command runs in, relative to the workspace
    key: str
    paths: tuple[str, ...]  # what the entry holds, relative to the workspace
    command: tuple[str, ...]  # what built it (part of the key); a consumer compares, never runs it
    schema: str = ""  # prisma: the schema, relative to the workspace

    def wanted_for(self, layer: str) -> bool:
        return self.role in (f"deps-{layer}", "prisma")


@dataclass
class EntryResult:
    entry: StoreEntry
    hit: bool
    seconds: float
    warnings: list[str] = field(default_factory=list)
    built_with: tuple[str, ...] = ()  # the command that built it, on a miss
    restored: bool = False  # a hit placed in the job's root; False: found whole in the store, left there
    bytes_restored: int = 0
    bytes_saved: int = 0  # the saved entry's size, on a miss that was saved


@dataclass(frozen=True)
class Commands:
    """The consumer's own commands, from its inputs: what builds an entry when the store lacks it."""

    install: tuple[str, ...]
    generate: tuple[str, ...] | None = None  # None: Prisma's own CLI, see generate_command

    def for_entry(self, entry: StoreEntry) -> tuple[str, ...]:
        if entry.role == "deps-prod":
            return prod_command(self.install)
        if entry.role == "prisma":
            return generate_command(PurePosixPath(entry.schema), PurePosixPath(entry.directory),
                                    self.generate)
        return self.install


def prod_command(install: Sequence[str]) -> tuple[str, ...]:
    return (*install, "--omit=dev")


def generate_command(schema: PurePosixPath, package: PurePosixPath,
                     custom: Sequence[str] | None) -> tuple[str, ...]:
    if custom:
        return tuple(custom)
    return ("npx", "--no-install", "prisma", "generate", f"--schema={schema.relative_to(package)}")


@dataclass(frozen=True)
class Job:
    """One entry to make present under `root` (the workspace, or a scratch copy of a package dir)."""

    entry: StoreEntry
    root: Path
    command: tuple[str, ...]  # run in root/entry.directory on a miss
    place: bool = True  # False: only make sure the store holds it (the production layer, in prepare)


# -- the inputs both workspace actions take, and the run flags of both commands ------------------

WORKSPACE_ROOT = Input(
    "workspace-root", "Where run artifacts live, keyed by repository, run id and attempt (prepare-workspace "
    "writes them, restore-workspace reads them). Empty means ~/.cache/ci-actions/workspaces.",
    parse=declared.path(artifact.default_root))
CACHE_DIR = Input("cache-dir", "The local store. Empty means ~/.cache/ci-actions/store.",
                  parse=declared.path(cache.default_cache_dir))
LINK_MODE = Input("link-mode", "How cached files reach the workspace (auto, copy, hardlink).", default="auto",
                  choices=LINK_MODES)
SHARED_STORE = Input(
    "shared-store", "Accept a store that other users of this machine can write to (they could poison it). "
    "Without it, such a store is refused with a warning and everything is built instead.", default="false",
    parse=declared.boolean)
STORE_INPUTS = (WORKSPACE_ROOT, CACHE_DIR, LINK_MODE, SHARED_STORE)


@dataclass(frozen=True)
class Where:
    """The checkout a workspace command works on, the run its artifact belongs to and the store's scope:
    a step's from its run, the CLI's from its flags (`add_run_arguments`)."""

    root: Path
    run: artifact.RunId
    scope: Scope = field(default_factory=Scope)

    @classmethod
    def of_run(cls, root: Path, context: RunContext) -> Where:
        return cls(root, artifact.RunId(context.repository, context.run_id, context.attempt),
                   context.cache_scope())

    @classmethod
    def of_args(cls, args: argparse.Namespace) -> Where:
        return cls(args.workspace.resolve(), artifact.RunId(args.repository, args.run_id, args.attempt),
                   Scope(args.scope, tuple(args.fallback_scopes)))


def add_run_arguments(parser: argparse.ArgumentParser, workspace_help: str) -> None:
    """The flags that stand for what a step learns from its run (`Where`): the checkout, the run, its ref."""
    parser.add_argument("--workspace", type=Path, required=True, help=workspace_help)
    parser.add_argument("--repository", default="local", help="owner/repo, part of the artifact's path")
    parser.add_argument("--run-id", required=True, help="the run the artifact belongs to")
    parser.add_argument("--attempt", type=int, default=1, help="the run's attempt (default: 1)")
    parser.add_argument("--scope", default="", metavar="REF", type=branch_ref,
                        help="the run's ref: store entries are saved under it and read from it first")
    parser.add_argument("--fallback-scope", action="append", default=[], metavar="REF", type=branch_ref,
                        dest="fallback_scopes", help="a ref whose entries are also read (a PR's base, the "
                                                     "default branch); repeat for several")


def warnings_of(results: list[EntryResult]) -> list[str]:
    """Each warning once (every entry of a run without a ref says so)."""
    return list(dict.fromkeys(warning for result in results for warning in result.warnings))


def run_step(action: str, inputs: Mapping[str, Input], make: Callable[[dict[str, Any], Where], Any],
             work: Callable[[Any], Report]) -> Report:
    """The workspace steps' start and failure protocol: timing records on, workspace-ready false until
    the step is done, a bad input one ::error:: and exit 2, a failed build one ::error:: and exit 1;
    the report's warnings as warnings."""
    from ci_actions import runner  # the step's side: the library itself never reads GitHub

    runner.start_timing(action)
    runner.set_output("workspace-ready", "false")
    try:
        request = make(runner.read_inputs(inputs), Where.of_run(runner.workspace(), runner.run_context()))
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    try:
        with runner.group(action):
            report = work(request)
    except (WorkspaceError, artifact.ArtifactError) as exc:
        runner.fail(str(exc))
    for warning in report.warnings:  # type: ignore[attr-defined]
        runner.warning(warning)
    return report


def run_cli(action: Callable[[], Any], render: Callable[[Any], dict]) -> int:
    """The workspace commands' shell protocol: errors and warnings on stderr, a JSON report on stdout."""
    try:
        report = action()
    except (WorkspaceError, artifact.ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(render(report)))
    return 0


# -- the artifact's record of entries -------------------------------------------------------------


def to_metadata(entries: list[StoreEntry]) -> dict:
    return {"entries": [asdict(e) for e in entries]}


def relative_path(value: object, what: str) -> str:
    """A workspace-relative POSIX path that stays inside (no absolute path, no `..`, no empty part)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is not a path: {value!r}")
    parts = value.split("/")
    if value.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\0" in value:
        raise ValueError(f"{what} {value!r} is not a plain path inside the workspace")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid text") from None
    return value


def _entry_from(raw: object) -> StoreEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"an entry is not an object: {raw!r}")
    role, key, paths, command = raw.get("role"), raw.get("key"), raw.get("paths"), raw.get("command")
    if role not in ROLES:
        raise ValueError(f"unknown entry role {role!r}")
    directory = raw.get("directory")
    if directory != ".":  # the workspace itself: a package at the root
        directory = relative_path(directory, "directory")
    if not isinstance(key, str):
        raise ValueError(f"key {key!r} is not a string")
    validate_key(key)
    if not isinstance(paths, list) or len(paths) != 1:
        raise ValueError(f"paths {paths!r} is not a list of one path")
    path = relative_path(paths[0], "path")
    if not isinstance(command, list) or not all(isinstance(arg, str) for arg in command):
        raise ValueError(f"command {command!r} is not a list of strings")
    schema = raw.get("schema", "")
    if role == "prisma":
        schema = relative_path(schema, "schema")
        if not PurePosixPath(schema).is_relative_to(directory):
            raise ValueError(f"schema {schema!r} is not in its package dir {directory!r}")
    elif path != str(PurePosixPath(directory) / "node_modules"):
        raise ValueError(f"a dependency layer of {directory!r} holds {path!r}, not its node_modules")
    elif schema:
        raise ValueError("a dependency layer has no schema")
    return StoreEntry(role, directory, key, (path,), tuple(command), schema)


def from_metadata(metadata: dict, run: str) -> list[StoreEntry]:
    """The entries an artifact's manifest records, each field checked: another job wrote them."""
    try:
        raw = metadata.get("entries", []) if isinstance(metadata, dict) else None
        if not isinstance(raw, list):
            raise ValueError(f"entries is not a list: {raw!r}")
        return [_entry_from(entry) for entry in raw]
    except ValueError as exc:  # InvalidKey is one
        raise artifact.ArtifactError(f"{run}: the artifact's entry list is not to be trusted: {exc}") from exc


# -- running commands -----------------------------------------------------------------------------


def excerpt(output: str) -> str:
    """The start (npm and Prisma say what is wrong first) and the end of a long output."""
    lines = output.strip().splitlines()
    if len(lines) <= 2 * LOG_EDGE:
        return "\n".join(lines)
    skipped = len(lines) - 2 * LOG_EDGE
    return "\n".join([*lines[:LOG_EDGE], f"[… {skipped} lines …]", *lines[-LOG_EDGE:]])


class Run(NamedTuple):
    """One command to run: where, what to call it in a failure, and its timing record's phase and fields."""

    command: tuple[str, ...]
    cwd: Path
    what: str
    phase: str
    fields: dict[str, Any]


def run_commands(runs: Sequence[Run]) -> None:
    """Start every command at once and wait for all of them, writing each one's timing record as it
    ends; raise WorkspaceError quoting each one that failed, in the order given. Output goes to files,
    not pipes, so no child waits on a full pipe."""
    failures: dict[int, str] = {}

    with contextlib.ExitStack() as stack:
        waiting: dict[int, tuple[int, subprocess.Popen, Any, Any, float]] = {}  # by pidfd
        stack.callback(_end_all, waiting)  # an exception here leaves no install running unseen
        for index, run in enumerate(runs):
            out, err = (stack.enter_context(tempfile.TemporaryFile()) for _ in range(2))
            start = time.time()
            try:
                process = subprocess.Popen(list(run.command), cwd=run.cwd, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=err)
            except OSError as exc:
                failures[index] = f"{run.what}: cannot run `{shlex.join(run.command)}` in {run.cwd}: {exc}"
                timing.ended(run.phase, start, failed=True, **run.fields)
                continue
            waiting[os.pidfd_open(process.pid)] = (index, process, out, err, start)
        while waiting:  # each one's end as it comes, for its timing record
            ready, _, _ = select.select(list(waiting), [], [])
            for fd in ready:
                index, process, out, err, start = waiting.pop(fd)
                os.close(fd)
                code = process.wait()
                run = runs[index]
                timing.ended(run.phase, start, failed=code != 0, **run.fields)
                if code:
                    failures[index] = (f"{run.what}: `{shlex.join(run.command)}` failed in {run.cwd} (exit "
                                       f"{code}):\n{excerpt(_read(err) or _read(out))}")
    if failures:
        raise WorkspaceError("\n\n".join(failures[index] for index in sorted(failures)))


def _end_all(waiting: dict[int, tuple[int, subprocess.Popen, Any, Any, float]]) -> None:
    """Kill and reap what is still running (only after an exception: normally nothing is left)."""
    for fd, (_index, process, *_rest) in waiting.items():
        process.kill()
        process.wait()
        os.close(fd)


def _read(handle: Any) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace").strip()


def remove_beneath(root: Path, relative: str) -> None:
    """Remove root/relative (a tree, a file or a link) without following any link, on the way or
    inside it; a link among its parents is refused (WorkspaceError), since it points elsewhere."""
    root_fd = os.open(root, DIRECTORY)
    try:
        try:
            parent, name = parent_beneath(root_fd, relative)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise WorkspaceError(f"{relative}: a parent directory is a link or leaves {root} "
                                 f"({exc.strerror}); refusing to delete through it") from exc
        try:
            mode = os.lstat(name, dir_fd=parent).st_mode
            if stat.S_ISDIR(mode):
                shutil.rmtree(name, dir_fd=parent)
            else:
                os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        finally:
            os.close(parent)
    finally:
        os.close(root_fd)


def _check_built(job: Job) -> None:
    """A package without dependencies gets an empty node_modules, so its (empty) layer is still stored
    and the next run hits instead of installing again; a generator must have written its output."""
    for path in job.entry.paths:
        target = job.root / path
        if job.entry.role.startswith("deps-"):
            target.mkdir(exist_ok=True)
        elif not target.exists():
            raise WorkspaceError(f"{job.entry.directory}: `{shlex.join(job.command)}` succeeded but did not "
                                 f"create {path}; check the generator's output in the schema")


# -- completing a workspace -----------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    """A job the store could not serve: look_up's answer for it, for `build`."""

    job: Job
    spec: cache.CacheSpec
    warnings: list[str]
    seconds: float


def look_up(jobs: Sequence[Job], cache_dir: Path, link_mode: str, *, scope: Scope,
            shared: bool = False) -> list[EntryResult | Miss]:
    """Each job's entry, one after another: restored into its root (`place`), or only checked whole in
    the store; a Miss for each the store cannot serve. Timing: a `restore` or `lookup` phase each."""
    found: list[EntryResult | Miss] = []
    for job in jobs:
        started = time.monotonic()
        spec = cache.CacheSpec(job.entry.key, list(job.entry.paths), job.root, cache_dir, shared=shared,
                               scope=scope)
        with timing.phase("restore" if job.place else "lookup", entry=job.entry.role,
                          package_dir=job.entry.directory) as record:
            outcome = cache.restore(spec, link_mode=link_mode, lookup_only=not job.place)
            record.update(hit=outcome.hit, bytes_restored=outcome.bytes)
        if not scope.own:  # said once: warnings_of drops repeats
            outcome.warnings.insert(0, cache.NO_SCOPE)
        elapsed = time.monotonic() - started
        found.append(EntryResult(job.entry, True, elapsed, outcome.warnings, restored=job.place,
                                 bytes_restored=outcome.bytes) if outcome.hit
                     else Miss(job, spec, outcome.warnings, elapsed))
    return found


def build(misses: Sequence[Miss]) -> list[EntryResult]:
    """Build every miss at once (an `install` or `prisma-generate` phase each), then save each one
    built (a `save` phase each) unless it was built by another command than its key names: the key
    would then name bytes that another command made."""
    if not misses:
        return []
    started = time.monotonic()
    for miss in misses:  # npm ci removes node_modules itself; a generator's output may hold
        if miss.job.entry.role.startswith("deps-"):  # the user's own files (`output = "../src"`): kept
            for path in miss.job.entry.paths:
                remove_beneath(miss.job.root, path)
    run_commands([Run(miss.job.command, miss.job.root / miss.job.entry.directory,
                      f"{miss.job.entry.directory}: {miss.job.entry.role}",
                      "prisma-generate" if miss.job.entry.role == "prisma" else "install",
                      {"package_dir": miss.job.entry.directory, "entry": miss.job.entry.role})
                  for miss in misses])
    built = time.monotonic() - started
    results = []
    for miss in misses:
        job, warnings, saved = miss.job, miss.warnings, 0
        mark = time.monotonic()
        _check_built(job)
        if job.command == job.entry.command:
            with timing.phase("save", entry=job.entry.role, package_dir=job.entry.directory) as record:
                result = cache.save(miss.spec)
                saved = result.bytes if result.saved else 0
                record["bytes_saved"] = saved
            warnings = warnings + result.warnings
        else:
            warnings = [*warnings, f"{job.entry.key}: rebuilt with `{shlex.join(job.command)}`, not "
                        f"`{shlex.join(job.entry.command)}` as prepare-workspace did, so the store was "
                        "not updated (pass the same command to both actions)"]
        seconds = miss.seconds + built + time.monotonic() - mark
        results.append(EntryResult(job.entry, False, seconds, warnings, job.command, bytes_saved=saved))
    return results


def complete(jobs: Sequence[Job], cache_dir: Path, link_mode: str, *, scope: Scope,
             shared: bool = False) -> list[EntryResult]:
    """Restore (or check) each job's entry; build every miss at once; save each one built. Entries are
    scoped as cache-local's: saved under the run's ref, read from it, a PR's base and the default
    branch, so a pull request's install never lands in a workspace main restores."""
    return merged(look_up(jobs, cache_dir, link_mode, scope=scope, shared=shared))


def merged(found: Sequence[EntryResult | Miss]) -> list[EntryResult]:
    """look_up's answers with each Miss built (`build`), in their order."""
    built = iter(build([item for item in found if isinstance(item, Miss)]))
    return [next(built) if isinstance(item, Miss) else item for item in found]
