"""The workspace artifact: one run's prepared workspace as tar (PAX) + zstd on the runner's disk.

Unlike upload-artifact v4 it keeps hidden files (`node_modules/.prisma/client`), file modes and
symlinks, and never leaves the machine. Layout, keyed so concurrent runs and re-runs never collide::

    <root>/<owner>-<repo>/<run id>/<attempt>/workspace.tar.zst
                                            /manifest.json     written last: no manifest, no artifact

GNU tar writes and reads the archive (Python's tarfile is 3-5x slower on a node_modules-sized tree);
zstandard compresses on every core and hashes the stream as it goes. The manifest holds the archive's
sha256 and size, every regular file with its size, and what the producer wants consumers to know (the
store entries to restore). Everything read back is untrusted (a PR job may have written both archive and
manifest), so unpacking:

1. validates the manifest's fields, and verifies the archive's digest on the same open file it then
   reads (no link followed, no FIFO waited on);
2. checks every member header as the stream passes to tar (tar_scan reads it as GNU tar does: no
   absolute paths, no `..`, nothing below an earlier symlink, no link that resolves outside, no
   devices or FIFOs) and counts the decompressed bytes against a cap (a bomb stops at the cap);
3. extracts into a private staging directory beside the workspace, then walks what landed there (one
   lstat per entry, no link followed): no special files, no symlink that resolves outside, no
   hardlink to a file outside, setuid/setgid/sticky bits dropped, files and sizes as the manifest says;
4. only then moves the result into the workspace: nothing is ever half-unpacked there.

tar runs under a watchdog (TAR_DEADLINE) and is killed on any error, with both pipe ends closed: no
archive, however malformed, can leave a job waiting.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from ci_actions.atomic import fsync_dir, start_writeback, write_atomic
from ci_actions.beneath import open_beneath
from ci_actions.cache import default_cache_dir
from ci_actions.tar_scan import MAX_DEPTH, HostileMember, TarScanner, resolve

FORMAT = "ci-actions-workspace-1"
ARCHIVE = "workspace.tar.zst"
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024
WRITEBACK_STEP = 8 * CHUNK
COMPRESSION_LEVEL = 3
TAR_DEADLINE = 30 * 60  # seconds a pack's or unpack's tar may run before it is killed: minutes for GBs
REAP_SECONDS = 60  # the longest wait for a killed tar to be reaped
# Decompressed-size cap: tar + zstd -3 of a workspace (small files in 512-byte blocks included) comes to
# about 4-10x its packed size; 100x with a 64 MiB floor never stops a real one, and 8 KB of zstd can
# no longer become 256 MiB. The ceiling bounds even a huge packed size.
UNPACK_RATIO = 100
UNPACK_FLOOR = 64 * 1024 * 1024
UNPACK_CEILING = 64 * 1024**3
MANIFEST_LIMIT = 256 * 1024 * 1024  # a manifest line per file: ~60 bytes; a bigger one is not ours
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"run": str, "archive_sha256": str, "archive_bytes": int, "files": dict, "created": (int, float),
           "metadata": dict, "format": str}


def default_root() -> Path:
    """~/.cache/ci-actions/workspaces, beside the store: persistent, per user, never under RUNNER_TEMP."""
    return default_cache_dir().with_name("workspaces")


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
    skipped: list[str] = field(default_factory=list)  # FIFOs, sockets, devices: not packed (unpack refuses)

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE


def _excluded(relative: str, exclude: Sequence[str]) -> bool:
    """`exclude` names match any path segment (`node_modules`) or a workspace-relative prefix."""
    parts = relative.split("/")
    return any(name in parts or relative == name or relative.startswith(name.rstrip("/") + "/")
               for name in exclude)


def walk(workspace: Path, exclude: Sequence[str], skipped: list[str]) -> Iterator[tuple[str, int | None]]:
    """(relative path, size if a regular file) for everything to pack: pre-order, names sorted,
    symlinks not followed; one scandir per directory and one lstat per file. FIFOs, sockets and devices
    go to `skipped` instead: unpack would refuse them, so packing them would make an artifact that
    never restores. A tree deeper than MAX_DEPTH is an error (OSError): unpack refuses one."""
    cut = len(str(workspace)) + 1

    def visit(directory: str, depth: int) -> Iterator[tuple[str, int | None]]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            relative = entry.path[cut:]
            if exclude and _excluded(relative, exclude):
                continue
            if depth > MAX_DEPTH:
                raise OSError(errno.ELOOP, f"more than {MAX_DEPTH} levels deep, which unpack refuses",
                              relative)
            if entry.is_dir(follow_symlinks=False):
                yield relative, None
                yield from visit(entry.path, depth + 1)
            elif entry.is_file(follow_symlinks=False):
                yield relative, entry.stat(follow_symlinks=False).st_size
            elif entry.is_symlink():
                yield relative, None
            else:
                skipped.append(relative)

    yield from visit(str(workspace), 1)


def _feed_names(pipe: BinaryIO, workspace: Path, exclude: Sequence[str], files: dict[str, int],
                skipped: list[str], failures: list[Exception]) -> None:
    """Write NUL-separated member names to tar, recording each regular file's size for the manifest; a
    walk failure is kept in `failures` for the packing thread to raise (tar then gets a short list)."""
    try:
        for relative, size in walk(workspace, exclude, skipped):
            pipe.write(os.fsencode(relative) + b"\0")
            if size is not None:
                files[relative] = size
    except BrokenPipeError:
        pass  # tar stopped early; its exit status and message say why
    except Exception as exc:  # any failure of the walk, or tar would get a short list and say nothing
        failures.append(exc)
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


class _ArchiveWriter:
    """A file-like sink that hashes and counts what passes through to `target`, and starts the disk
    write of every WRITEBACK_STEP as it goes, so the fsync that makes the archive durable waits for
    the last step only (on a journaled ext4, that fsync was a fifth of a pack)."""

    def __init__(self, target: BinaryIO) -> None:
        self.target, self.sha256, self.size, self._written_back = target, hashlib.sha256(), 0, 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        written = self.target.write(data)
        if self.size - self._written_back >= WRITEBACK_STEP:
            self.target.flush()
            start_writeback(self.target.fileno(), self._written_back, self.size - self._written_back)
            self._written_back = self.size
        return written


# PAX without the per-file extended header that sub-second times would need: mtimes kept to the second.
# GNU tar stores a second name of a hardlinked file as a link to the first, which unpack accepts.
TAR_CREATE = ["tar", "--create", "--file=-", "--format=posix",
              "--pax-option=delete=atime,delete=ctime,delete=mtime",
              "--numeric-owner", "--owner=0", "--group=0", "--no-recursion", "--null"]
TAR_EXTRACT = ["tar", "--extract", "--file=-", "--no-same-owner", "--delay-directory-restore"]


@contextlib.contextmanager
def _tar(argv: list[str], failed: str, **pipes: int) -> Iterator[subprocess.Popen]:
    """Run tar under a watchdog that kills it past TAR_DEADLINE, which also ends any read or write
    blocked on its pipes. Any error in the body kills it at once. Either way both pipe ends are closed
    and tar is reaped within a bounded wait; a non-zero exit raises ArtifactError(`failed`: tar's
    message). Its stderr goes to a file: a chatty tar can never block on a full pipe. In the C locale
    tar never recodes a pax path from UTF-8: names land as the bytes the scanner read."""
    with tempfile.TemporaryFile() as errors:
        tar = subprocess.Popen(argv, stderr=errors, env={**os.environ, "LC_ALL": "C"}, **pipes)
        expired = threading.Event()
        watchdog = threading.Timer(TAR_DEADLINE, lambda: (expired.set(), tar.kill()))
        watchdog.daemon = True
        watchdog.start()
        try:
            yield tar
            _close(tar)
            tar.wait(TAR_DEADLINE + REAP_SECONDS)  # the watchdog kills it before this expires
        except subprocess.TimeoutExpired as exc:
            tar.kill()
            raise ArtifactError(f"{failed}: tar did not exit, even killed") from exc
        except BaseException:
            tar.kill()
            raise
        finally:
            watchdog.cancel()
            _close(tar)
            with contextlib.suppress(subprocess.TimeoutExpired):
                tar.wait(REAP_SECONDS)
        if expired.is_set():
            raise ArtifactError(f"{failed}: tar ran longer than {TAR_DEADLINE} s and was killed")
        if tar.returncode != 0:
            errors.seek(0)
            message = errors.read()[-4000:].decode(errors="replace").strip()
            raise ArtifactError(f"{failed}: {message or f'tar exited with {tar.returncode}'}")


def _close(tar: subprocess.Popen) -> None:
    for pipe in (tar.stdin, tar.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a broken pipe cannot flush what is left
                pipe.close()


def pack(workspace: Path, destination: Path, *, run: RunId, exclude: Sequence[str],
         metadata: dict | None = None) -> Packed:
    """Stream the workspace into `destination` (a fresh directory), manifest last."""
    if (destination / MANIFEST).exists():
        raise ArtifactError(f"an artifact for {run} already exists at {destination}")
    destination.mkdir(parents=True, exist_ok=True)
    staging = destination / f".{ARCHIVE}.{secrets.token_hex(4)}"
    failed = f"packing {workspace} for {run} failed"
    files: dict[str, int] = {}
    skipped: list[str] = []
    failures: list[Exception] = []
    try:
        with _tar([*TAR_CREATE, "-C", str(workspace), "--files-from=-"], failed, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE) as tar:
            _widen(tar.stdout)
            # the walk feeds tar's member list while tar archives and zstd compresses: three stages at once
            feeder = threading.Thread(target=_feed_names, daemon=True,
                                      args=(tar.stdin, workspace, exclude, files, skipped, failures))
            feeder.start()
            sink = _compress(tar.stdout, staging)
            feeder.join(REAP_SECONDS)  # tar has read the whole list: the walk is over or stuck
            if failures or feeder.is_alive():
                raise ArtifactError(f"{failed}: {failures[0] if failures else 'the walk did not finish'}")
        staging.replace(destination / ARCHIVE)
        fsync_dir(destination)  # the archive's name is on disk before the manifest that names it
    finally:
        staging.unlink(missing_ok=True)
    manifest = ArtifactManifest(str(run), sink.sha256.hexdigest(), sink.size, files, metadata=metadata or {})
    write_atomic(destination / MANIFEST, json.dumps(vars(manifest), indent=1))
    return Packed(destination, manifest, skipped)


def _compress(source: BinaryIO, path: Path) -> _ArchiveWriter:
    """zstd on every core from `source` into `path`, hashed and counted on the way, fsynced."""
    with path.open("wb") as raw:
        sink = _ArchiveWriter(raw)
        zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, threads=-1).copy_stream(
            source, sink, read_size=CHUNK, write_size=CHUNK)
        raw.flush()
        os.fsync(raw.fileno())
    return sink


def find(root: Path, run: RunId) -> Path:
    """This attempt's artifact, else the newest earlier attempt's (a re-run of failed jobs only)."""
    for attempt in range(run.attempt, 0, -1):
        directory = run.directory(root, attempt)
        if (directory / MANIFEST).exists():
            return directory
    raise ArtifactError(f"no workspace artifact for {run} under {root}: did prepare-workspace run in "
                        "this run, with the same workspace-root?")


def _open_regular(path: Path) -> BinaryIO:
    """Open a file of the artifact without following a link or waiting on a FIFO: an artifact file that
    is anything but a regular file is damage (OSError)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def read_manifest(directory: Path) -> ArtifactManifest:
    """The manifest, every field checked for its type: another job may have written it."""
    try:
        with _open_regular(directory / MANIFEST) as handle:
            text = handle.read(MANIFEST_LIMIT + 1)
        if len(text) > MANIFEST_LIMIT:
            raise ValueError(f"larger than {MANIFEST_LIMIT} bytes")
        return _validated(json.loads(text))
    except (OSError, ValueError, TypeError) as exc:
        raise ArtifactError(f"the artifact manifest {directory / MANIFEST} is unreadable: {exc}") from exc


def _validated(data: object) -> ArtifactManifest:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT!r} manifest")
    for key, kind in _FIELDS.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise ValueError(f"{key!r} is missing or not a {getattr(kind, '__name__', 'number')}")
    if not _SHA256.fullmatch(data["archive_sha256"]) or data["archive_bytes"] < 0:
        raise ValueError("archive_sha256 or archive_bytes is malformed")
    if not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0
               for size in data["files"].values()):
        raise ValueError("a file size in 'files' is not a non-negative integer")
    return ArtifactManifest(**data)


def _verify(archive: BinaryIO, path: Path, manifest: ArtifactManifest) -> None:
    """Digest and size as the manifest says, then back to the start for the extraction to read the
    same open file (the path may be replaced meanwhile; this file cannot)."""
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := archive.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        archive.seek(0)
    except OSError as exc:
        raise ArtifactError(f"{manifest.run}: cannot read {path}: {exc}") from exc
    if (digest.hexdigest(), size) != (manifest.archive_sha256, manifest.archive_bytes):
        raise ArtifactError(f"{manifest.run}: {path} failed verification (sha256 {digest.hexdigest()[:16]}…, "
                            f"{size} bytes; the manifest says {manifest.archive_sha256[:16]}…, "
                            f"{manifest.archive_bytes} bytes): truncated or corrupt")


def unpack(directory: Path, workspace: Path) -> ArtifactManifest:
    """Verify, extract to staging, check what landed, then replace the workspace's contents."""
    manifest = read_manifest(directory)
    path = directory / ARCHIVE
    try:
        archive = _open_regular(path)
    except OSError as exc:
        raise ArtifactError(f"{manifest.run}: cannot read {path}: {exc}") from exc
    with archive:
        _verify(archive, path, manifest)
        workspace.mkdir(parents=True, exist_ok=True)
        staging = workspace.parent / f".{workspace.name}.unpack-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)  # private: no other user can swap anything in it while tar works
        try:
            scanner = _extract(archive, staging, manifest)
            _check_landed(staging, scanner, manifest)
            _replace_contents(workspace, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _widen(pipe: BinaryIO) -> None:
    """Let the pipe to or from tar hold a whole chunk (64 KiB by default): each side then works on
    the next chunk while the other takes this one, instead of the two taking turns."""
    with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)


def unpack_cap(archive_bytes: int) -> int:
    """The most decompressed bytes an archive of this packed size may give."""
    return min(max(UNPACK_RATIO * archive_bytes, UNPACK_FLOOR), UNPACK_CEILING)


def _extract(archive: BinaryIO, staging: Path, manifest: ArtifactManifest) -> TarScanner:
    """Decompress once; every chunk goes to the header scanner and then to tar, so tar never reads a
    header the scanner refused. A refused member or a bomb stops tar at once; staging (never the
    workspace) is thrown away by the caller."""
    scanner = TarScanner()
    try:
        with _tar([*TAR_EXTRACT, "-C", str(staging)], f"{manifest.run}: tar failed",
                  stdin=subprocess.PIPE) as tar:
            _widen(tar.stdin)
            whole = _stream(archive, scanner, tar.stdin, manifest)
    except HostileMember as exc:
        raise ArtifactError(f"{manifest.run}: refused archive member {exc}") from exc
    except zstandard.ZstdError as exc:
        raise ArtifactError(f"{manifest.run}: the archive does not unpack: {exc}") from exc
    if not whole:
        raise ArtifactError(f"{manifest.run}: tar stopped reading the archive before its end")
    return scanner


def _stream(archive: BinaryIO, scanner: TarScanner, pipe: BinaryIO, manifest: ArtifactManifest) -> bool:
    """Decompressed chunks to the scanner, then to tar, counted against the cap; False if tar stopped
    reading (its exit status and message then say why)."""
    cap, total = unpack_cap(manifest.archive_bytes), 0
    for chunk in zstandard.ZstdDecompressor().read_to_iter(archive, read_size=CHUNK, write_size=CHUNK):
        total += len(chunk)
        if total > cap:
            raise ArtifactError(f"{manifest.run}: the archive unpacks to more than {cap} bytes, the cap for "
                                f"{manifest.archive_bytes} packed bytes: refused as a decompression bomb")
        scanner.feed(chunk)
        try:
            pipe.write(chunk)
        except BrokenPipeError:
            return False
    scanner.finish()
    return True


class _Landed:
    """What tar made in staging, seen with one lstat (or readlink) per entry and no link followed."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.files: dict[str, int] = {}
        self.links: dict[str, str] = {}
        self._shared: dict[tuple[int, int], list] = {}  # inode of a hardlinked file -> [nlink, seen, path]

    def walk(self, root: int) -> None:
        """Iterative, each directory opened beneath `root` with no link followed: an archive may nest
        deeper than Python recurses, or hold more directories than a process may keep open."""
        pending = [""]
        while pending:
            prefix = pending.pop()
            directory = open_beneath(root, prefix)
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
                pending += [f"{prefix}{entry.name}/" for entry in entries
                            if self._entry(directory, prefix, entry)]
            finally:
                os.close(directory)

    def _entry(self, directory: int, prefix: str, entry: os.DirEntry) -> bool:
        """Record one entry; True if it is a directory to walk."""
        path = prefix + entry.name
        if entry.is_symlink():
            self.links[path] = os.readlink(entry.name, dir_fd=directory)
            return False
        info = entry.stat(follow_symlinks=False)
        if info.st_mode & SPECIAL_BITS:
            # staging is private (0700) and tar is done: nothing can turn this entry into a link now
            os.chmod(entry.name, stat.S_IMODE(info.st_mode) & ~SPECIAL_BITS, dir_fd=directory)
        if stat.S_ISDIR(info.st_mode):
            return True
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{self.run}: refused archive member {path!r}: it landed as a "
                                f"{_KINDS.get(stat.S_IFMT(info.st_mode), 'special file')}")
        self.files[path] = info.st_size
        if info.st_nlink > 1:
            self._shared.setdefault((info.st_dev, info.st_ino), [info.st_nlink, 0, path])[1] += 1
        return False

    def check(self) -> None:
        """No symlink resolves (through the tree's own links, as the kernel would) outside the tree, and
        no file has a hardlink outside it."""
        for path, target in self.links.items():
            if resolve(self.links, path.split("/")[:-1], target) is None:
                raise ArtifactError(f"{self.run}: refused archive member {path!r}: the symlink to "
                                    f"{target!r} leads outside the workspace")
        for nlink, seen, path in self._shared.values():
            if seen != nlink:
                raise ArtifactError(f"{self.run}: refused archive member {path!r}: it is hardlinked to a "
                                    "file outside the workspace")


_KINDS = {stat.S_IFBLK: "block device", stat.S_IFCHR: "character device", stat.S_IFIFO: "FIFO",
          stat.S_IFSOCK: "socket"}


def _check_landed(staging: Path, scanner: TarScanner, manifest: ArtifactManifest) -> None:
    """The staged tree is what the scanner passed and what the manifest lists, and holds nothing that
    could reach outside the workspace."""
    landed = _Landed(manifest.run)
    root = os.open(staging, _DIRECTORY)
    try:
        landed.walk(root)
    except OSError as exc:
        raise ArtifactError(f"{manifest.run}: cannot check the unpacked tree: {exc}") from exc
    finally:
        os.close(root)
    landed.check()
    if landed.links != scanner.links:
        raise ArtifactError(f"{manifest.run}: the symlinks that landed differ from the archive's")
    for what, files in (("archive's", scanner.files), ("unpacked", landed.files)):
        if files != manifest.files:
            differ = sorted(set(files.items()) ^ set(manifest.files.items()))
            raise ArtifactError(f"{manifest.run}: the {what} files differ from the manifest's, e.g. "
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


def _run_directories(root: Path) -> list[Path]:
    """<root>/<repo>/<run id>/<attempt>, found without following a link: a link planted there by another
    job must not lead the retention's rmtree elsewhere."""
    level = [root]
    for _ in range(3):
        found = []
        for directory in level:
            with contextlib.suppress(OSError), os.scandir(directory) as it:
                found += [Path(entry.path) for entry in it if entry.is_dir(follow_symlinks=False)]
        level = found
    return level


def remove_expired(root: Path, *, older_than: float, keep: Path) -> list[Path]:
    """Delete run directories whose artifacts are older than the retention; never `keep`."""
    removed = []
    now = time.time()
    for run_dir in sorted(_run_directories(root)):
        if run_dir == keep:
            continue
        with contextlib.suppress(OSError):
            if now - (run_dir / MANIFEST).lstat().st_mtime > older_than:
                shutil.rmtree(run_dir)
                removed.append(run_dir)
    return removed
