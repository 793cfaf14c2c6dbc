"""The workspace artifact: one run's prepared workspace as tar (PAX) + zstd on the runner's disk.

Unlike upload-artifact v4 it keeps hidden files (`node_modules/.prisma/client`), file modes and
symlinks, and never leaves the machine. Layout, keyed so concurrent runs and re-runs never collide::

    <root>/<owner>-<repo>/<run id>/<attempt>/workspace.tar.zst
                                            /manifest.json     written last: no manifest, no artifact

GNU tar writes and reads the archive (Python's tarfile is 3-5x slower on a node_modules-sized tree);
zstandard compresses on every core and hashes the stream as it goes. The manifest holds the archive's
sha256 and size, every regular file with its size, and what the producer wants consumers to know (the
store entries to restore). Unpacking verifies the archive digest before reading it, checks every member
header as the stream passes to tar (tar_scan: no absolute paths, no `..`, no links that leave the tree,
no devices), extracts into a staging directory beside the workspace, compares the member list with the
manifest, and only then moves the result into the workspace: nothing is ever half-unpacked there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from ci_actions.tar_scan import HostileMember, TarScanner

FORMAT = "ci-actions-workspace-1"
ARCHIVE = "workspace.tar.zst"
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024
COMPRESSION_LEVEL = 3


def default_root() -> Path:
    """Persistent and per user; never under RUNNER_TEMP, which the runner wipes every job."""
    return Path.home() / ".cache" / "ci-actions" / "workspaces"


class ArtifactError(Exception):
    """The artifact is missing, damaged or hostile; the message names the run and what failed."""


@dataclass(frozen=True)
class RunId:
    repository: str
    run_id: str
    attempt: int

    def directory(self, root: Path, attempt: int | None = None) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]", "-", self.repository) or "local"
        return root / slug / self.run_id / str(self.attempt if attempt is None else attempt)

    def __str__(self) -> str:
        return f"{self.repository} run {self.run_id} attempt {self.attempt}"


@dataclass
class ArtifactManifest:
    run: str
    archive_sha256: str
    archive_bytes: int
    files: dict[str, int]  # regular file -> size
    created: float = field(default_factory=time.time)
    metadata: dict = field(default_factory=dict)
    format: str = FORMAT


@dataclass(frozen=True)
class Packed:
    directory: Path
    manifest: ArtifactManifest

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE


def _excluded(relative: str, exclude: Sequence[str]) -> bool:
    """`exclude` names match any path segment (`node_modules`) or a workspace-relative prefix."""
    parts = relative.split("/")
    return any(name in parts or relative == name or relative.startswith(name.rstrip("/") + "/")
               for name in exclude)


def walk(workspace: Path, exclude: Sequence[str]) -> Iterator[tuple[str, int | None]]:
    """(relative path, size if a regular file) for everything to pack: pre-order, names sorted,
    symlinks not followed; one scandir per directory and one lstat per file."""
    cut = len(str(workspace)) + 1

    def visit(directory: str) -> Iterator[tuple[str, int | None]]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            relative = entry.path[cut:]
            if exclude and _excluded(relative, exclude):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield relative, None
                yield from visit(entry.path)
            elif entry.is_file(follow_symlinks=False):
                yield relative, entry.stat(follow_symlinks=False).st_size
            else:
                yield relative, None

    yield from visit(str(workspace))


def _feed_names(pipe: BinaryIO, workspace: Path, exclude: Sequence[str], files: dict[str, int],
                failures: list[OSError]) -> None:
    """Write NUL-separated member names to tar, recording each regular file's size for the manifest; a
    walk failure is kept in `failures` for the packing thread to raise (tar then gets a short list)."""
    try:
        for relative, size in walk(workspace, exclude):
            pipe.write(os.fsencode(relative) + b"\0")
            if size is not None:
                files[relative] = size
    except BrokenPipeError:
        pass  # tar stopped early; its exit status and message say why
    except OSError as exc:
        failures.append(exc)
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


class _HashingWriter:
    """A file-like sink that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


# PAX without the per-file extended header that sub-second times would need: mtimes kept to the second.
TAR_CREATE = ["tar", "--create", "--file=-", "--format=posix",
              "--pax-option=delete=atime,delete=ctime,delete=mtime",
              "--numeric-owner", "--owner=0", "--group=0", "--no-recursion", "--null"]
TAR_EXTRACT = ["tar", "--extract", "--file=-", "--no-same-owner", "--delay-directory-restore"]


def pack(workspace: Path, destination: Path, *, run: RunId, exclude: Sequence[str],
         metadata: dict | None = None) -> Packed:
    """Stream the workspace into `destination` (a fresh directory), manifest last."""
    if (destination / MANIFEST).exists():
        raise ArtifactError(f"an artifact for {run} already exists at {destination}")
    destination.mkdir(parents=True, exist_ok=True)
    staging = destination / f".{ARCHIVE}.{secrets.token_hex(4)}"
    files: dict[str, int] = {}
    failures: list[OSError] = []
    tar = subprocess.Popen([*TAR_CREATE, "-C", str(workspace), "--files-from=-"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _widen(tar.stdout)
    # the walk feeds tar's member list while tar archives and zstd compresses: three stages at once
    feeder = threading.Thread(target=_feed_names, args=(tar.stdin, workspace, exclude, files, failures),
                              daemon=True)
    feeder.start()
    try:
        with staging.open("wb") as raw:
            sink = _HashingWriter(raw)
            zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, threads=-1).copy_stream(
                tar.stdout, sink, read_size=CHUNK, write_size=CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        feeder.join()
        if failures:
            raise ArtifactError(f"packing {workspace} for {run} failed: {failures[0]}")
        if tar.wait() != 0:
            raise ArtifactError(f"packing {workspace} for {run} failed: {tar.stderr.read().decode().strip()}")
        staging.replace(destination / ARCHIVE)
    finally:
        if tar.poll() is None:
            tar.kill()
            tar.wait()
        staging.unlink(missing_ok=True)
    manifest = ArtifactManifest(str(run), sink.sha256.hexdigest(), sink.size, files, metadata=metadata or {})
    _write_atomically(destination / MANIFEST, json.dumps(vars(manifest), indent=1).encode())
    return Packed(destination, manifest)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def find(root: Path, run: RunId) -> Path:
    """This attempt's artifact, else the newest earlier attempt's (a re-run of failed jobs only)."""
    for attempt in range(run.attempt, 0, -1):
        directory = run.directory(root, attempt)
        if (directory / MANIFEST).exists():
            return directory
    raise ArtifactError(f"no workspace artifact for {run} under {root}: did prepare-workspace run in "
                        "this run, with the same workspace-root?")


def read_manifest(directory: Path) -> ArtifactManifest:
    try:
        data = json.loads((directory / MANIFEST).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        return ArtifactManifest(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"the artifact manifest {directory / MANIFEST} is unreadable: {exc}") from exc


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def unpack(directory: Path, workspace: Path) -> ArtifactManifest:
    """Verify, extract to staging, check every file, then replace the workspace's contents."""
    manifest = read_manifest(directory)
    archive = directory / ARCHIVE
    try:
        digest, size = _sha256_file(archive)
    except OSError as exc:
        raise ArtifactError(f"{manifest.run}: cannot read {archive}: {exc}") from exc
    if (digest, size) != (manifest.archive_sha256, manifest.archive_bytes):
        raise ArtifactError(f"{manifest.run}: {archive} failed verification (sha256 {digest[:16]}…, "
                            f"{size} bytes; the manifest says {manifest.archive_sha256[:16]}…, "
                            f"{manifest.archive_bytes} bytes): truncated or corrupt")
    workspace.mkdir(parents=True, exist_ok=True)
    staging = workspace.parent / f".{workspace.name}.unpack-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        _extract(archive, staging, manifest)
        _replace_contents(workspace, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _widen(pipe: BinaryIO) -> None:
    """Let the pipe to or from tar hold a whole chunk (64 KiB by default): each side then works on
    the next chunk while the other takes this one, instead of the two taking turns."""
    with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)


def _extract(archive: Path, staging: Path, manifest: ArtifactManifest) -> None:
    """Decompress once; every chunk goes to the header scanner and to tar. A refused member stops
    tar at once, and staging (never the workspace) is thrown away by the caller."""
    scanner = TarScanner()
    tar = subprocess.Popen([*TAR_EXTRACT, "-C", str(staging)], stdin=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    _widen(tar.stdin)
    try:
        with archive.open("rb") as raw:
            for chunk in zstandard.ZstdDecompressor().read_to_iter(raw, read_size=CHUNK, write_size=CHUNK):
                scanner.feed(chunk)
                tar.stdin.write(chunk)
        tar.stdin.close()
    except HostileMember as exc:
        tar.kill()
        raise ArtifactError(f"{manifest.run}: refused archive member {exc}") from exc
    except (zstandard.ZstdError, BrokenPipeError) as exc:
        tar.kill()
        raise ArtifactError(f"{manifest.run}: the archive does not unpack: {exc}") from exc
    finally:
        status = tar.wait()
    if status != 0:
        raise ArtifactError(f"{manifest.run}: tar failed: {tar.stderr.read().decode().strip()}")
    if scanner.files != manifest.files:
        differ = sorted(set(scanner.files.items()) ^ set(manifest.files.items()))
        raise ArtifactError(f"{manifest.run}: the archive's files differ from the manifest's, e.g. "
                            f"{differ[0][0]!r}")


def _replace_contents(workspace: Path, staging: Path) -> None:
    """Swap in the unpacked tree: what the checkout left is removed, as `actions/checkout` would clean."""
    for old in workspace.iterdir():
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for new in staging.iterdir():
        new.rename(workspace / new.name)


def remove_expired(root: Path, *, older_than: float, keep: Path) -> list[Path]:
    """Delete run directories whose artifacts are older than the retention; never `keep`."""
    removed = []
    now = time.time()
    for manifest in root.glob(f"*/*/*/{MANIFEST}"):
        run_dir = manifest.parent
        if run_dir == keep:
            continue
        with contextlib.suppress(OSError):
            if now - manifest.stat().st_mtime > older_than:
                shutil.rmtree(run_dir)
                removed.append(run_dir)
    return removed
