"""Content-addressed blobs: one read-only file per (sha256, executable bit), shared by every entry.

A blob is written to the store's own tmp directory and published with ``link()``, which fails if the
name exists: two writers of the same content cannot tear each other's file, and a reader never sees a
partial one. Blobs are read-only (0444, or 0555 when executable), so a hardlinked restore that tries to
edit a file in place gets EACCES instead of silently corrupting every entry that shares it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

CHUNK = 1024 * 1024
SMALL_FILE = 8 * CHUNK  # read whole: one read, hashed and written from memory, no race with writers
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
Placement = Literal["copy", "reflink", "hardlink"]  # what `auto` resolves to, once per restore


class BlobMissing(FileNotFoundError):
    """An entry names a blob that is gone (evicted or deleted): the entry cannot be restored."""


class BlobCorrupt(ValueError):
    """A blob's bytes no longer hash to its name."""


def blob_name(digest: str, mode: int) -> str:
    return digest + ("x" if mode & 0o111 else "")


@dataclass(frozen=True)
class Stored:
    digest: str
    size: int
    new_bytes: int  # 0 when the content was already in the store
    blob_mtime_ns: int  # the blob's mtime: any later write to it changes this, which restore checks


class Blobs:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs"
        self._dir = str(self.dir)
        self.tmp = root / "tmp"

    def path(self, name: str) -> Path:
        return Path(self.location(name))

    def location(self, name: str) -> str:
        """The blob's path as a string: restores call this per file, where pathlib's cost shows."""
        return f"{self._dir}/{name[:2]}/{name}"

    def _publish(self, tmp: Path, digest: str, mode: int) -> Stored:
        """Link tmp into place; no new bytes if another writer got there first."""
        tmp.chmod(0o555 if mode & 0o111 else 0o444)
        final = self.path(blob_name(digest, mode))
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tmp, final)
            st = final.stat()
            return Stored(digest, st.st_size, st.st_size, st.st_mtime_ns)
        except FileExistsError:
            st = final.stat()
            return Stored(digest, st.st_size, 0, st.st_mtime_ns)

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A temp file in the store's tmp dir, removed whatever happens (a publish links it first)."""
        tmp = self.tmp / f"blob-{secrets.token_hex(8)}"
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, source: Path, mode: int) -> Stored:
        """Store a file's content; a blob that exists already is left as it is."""
        with source.open("rb") as handle:
            data = handle.read(SMALL_FILE + 1)
            if len(data) > SMALL_FILE:
                return self._put_large(handle, data, mode)
        digest = hashlib.sha256(data).hexdigest()
        existing = self._existing(digest, mode)
        if existing:
            return existing
        with self._staging() as tmp:
            with tmp.open("xb") as out:
                out.write(data)
            return self._publish(tmp, digest, mode)

    def _put_large(self, handle: BinaryIO, head: bytes, mode: int) -> Stored:
        """Stream a big file: hash while copying to staging, so it is read once."""
        hasher = hashlib.sha256(head)
        size = len(head)
        with self._staging() as tmp:
            with tmp.open("xb") as out:
                out.write(head)
                while chunk := handle.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()
            return self._existing(digest, mode) or self._publish(tmp, digest, mode)

    def _existing(self, digest: str, mode: int) -> Stored | None:
        try:
            st = os.stat(self.location(blob_name(digest, mode)))
        except FileNotFoundError:
            return None
        return Stored(digest, st.st_size, 0, st.st_mtime_ns)

    def quick_check(self, name: str, size: int, mtime_ns: int) -> None:
        """Stat a blob: unchanged size and mtime mean no write touched it since it was saved. Anything
        else is settled by re-hashing it (a `touch` is harmless, a flipped byte is not)."""
        try:
            st = os.stat(self.location(name))
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            self.check(name)

    def check(self, name: str) -> int:
        """Re-hash a blob; returns its size or raises BlobMissing / BlobCorrupt."""
        hasher = hashlib.sha256()
        size = 0
        try:
            with self.path(name).open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        if hasher.hexdigest() != name.rstrip("x"):
            raise BlobCorrupt(name)
        return size

    def remove(self, name: str) -> int:
        path = self.path(name)
        try:
            size = path.stat().st_size
            path.unlink()
            return size
        except FileNotFoundError:
            return 0

    def place(self, name: str, dest: str, mode: int, mtime_ns: int, how: Placement) -> None:
        """Put a blob's content at dest (replacing what is there): a hardlink, a reflink, or a
        kernel-side copy with the recorded mode and mtime."""
        source = self.location(name)
        if how == "hardlink":
            try:
                os.link(source, dest)
            except FileExistsError:
                os.unlink(dest)
                os.link(source, dest)
            return
        src_fd = os.open(source, os.O_RDONLY)
        try:
            try:
                dst_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o7777)
            except FileExistsError:
                os.unlink(dest)
                dst_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o7777)
            try:
                if how == "reflink":
                    fcntl.ioctl(dst_fd, FICLONE, src_fd)
                else:
                    _copy(src_fd, dst_fd)
                os.fchmod(dst_fd, mode & 0o7777)
                os.utime(dst_fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)


def reflink_works(source: Path, dest_dir: Path) -> bool:
    """Probe once whether dest_dir's filesystem can clone source's blocks (btrfs, XFS, bcachefs)."""
    probe = dest_dir / f".ci-actions-reflink-probe-{secrets.token_hex(4)}"
    try:
        with source.open("rb") as src, probe.open("xb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    finally:
        probe.unlink(missing_ok=True)


def _copy(src_fd: int, dst_fd: int) -> None:
    """In-kernel copy: copy_file_range on one filesystem, sendfile where that is refused (across
    filesystems on most kernels, e.g. a store on another disk than the workspace)."""
    try:
        while os.copy_file_range(src_fd, dst_fd, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    offset = os.lseek(dst_fd, 0, os.SEEK_CUR)
    while sent := os.sendfile(dst_fd, src_fd, offset, 1 << 30):
        offset += sent
