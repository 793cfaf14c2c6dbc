"""Open a path beneath a directory without following a symlink anywhere on the way.

What a job reads back (a store entry, a workspace artifact) may name paths that another job turned
into links, and the workspace itself may hold links the job made. A path opened by name follows them;
this never does. openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) does it in one call where the kernel
has it (Linux 5.6+); elsewhere (older kernels, a seccomp filter that refuses it) the same rule is kept by
a walk that opens one component at a time with O_NOFOLLOW.

Either way a symlink in the path gives ELOOP, and `..` or an absolute path gives EXDEV.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH = 0x02, 0x04, 0x08
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works = True  # until the kernel says it has no openat2


def _check(relative: str) -> list[str]:
    parts = relative.split("/")
    if relative.startswith("/") or ".." in parts:
        raise OSError(errno.EXDEV, "path leaves the directory it is opened beneath", relative)
    return [part for part in parts if part not in ("", ".")]


def _openat2(root_fd: int, relative: str, flags: int, mode: int) -> int | None:
    """The fd, or None when this kernel (or its seccomp filter) has no openat2."""
    global _openat2_works
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(SYS_OPENAT2, ctypes.c_int(root_fd), os.fsencode(relative), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EPERM):
        _openat2_works = False
        return None
    raise OSError(code, os.strerror(code), relative)


def _walk(root_fd: int, parts: list[str], flags: int, mode: int) -> int:
    """One component at a time, each opened with O_NOFOLLOW relative to the last."""
    fd = root_fd
    try:
        for part in parts[:-1]:
            try:
                step = os.open(part, DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:  # a link says ENOTDIR here: say ELOOP, as openat2 does
                if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from None
                raise
            if fd != root_fd:
                os.close(fd)
            fd = step
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    finally:
        if fd != root_fd:
            os.close(fd)


def open_beneath(root_fd: int, relative: str, flags: int = DIRECTORY, mode: int = 0o666) -> int:
    """Open `relative` under the directory `root_fd` (flags as os.open; a directory by default)."""
    parts = _check(relative)
    if not parts:
        return os.dup(root_fd)
    if _openat2_works and (fd := _openat2(root_fd, "/".join(parts), flags, mode)) is not None:
        return fd
    return _walk(root_fd, parts, flags, mode)


def parent_beneath(root_fd: int, relative: str) -> tuple[int, str]:
    """An fd of `relative`'s directory (opened as open_beneath does) and its last component: for
    lstat, readlink, rename and unlink relative to a parent that no link can redirect."""
    head, _, name = relative.rstrip("/").rpartition("/")
    if not name or name in (".", ".."):
        raise OSError(errno.EXDEV, "no last component to act on", relative)
    return open_beneath(root_fd, head), name
