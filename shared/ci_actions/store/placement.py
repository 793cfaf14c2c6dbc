"""Putting an entry's trees into place: each built whole in a staging directory, then renamed in.

An entry holds one tree per anchor (the workspace, HOME, an absolute root: paths.py), and each is built
in its anchor's root, on the target's filesystem so that the final renames are atomic. Below, "the
workspace" is whichever root a tree goes to.

The tree is built under `<workspace>/.ci-actions-restore-<pid>-<random>/` by forked workers (slices.py),
each with a contiguous slice of the records, checking each file's blob just before placing it; only when every
blob has passed does anything move into the workspace, by rename. So a damaged entry leaves the
workspace as it was, a killed restore leaves a hidden staging directory (removed by the next restore)
and never a half-populated node_modules, and the check costs no pass of its own: this is the restore's
hot path, and a hardlink restore must take a fifth of `tar -x`'s time.

The manifest was checked as it was parsed (manifest.py): no record lies below a symlink record, so
nothing is written through a link while the tree is built. Moving in (move_in) is planned, then done
with an undo journal, relative to directory fds that no link can redirect, all trees or none.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

from ci_actions.beneath import DIRECTORY, open_beneath
from ci_actions.paths import STAGING_PREFIX
from ci_actions.store.blobs import BlobCorrupt, BlobMissing, Blobs, Placement, blob_name, current_umask
from ci_actions.store.manifest import Record
from ci_actions.store.slices import in_slices

_OPEN_DIRS = 64  # directory fds a move-in keeps open at most, per tree
# Files that tools rewrite in place: a hardlink would let them write through into the store.
EDITED_IN_PLACE = ("node_modules/.prisma/*", "*/node_modules/.prisma/*", "*.node")
_EDITED_IN_PLACE = re.compile("|".join(fnmatch.translate(p) for p in EDITED_IN_PLACE))


def edited_in_place(path: str) -> bool:
    # The substring test first: it is a superset of the patterns, and ten times cheaper than the match.
    return (path.endswith(".node") or ".prisma/" in path) and _EDITED_IN_PLACE.match(path) is not None


def open_root(root: str, *, from_slash: bool) -> int:
    """An fd of an anchor's root, made if missing. The workspace and HOME are the runner's own and are
    opened by path; an absolute root (`from_slash`) is reached from / one component at a time, each
    made if missing and none followed if it is a link (RestoreRefused naming it), as a save reads it."""
    if not from_slash:
        os.makedirs(root, exist_ok=True)
        return os.open(root, DIRECTORY)
    fd = os.open("/", DIRECTORY)
    try:
        for index, part in enumerate(root.strip("/").split("/")):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            try:
                step = _open_dir(fd, part)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/" + "/".join(root.strip("/").split("/")[:index + 1])
                raise RestoreRefused(f"cannot restore into {root}: {where} is a symlink or not a directory "
                                     "(a restore never writes through a link); remove it, or cache "
                                     "another path") from exc
            os.close(fd)
            fd = step
        return os.dup(fd)
    finally:
        os.close(fd)


def new_staging(root_fd: int, root: str) -> str:
    """A fresh staging directory in an anchor's root (the root_fd; same filesystem, so the final
    renames are atomic), after removing any that a killed restore left behind."""
    for name in os.listdir(root_fd):
        if name.startswith(STAGING_PREFIX) and not _alive(name[len(STAGING_PREFIX):].split("-")[0]):
            # rmtree works through fds and follows no link: one planted under this name is refused
            # (and left), and links inside a leftover are unlinked, never descended into.
            shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
    name = f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(name, 0o700, dir_fd=root_fd)
    return os.path.join(root, name)


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
    linkable = blobs.quick_check(name, record.size, record.blob_mtime_ns)
    if placement == "hardlink" and linkable and not edited_in_place(record.path):
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


class Staged(NamedTuple):
    """One built tree: its anchor root's fd (open_root), its staging directory there, its records."""

    root_fd: int
    staging: str
    records: list[Record]


def move_in(trees: Sequence[Staged]) -> None:
    """Rename each built tree's top paths into its root, all trees or none. A top path that already
    exists there is merged into, entry by entry (files replaced, others kept, as `tar -x` does); then
    directory modes are set, deepest first, since a read-only directory cannot take new entries.

    Everything resolves relative to directory fds without following a link, so a link in the
    workspace (left by an earlier entry or the job) is never written through. Every tree's move is
    planned first, conflicts included, then carried out; on any failure every completed step, of
    every tree, is undone in reverse, and each root is as it was."""
    moves: list[_Move] = []
    try:
        for tree in trees:
            moves.append(_Move(tree))
        done: list[_Move] = []
        try:
            for move in moves:
                move.run()
                done.append(move)
        except BaseException as exc:
            if stuck := [problem for move in reversed(done) for problem in move.undo()]:
                raise _not_undone(exc, stuck) from exc
            raise
    finally:
        for move in moves:
            move.close()


def _not_undone(exc: BaseException, stuck: list[str]) -> RestoreRefused:
    """Only a concurrent change to the workspace gets here."""
    return RestoreRefused(f"restore failed ({exc}) and could not undo: {'; '.join(stuck)}")


class _Move:
    """One tree's move-in: planned when made (a walk that changes nothing), then run; undone, every
    completed step in reverse, if it or a later tree fails. A name replaced goes to a trash directory
    in staging (named by its step's index) until the end."""

    def __init__(self, tree: Staged) -> None:
        dirs = {record.path for record in tree.records if record.kind == "dir"}
        tops = [record.path for record in tree.records if record.path.rpartition("/")[0] not in dirs]
        self.st_fd = open_beneath(tree.root_fd, os.path.basename(tree.staging))
        try:
            existing: dict[str, int] = {}  # the modes of the workspace directories merged into
            self.plan = _plan(tree.root_fd, self.st_fd, tops, existing)
        except BaseException:
            os.close(self.st_fd)
            raise
        made_mode = 0o777 & ~current_umask()  # what build's directories have
        self.plan += [_Step("chmod", record.path, record.mode, was)
                      for record in reversed(tree.records) if record.kind == "dir"
                      and record.mode != (was := existing.get(record.path, made_mode))]
        self.ws, self.st = _Dirs(tree.root_fd), _Dirs(self.st_fd)
        self.trash = -1
        self.done: list[tuple[int, _Step]] = []

    def run(self) -> None:
        trash_name = f".trash-{secrets.token_hex(4)}"
        os.mkdir(trash_name, 0o700, dir_fd=self.st_fd)  # not among the staged names: mkdir would say EEXIST
        self.trash = open_beneath(self.st_fd, trash_name)
        try:
            for index, step in enumerate(self.plan):
                _apply(step, str(index), self.ws, self.st, self.trash)
                self.done.append((index, step))
        except BaseException as exc:
            if stuck := self.undo():
                raise _not_undone(exc, stuck) from exc
            raise

    def undo(self) -> list[str]:
        """Undo the completed steps in reverse; what could not be undone."""
        stuck = []
        for index, step in reversed(self.done):
            try:
                _apply(step, str(index), self.ws, self.st, self.trash, undo=True)
            except OSError as undo_exc:
                stuck.append(f"{step.kind} {step.path!r}: {undo_exc}")
        self.done.clear()
        return stuck

    def close(self) -> None:
        self.ws.close()
        self.st.close()
        if self.trash >= 0:
            os.close(self.trash)
        os.close(self.st_fd)


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
