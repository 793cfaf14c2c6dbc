"""The workspace artifact: one run's prepared workspace as tar (PAX) + zstd on the runner's disk.

Unlike upload-artifact v4 it keeps hidden files (`node_modules/.prisma/client`), file modes and
symlinks, and never leaves the machine. Layout, keyed so concurrent runs and re-runs never collide::

    <root>/<owner>-<repo>/<run id>/<attempt>/workspace.tar.zst
                                            /manifest.json     written last: no manifest, no artifact

The manifest holds the archive's sha256 and each file's, plus what the producer wants consumers to
know (the dependency entries to restore from the store). Unpacking verifies the archive digest before
reading it, extracts into a staging directory with tarfile's `data` filter (no absolute paths, no
`..`, no links that escape, no device files), checks every file against the manifest, and only then
moves the result into the workspace: nothing is ever half-unpacked there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

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
    files: dict[str, str]  # path -> sha256 of its content (regular files only)
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


def walk(workspace: Path, exclude: Sequence[str]) -> Iterator[Path]:
    """Everything to pack, pre-order, names sorted; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(workspace):
        base = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            relative = (base / name).relative_to(workspace).as_posix()
            if _excluded(relative, exclude):
                continue
            keep.append(name)
            yield base / name
        dirnames[:] = [n for n in keep if not (base / n).is_symlink()]
        for name in sorted(filenames):
            if not _excluded((base / name).relative_to(workspace).as_posix(), exclude):
                yield base / name


class _HashingWriter:
    """A file-like sink that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


class _HashingReader:
    def __init__(self, source: BinaryIO) -> None:
        self.source, self.sha256 = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha256.update(data)
        return data


def pack(workspace: Path, destination: Path, *, run: RunId, exclude: Sequence[str],
         metadata: dict | None = None) -> Packed:
    """Stream the workspace into `destination` (a fresh directory), manifest last."""
    if (destination / MANIFEST).exists():
        raise ArtifactError(f"an artifact for {run} already exists at {destination}")
    destination.mkdir(parents=True, exist_ok=True)
    staging = destination / f".{ARCHIVE}.{secrets.token_hex(4)}"
    files: dict[str, str] = {}
    try:
        with staging.open("wb") as raw:
            sink = _HashingWriter(raw)
            compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, threads=-1)
            with compressor.stream_writer(sink, closefd=False) as zst, \
                    tarfile.open(fileobj=zst, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in walk(workspace, exclude):
                    relative = path.relative_to(workspace).as_posix()
                    info = tar.gettarinfo(str(path), arcname=relative)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if info.isreg():
                        with path.open("rb") as handle:
                            reader = _HashingReader(handle)
                            tar.addfile(info, reader)
                        files[relative] = reader.sha256.hexdigest()
                    else:
                        tar.addfile(info)
            raw.flush()
            os.fsync(raw.fileno())
        staging.replace(destination / ARCHIVE)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
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


def _extract(archive: Path, staging: Path, manifest: ArtifactManifest) -> None:
    seen: set[str] = set()
    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zst, \
            tarfile.open(fileobj=zst, mode="r|") as tar:
        for member in tar:
            try:
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise tarfile.FilterError("absolute or '..' path")  # data_filter would rewrite it
                safe = tarfile.data_filter(member, str(staging))
            except tarfile.FilterError as exc:
                raise ArtifactError(f"{manifest.run}: refused archive member {member.name!r}: {exc}") from exc
            if safe is None:
                continue
            tar.extract(safe, str(staging), set_attrs=True, filter="fully_trusted")
            if safe.isreg():  # contents were proven by the archive digest; the list must match too
                if safe.name not in manifest.files:
                    raise ArtifactError(f"{manifest.run}: {safe.name!r} is in the archive, not the manifest")
                seen.add(safe.name)
    missing = set(manifest.files) - seen
    if missing:
        raise ArtifactError(f"{manifest.run}: {len(missing)} file(s) of the manifest are not in the "
                            f"archive, e.g. {sorted(missing)[0]!r}")


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
