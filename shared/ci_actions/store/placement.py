"""Putting an entry's tree into the workspace: built whole in a staging directory, then renamed in.

The tree is built under `<workspace>/.ci-actions-restore-<pid>-<random>/` by forked workers (slices.py),
each with a contiguous slice of the records, checking each file's blob just before placing it; only when every
blob has passed does anything move into the workspace, by rename. So a damaged entry leaves the
workspace as it was, a killed restore leaves a hidden staging directory (removed by the next restore)
and never a half-populated node_modules, and the check costs no pass of its own: this is the restore's
hot path, and a hardlink restore must take a fifth of `tar -x`'s time.

The manifest was checked as it was parsed (manifest.py): no record lies below a symlink record, so
nothing is written through a link while the tree is built. Moving in (move_in) is planned, then done
with an undo journal, relative to directory fds that no link can redirect.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from typing import Literal, NamedTuple

from ci_actions.beneath import open_beneath
from ci_actions.store.blobs import BlobCorrupt, BlobMissing, Blobs, Placement, blob_name, current_umask
from ci_actions.store.manifest import Record
from ci_actions.store.slices import in_slices

STAGING_PREFIX = ".ci-actions-restore-"
_OPEN_DIRS = 64  # directory fds a move-in keeps open at most, per tree
# Files that tools rewrite in place: a hardlink would let them write through into the store.
EDITED_IN_PLACE = ("node_modules/.prisma/*", "*/node_modules/.prisma/*", "*.node")
_EDITED_IN_PLACE = re.compile("|".join(fnmatch.translate(p) for p in EDITED_IN_PLACE))


def edited_in_place(path: str) -> bool:
    # The substring test first: it is a superset of the patterns, and ten times cheaper than the match.
    return (path.endswith(".node") or ".prisma/" in path) and _EDITED_IN_PLACE.match(path) is not None


def new_staging(workspace: str) -> str:
    """A fresh staging directory in the workspace (same filesystem, so the final renames are atomic),
    after removing any that a killed restore left behind."""
    os.makedirs(workspace, exist_ok=True)
    for name in os.listdir(workspace):
        if name.startswith(STAGING_PREFIX) and not _alive(name[len(STAGING_PREFIX):].split("-")[0]):
            # rmtree works through fds and follows no link: one planted under this name is refused
            # (and left), and links inside a leftover are unlinked, never descended into.
            shutil.rmtree(os.path.join(workspace, name), ignore_errors=True)
    staging = os.path.join(workspace, f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(staging, 0o700)
    return staging


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, and another user's
        pass
    return True


def build(blobs: Blobs, staging: str, records: list[Record], placement: Placement) -> list[Exception]:
    """Build the tree under staging; returns the blobs that failed their check (their files are
    skipped: the caller throws the staging directory away). Paths resolve relative to the staging
    directory's fd, and blobs' to the blob directory's (Blobs.held): a few path components per call
    instead of a dozen."""
    at = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)

    def build_slice(part: list[Record]) -> list[Exception]:
        failures: list[Exception] = []
        for record in part:
            if record.kind == "dir":
                _make_dir(staging, record.path, at)
                continue
            try:
                _place(blobs, record, at, placement)
            except FileNotFoundError as exc:
                if isinstance(exc, BlobMissing):
                    failures.append(exc)
                    continue
                # Its directory is in another worker's slice, not made yet (or has no record at all).
                os.makedirs(os.path.dirname(f"{staging}/{record.path}"), exist_ok=True)
                _place(blobs, record, at, placement)
            except BlobCorrupt as exc:
                failures.append(exc)
        return failures

    try:
        return in_slices(records, build_slice)
    finally:
        os.close(at)


def _make_dir(staging: str, path: str, at: int) -> None:
    try:
        os.mkdir(path, dir_fd=at)
    except FileExistsError:  # another slice's file needed it first
        pass
    except FileNotFoundError:
        os.makedirs(f"{staging}/{path}", exist_ok=True)


def _place(blobs: Blobs, record: Record, at: int, placement: Placement) -> None:
    if record.kind == "symlink":
        os.symlink(record.target, record.path, dir_fd=at)
        return
    name = blob_name(record.digest, record.mode)
    blobs.quick_check(name, record.size, record.blob_mtime_ns)
    if placement == "hardlink" and not edited_in_place(record.path):
        blobs.link(name, record.path, at)
    else:
        blobs.copy(name, record.path, record.mode, record.mtime_ns, reflink=placement == "reflink",
                   dest_dir_fd=at)


class RestoreRefused(OSError):
    """The workspace holds something the entry's tree cannot go into without writing through a link,
    or a different kind of file where the entry has a directory (or the reverse). Nothing was changed;
    an OSError, so the job gets a miss with a warning, and the entry, which is not damaged, is kept."""


class _Step(NamedTuple):
    """One operation of a move-in plan; each has its inverse (see _apply)."""

    kind: Literal["mkdir", "trash", "move", "chmod"]
    path: str  # relative to the workspace and, for a move, to the staging directory too
    mode: int = 0  # chmod: the mode to set
    was: int = 0  # chmod: the mode to put back


def move_in(staging: str, workspace: str, records: list[Record]) -> None:
    """Rename the built tree's top paths into the workspace, all or nothing. A top path that already
    exists there is merged into, entry by entry (files replaced, others kept, as `tar -x` does); then
    directory modes are set, deepest first, since a read-only directory cannot take new entries.

    Everything resolves relative to directory fds without following a link, so a link in the
    workspace (left by an earlier entry or the job) is never written through. The whole move is
    planned first, conflicts included, then carried out; on any failure every completed step is
    undone in reverse, and the workspace is as it was."""
    dirs = {record.path for record in records if record.kind == "dir"}
    tops = [record.path for record in records if record.path.rpartition("/")[0] not in dirs]
    ws_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st_fd = open_beneath(ws_fd, os.path.basename(staging))
        try:
            existing: dict[str, int] = {}  # the modes of the workspace directories merged into
            plan = _plan(ws_fd, st_fd, tops, existing)
            made_mode = 0o777 & ~current_umask()  # what build's directories have
            plan += [_Step("chmod", record.path, record.mode, was)
                     for record in reversed(records) if record.kind == "dir"
                     and record.mode != (was := existing.get(record.path, made_mode))]
            _execute(plan, ws_fd, st_fd)
        finally:
            os.close(st_fd)
    finally:
        os.close(ws_fd)


def _plan(ws_fd: int, st_fd: int, tops: list[str], existing: dict[str, int]) -> list[_Step]:
    """Which staged names go where, which workspace names they replace and which directories must be
    made: a walk that changes nothing and raises RestoreRefused for a link or a conflict."""
    plan: list[_Step] = []
    made: set[str] = set()  # parents this plan makes
    planned: set[str] = set()
    for top in tops:
        if any(parent in planned for parent in _ancestors(top)):
            continue  # it lies in the staged tree of a top already planned, which carries it along
        planned.add(top)
        head, _, name = top.rpartition("/")
        ws_parent = _plan_parents(ws_fd, head, plan, made)
        try:
            st_parent = open_beneath(st_fd, head)
            try:
                staged_dir = stat.S_ISDIR(os.lstat(name, dir_fd=st_parent).st_mode)
                _plan_name(top, name, staged_dir, st_parent, ws_parent, plan, existing)
            finally:
                os.close(st_parent)
        finally:
            if ws_parent is not None:
                os.close(ws_parent)
    return plan


def _ancestors(path: str) -> Iterator[str]:
    while path := path.rpartition("/")[0]:
        yield path


def _plan_parents(ws_fd: int, head: str, plan: list[_Step], made: set[str]) -> int | None:
    """An fd of the workspace directory `head`, opened without following any link; None when it does
    not exist yet, and then the mkdir steps for it are planned, one component at a time."""
    try:
        return open_beneath(ws_fd, head)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            raise
    parts = head.split("/")
    fd = os.dup(ws_fd)
    try:
        for index, part in enumerate(parts):
            try:
                mode = os.lstat(part, dir_fd=fd).st_mode
            except FileNotFoundError:
                missing = ["/".join(parts[:end + 1]) for end in range(index, len(parts))]
                plan += [_Step("mkdir", path) for path in missing if path not in made]
                made.update(missing)
                return None
            if not stat.S_ISDIR(mode):
                raise RestoreRefused(f"cannot restore into {head!r}: {'/'.join(parts[:index + 1])!r} in the "
                                     f"workspace is {_what(mode)}, not a directory (a restore never "
                                     "writes through a link); remove it, or restore elsewhere")
            step = open_beneath(fd, part)
            os.close(fd)
            fd = step
        return os.dup(fd)  # made meanwhile
    finally:
        os.close(fd)


def _plan_name(path: str, name: str, staged_dir: bool, st_parent: int, ws_parent: int | None,
               plan: list[_Step], existing: dict[str, int]) -> None:
    """Plan one staged name: moved in whole where the workspace has nothing there; merged into a
    directory the workspace has; replacing a non-directory, which first goes to the trash so that it
    can be put back."""
    try:
        there = os.lstat(name, dir_fd=ws_parent).st_mode if ws_parent is not None else None
    except FileNotFoundError:
        there = None
    if ws_parent is None or there is None:
        plan.append(_Step("move", path))
    elif staged_dir and stat.S_ISDIR(there):
        existing[path] = stat.S_IMODE(there)
        st_dir, ws_dir = _open_dir(st_parent, name), _open_dir(ws_parent, name)
        try:
            for entry in sorted(os.scandir(st_dir), key=lambda entry: entry.name):
                _plan_name(f"{path}/{entry.name}", entry.name, entry.is_dir(follow_symlinks=False), st_dir,
                           ws_dir, plan, existing)
        finally:
            os.close(st_dir)
            os.close(ws_dir)
    elif staged_dir or stat.S_ISDIR(there):
        raise RestoreRefused(f"cannot merge into the workspace: {path!r} is {_what(there)} there but "
                             f"{'a directory' if staged_dir else 'not a directory'} in the entry; nothing "
                             "was changed (remove it to restore this entry)")
    else:
        plan += [_Step("trash", path), _Step("move", path)]


def _what(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "a directory" if stat.S_ISDIR(mode) else "a file"


def _open_dir(parent_fd: int, name: str) -> int:
    """One component below a directory fd, not followed if it is a link (ELOOP): the cheap case of
    open_beneath, for a walk that holds the parent's fd already."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)


class _Dirs:
    """Directory fds beneath the workspace or the staging directory, opened without following a link
    and kept while the steps use them: a plan's steps come in walk order, so a directory is mostly
    opened from its parent's fd, one component."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.open: dict[str, int] = {}

    def parent(self, path: str) -> tuple[int, str]:
        head, _, name = path.rpartition("/")
        return self._dir(head), name

    def _dir(self, head: str) -> int:
        if not head:
            return self.root_fd
        if (fd := self.open.get(head)) is None:
            if len(self.open) >= _OPEN_DIRS:
                self.close()
            up, _, name = head.rpartition("/")
            base = self.open.get(up) if up else self.root_fd
            fd = self.open[head] = open_beneath(self.root_fd, head) if base is None else _open_dir(base, name)
        return fd

    def close(self) -> None:
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()


def _execute(plan: list[_Step], ws_fd: int, st_fd: int) -> None:
    """Carry out a plan; on any failure undo every completed step, in reverse, and raise. A name
    replaced goes to a trash directory in staging (named by its step's index) until the end."""
    trash_name = f".trash-{secrets.token_hex(4)}"
    os.mkdir(trash_name, 0o700, dir_fd=st_fd)  # not among the staged names: mkdir would say EEXIST
    trash = open_beneath(st_fd, trash_name)
    ws, st = _Dirs(ws_fd), _Dirs(st_fd)
    done: list[tuple[int, _Step]] = []
    try:
        for index, step in enumerate(plan):
            _apply(step, str(index), ws, st, trash)
            done.append((index, step))
    except BaseException as exc:
        stuck = []
        for index, step in reversed(done):
            try:
                _apply(step, str(index), ws, st, trash, undo=True)
            except OSError as undo_exc:
                stuck.append(f"{step.kind} {step.path!r}: {undo_exc}")
        if stuck:  # only a concurrent change to the workspace gets here
            raise RestoreRefused(f"restore failed ({exc}) and could not undo: {'; '.join(stuck)}") from exc
        raise
    finally:
        ws.close()
        st.close()
        os.close(trash)


def _apply(step: _Step, slot: str, ws: _Dirs, st: _Dirs, trash: int, *, undo: bool = False) -> None:
    """Carry out one step or, with `undo`, its inverse."""
    if step.kind == "chmod":
        _chmod(ws.root_fd, step.path, step.was if undo else step.mode)
        return
    ws_parent, name = ws.parent(step.path)
    if step.kind == "mkdir":
        (os.rmdir if undo else os.mkdir)(name, dir_fd=ws_parent)
        return
    # A rename between the workspace and the trash (a replaced name), or the staging directory.
    here = (name, ws_parent)
    there = (slot, trash) if step.kind == "trash" else (name, st.parent(step.path)[0])
    (src, src_fd), (dst, dst_fd) = (there, here) if (step.kind == "move") != undo else (here, there)
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def _chmod(ws_fd: int, path: str, mode: int) -> None:
    fd = open_beneath(ws_fd, path)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
