"""Nothing half-written is ever visible: whole-file writes by temp file, fsync and rename; and the
flushes that make other writes durable."""

from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path

_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def write_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write `text` to a temp file beside `path` (created 0600, so a secret is never readable by others,
    not even for a moment), set `mode`, fsync, rename over `path`, fsync the folder. On any failure the
    temp file is removed and `path` is untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(fd: int) -> None:
    """Flush the whole filesystem that `fd` lies on (syncfs), or every one where that fails."""
    if _libc.syncfs(fd) != 0:
        os.sync()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range of a file to disk without waiting (sync_file_range WRITE): a long write
    that ends in an fsync then waits only for its tail. Best effort: the fsync still decides."""
    _libc.sync_file_range(fd, ctypes.c_int64(offset), ctypes.c_int64(length), _SYNC_FILE_RANGE_WRITE)
