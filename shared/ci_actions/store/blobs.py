"""Content-addressed blobs: one read-only file per (sha256, executable bit), shared by every entry.

A file's content is hashed first, then its blob is created at its name with O_EXCL and written in
one call; a big file is streamed into tmp/ and linked in. A blob is taken as stored only when its
size is its content's size: a short one (a writer still at work, a kill, a power cut before the
save's syncfs) is replaced by a whole copy renamed over it. Manifests are published only after the
save's syncfs, so no entry ever names a short blob. Blobs are read-only (0444, or 0555 when
executable), so a hardlinked restore that tries to edit a file in place gets EACCES instead of
silently corrupting every entry that shares it; root ignores that mode, so every blob is also made
with one known mtime (BLOB_MTIME_NS): a blob found with any other is re-hashed before a save adopts it.

A blob that is not a regular file (a FIFO, a link) is damage: it is never opened in a way that could
block or follow it, and reads as BlobCorrupt.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NamedTuple

CHUNK = 1024 * 1024
SMALL_FILE = 8 * CHUNK  # read whole (the size lstat gave): one read, hashed and written from memory
MISS_RUN = 64  # blob lookups that found nothing, in a row, before writing first (see _look_first)
PROBE_EVERY = 16
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
Placement = Literal["copy", "reflink", "hardlink"]  # what `auto` resolves to, once per restore
# Every blob's mtime as made: npm's own fixed file time (1985-10-26 08:15 UTC), so a hardlinked file
# looks as npm would have installed it. Any write to a blob moves its mtime off this.
BLOB_MTIME_NS = 499_162_500 * 10**9
READ_BLOB = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open


class BlobMissing(FileNotFoundError):
    """An entry names a blob that is gone (evicted or deleted): the entry cannot be restored."""


class BlobCorrupt(ValueError):
    """A blob's bytes no longer hash to its name."""


def blob_name(digest: str, mode: int) -> str:
    return digest + ("x" if mode & 0o111 else "")


class Stored(NamedTuple):
    """What put() did (a tuple: a save makes one per file)."""

    digest: str
    size: int
    new_bytes: int  # 0 when the content was already in the store
    blob_mtime_ns: int  # the blob's mtime: any later write to it changes this, which restore checks


class Blobs:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs"
        self._dir = str(self.dir)
        self.tmp = root / "tmp"
        self._dir_fd: int | None = None  # open during held()
        self._uid = os.geteuid()
        self._umask = 0o777
        self._misses = self._puts = 0  # see _look_first; per process, so per forked worker
        self._stored: dict[str, Stored] = {}  # blobs this process stored or found during held()

    def create_layout(self) -> None:
        """The 256 shard directories (in blobs/, which must exist), once, instead of a mkdir per blob.
        The last one is made last, so when it exists they all do."""
        if os.path.isdir(f"{self._dir}/ff"):
            return
        for shard in range(256):
            with contextlib.suppress(FileExistsError):
                os.mkdir(f"{self._dir}/{shard:02x}", 0o755)  # never group-writable (see check_safe)

    def path(self, name: str) -> Path:
        return Path(self.location(name))

    def location(self, name: str) -> str:
        """The blob's path as a string: saves and restores call this per file, where pathlib costs."""
        return f"{self._dir}/{name[:2]}/{name}"

    def _at(self, name: str) -> str:
        """The blob's path for a call given dir_fd=self._dir_fd: relative while held(), else whole."""
        return f"{name[:2]}/{name}" if self._dir_fd is not None else self.location(name)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the blob directory open while a save or a restore works through many blobs: their
        names resolve relative to it (two path components, not a dozen), and forked workers inherit
        it. A save's bookkeeping (see _look_first, _stored) lasts as long."""
        self._dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self._umask = current_umask()
        self._misses = self._puts = 0
        try:
            yield
        finally:
            os.close(self._dir_fd)
            self._dir_fd = None
            self._stored = {}

    def put(self, fd: int, mode: int, size: int) -> Stored:
        """Store the content of the open file `fd` (`size` as fstat gave it; the caller opened it, so
        no path is resolved here); a whole, intact blob that exists is left as it is."""
        if self._dir_fd is None:
            raise RuntimeError("Blobs.put outside Blobs.held()")
        if size > SMALL_FILE:
            return self._put_large(fd, mode)
        data = _read_up_to(fd, size)
        digest = hashlib.sha256(data).hexdigest()
        name = blob_name(digest, mode)
        if known := self._stored.get(name):  # a copy within this save (LICENSE files): no syscall at all
            return known
        if self._look_first():
            if existing := self._existing(name, digest, len(data), data):
                return existing
            self._misses += 1
        return self._create(name, digest, mode, data)

    def _put_large(self, fd: int, mode: int) -> Stored:
        """Stream a big file into a temp file while hashing it, so it is read once; name it after."""
        hasher = hashlib.sha256()
        size = 0
        with self._temp(mode) as (out, tmp):
            while chunk := os.read(fd, CHUNK):
                hasher.update(chunk)
                _write_all(out, chunk)
                size += len(chunk)
            digest = hasher.hexdigest()
            name = blob_name(digest, mode)
            return self._existing(name, digest, size) or self._link_in(out, tmp, name, digest)

    def _look_first(self) -> bool:
        """Whether to look a blob up before writing it. Looking up new content only finds misses (a
        fresh store, new dependencies), so after MISS_RUN of them in a row this process writes first
        and lets O_EXCL report a blob that exists; every PROBE_EVERY-th file it still looks first,
        and the first hit puts it back to looking first. At most PROBE_EVERY files are read and hashed
        in vain when content starts repeating."""
        self._puts += 1
        return self._misses < MISS_RUN or self._puts % PROBE_EVERY == 0

    def _create(self, name: str, digest: str, mode: int, data: bytes) -> Stored:
        """Create the blob at its name (O_EXCL, read-only) and write it in one call: a third cheaper
        than a temp file and a rename per file. Until the write ends the blob is short, and a short
        blob is never taken as stored (see _existing); no manifest names it before the save's syncfs."""
        relative = self._at(name)
        try:
            fd = self._open_new(relative, mode, self._dir_fd)
        except FileExistsError:
            return self._existing(name, digest, len(data), data) or self._replace(name, digest, mode, data)
        try:
            _write_all(fd, data)
            os.utime(fd, ns=(BLOB_MTIME_NS, BLOB_MTIME_NS))
            st = os.fstat(fd)
        except BaseException:
            with contextlib.suppress(OSError):  # a full disk: take back the short blob, if still ours
                if os.stat(relative, dir_fd=self._dir_fd).st_ino == os.fstat(fd).st_ino:
                    os.unlink(relative, dir_fd=self._dir_fd)
            raise
        finally:
            os.close(fd)
        return self._new(name, digest, st)

    def _replace(self, name: str, digest: str, mode: int, data: bytes) -> Stored:
        """Put whole content in place of a short blob (a crash's or a power cut's leftover, or one
        being written right now): written aside, then renamed over it in one step."""
        with self._temp(mode) as (out, tmp):
            _write_all(out, data)
            return self._link_in(out, tmp, name, digest, replace=True)

    @contextmanager
    def _temp(self, mode: int) -> Iterator[tuple[int, str]]:
        """A read-only file in tmp/ (the same filesystem, so it can be linked in), removed on the way
        out whatever happens; one left by a crash is removed by prune."""
        tmp = f"{self.tmp}/blob-{secrets.token_hex(8)}"
        fd = self._open_new(tmp, mode)
        try:
            yield fd, tmp
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _open_new(self, path: str, mode: int, dir_fd: int | None = None) -> int:
        """Create a read-only file (0444, or 0555 for an executable's content) open for writing."""
        read_only = 0o555 if mode & 0o111 else 0o444
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, read_only, dir_fd=dir_fd)
        if self._umask & read_only:  # the umask took bits the blob must have
            os.fchmod(fd, read_only)
        return fd

    def _link_in(self, fd: int, tmp: str, name: str, digest: str, *, replace: bool = False) -> Stored:
        """Give a written temp file the blob's name: link() so that the first writer wins, or, over a
        short or damaged blob, rename() (atomic, so a reader sees the old file or the whole one)."""
        os.utime(fd, ns=(BLOB_MTIME_NS, BLOB_MTIME_NS))
        st = os.fstat(fd)
        relative = self._at(name)
        if not replace:
            try:
                os.link(tmp, relative, dst_dir_fd=self._dir_fd)
                return self._new(name, digest, st)
            except FileExistsError:
                if existing := self._existing(name, digest, st.st_size):
                    return existing
        os.replace(tmp, relative, dst_dir_fd=self._dir_fd)
        return self._new(name, digest, st)

    def _new(self, name: str, digest: str, st: os.stat_result) -> Stored:
        self._stored[name] = Stored(digest, st.st_size, 0, st.st_mtime_ns)  # the next copy adds no bytes
        return Stored(digest, st.st_size, st.st_size, st.st_mtime_ns)

    def _existing(self, name: str, digest: str, size: int, data: bytes | None = None) -> Stored | None:
        """The blob, if this process already has it or it exists whole and intact. One of another size
        is short (a crash, a power cut, a writer still at work), and one that is not a regular file is
        damage: neither is taken, and the content is stored again over it. One of the right size but
        not the mtime blobs are made with was written to since (or made before blobs had one): it is
        compared with the content (`data`, or re-hashed) and taken only if it still matches. Any
        blob found on disk ends a run of misses (see _look_first)."""
        if known := self._stored.get(name):
            return known
        try:
            st = os.stat(self._at(name), dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        self._misses = 0
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        if st.st_mtime_ns != BLOB_MTIME_NS:
            st = self._intact(name, digest, data)
            if st is None:
                return None
        found = self._stored[name] = Stored(digest, size, 0, st.st_mtime_ns)
        return found

    def _intact(self, name: str, digest: str, data: bytes | None) -> os.stat_result | None:
        """Read a blob whose mtime moved: its stat if its bytes are still `data` (or hash to digest)."""
        try:
            fd, st = self._open_blob(name)
        except (BlobMissing, BlobCorrupt):
            return None
        try:
            same = _read_up_to(fd, len(data) + 1) == data if data is not None else _hash_fd(fd)[0] == digest
        finally:
            os.close(fd)
        return st if same else None

    def _open_blob(self, name: str) -> tuple[int, os.stat_result]:
        """Open a blob for reading without following a link or blocking on a FIFO; anything but a
        regular file is BlobCorrupt."""
        try:
            fd = os.open(self._at(name), READ_BLOB, dir_fd=self._dir_fd)
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink, a socket
                raise BlobCorrupt(name) from exc
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise BlobCorrupt(name)
        return fd, st

    def quick_check(self, name: str, size: int, mtime_ns: int) -> bool:
        """Stat a blob: a regular file of unchanged size and mtime was not written since it was saved.
        A size or mtime that moved is settled by re-hashing it (a `touch` is harmless, a flipped byte is
        not); anything but a read-only regular file, as saves make them, is damage. Returns whether it
        may be hardlinked into a workspace: only when its owner is this user or root, since an owner
        can chmod and rewrite the very inode the workspace would hold (a shared store's blobs are
        copied instead)."""
        try:
            st = os.stat(self._at(name), dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) not in (0o444, 0o555):
            raise BlobCorrupt(name)
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            self.check(name)
        return st.st_uid in (self._uid, 0)

    def link(self, name: str, dest: str, dest_dir_fd: int | None = None) -> None:
        """Hardlink the blob at dest (relative to dest_dir_fd, if given)."""
        os.link(self._at(name), dest, src_dir_fd=self._dir_fd, dst_dir_fd=dest_dir_fd)

    def check(self, name: str) -> int:
        """Re-hash a blob; returns its size or raises BlobMissing / BlobCorrupt."""
        try:
            if not stat.S_ISREG(os.stat(self._at(name), dir_fd=self._dir_fd, follow_symlinks=False).st_mode):
                raise BlobCorrupt(name)  # not even opened: a device's open can act
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        fd, _ = self._open_blob(name)
        try:
            digest, size = _hash_fd(fd)
        finally:
            os.close(fd)
        if digest != name.rstrip("x"):
            raise BlobCorrupt(name)
        return size

    def remove(self, name: str) -> int:
        try:
            size = os.stat(self._at(name), dir_fd=self._dir_fd, follow_symlinks=False).st_size
            os.unlink(self._at(name), dir_fd=self._dir_fd)
            return size
        except FileNotFoundError:
            return 0

    def copy(self, name: str, dest: str, mode: int, mtime_ns: int, *, reflink: bool,
             dest_dir_fd: int | None = None) -> None:
        """Put a blob's content at dest (relative to dest_dir_fd, if given; replacing what is there)
        with the recorded mode and mtime: a reflink (shared blocks) or a kernel-side copy."""
        src_fd, src = self._open_blob(name)
        create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            try:
                dst_fd = os.open(dest, create, mode & 0o7777, dir_fd=dest_dir_fd)
            except FileExistsError:
                os.unlink(dest, dir_fd=dest_dir_fd)
                dst_fd = os.open(dest, create, mode & 0o7777, dir_fd=dest_dir_fd)
            try:
                if reflink:
                    fcntl.ioctl(dst_fd, FICLONE, src_fd)
                else:
                    _copy(src_fd, dst_fd, src.st_size)
                os.fchmod(dst_fd, mode & 0o7777)
                os.utime(dst_fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)


def current_umask() -> int:
    """This process's umask, read from /proc (os.umask() can only be read by setting it, which races
    with other threads creating files); 0o777 where /proc does not say, so that every mode is set."""
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o777


def _read_up_to(fd: int, size: int) -> bytes:
    data = os.read(fd, size)
    if len(data) == size or not data:
        return data
    parts, got = [data], len(data)
    while got < size and (chunk := os.read(fd, size - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _hash_fd(fd: int) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def reflink_works(source: Path, dest_dir: Path) -> bool:
    """Probe once whether dest_dir's filesystem can clone source's blocks (btrfs, XFS, bcachefs). A
    sample blob that is gone or damaged says no: the restore's own check then finds the damage."""
    probe = dest_dir / f".ci-actions-reflink-probe-{secrets.token_hex(4)}"
    try:
        src = os.open(source, READ_BLOB)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            return False
        with probe.open("xb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src)
        return True
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    finally:
        os.close(src)
        probe.unlink(missing_ok=True)


def _copy(src_fd: int, dst_fd: int, size: int) -> None:
    """In-kernel copy: copy_file_range on one filesystem, sendfile where that is refused (across
    filesystems on most kernels, e.g. a store on another disk than the workspace)."""
    try:
        copied = 0
        while copied < size and (step := os.copy_file_range(src_fd, dst_fd, size - copied)):
            copied += step
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    offset = os.lseek(dst_fd, 0, os.SEEK_CUR)
    while offset < size and (sent := os.sendfile(dst_fd, src_fd, offset, size - offset)):
        offset += sent
