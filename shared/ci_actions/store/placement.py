"""Putting an entry's tree into the workspace: built whole in a staging directory, then renamed in.

The tree is built under `<workspace>/.ci-actions-restore-<pid>-<random>/` by forked workers (slices.py),
each with a contiguous slice of the records, checking each file's blob just before placing it; only when every
blob has passed does anything move into the workspace, by rename. So a damaged entry leaves the
workspace as it was, a killed restore leaves a hidden staging directory (removed by the next restore)
and never a half-populated node_modules, and the check costs no pass of its own: this is the restore's
hot path, and a hardlink restore must take a fifth of `tar -x`'s time.
"""

from __future__ import annotations

import fnmatch
import os
import re
import secrets
import shutil

from ci_actions.store.blobs import BlobCorrupt, BlobMissing, Blobs, Placement, blob_name, current_umask
from ci_actions.store.manifest import Record
from ci_actions.store.slices import in_slices

STAGING_PREFIX = ".ci-actions-restore-"
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


def move_in(staging: str, workspace: str, records: list[Record]) -> None:
    """Rename the built tree's top paths into the workspace. A top path that already exists there is
    merged into, entry by entry (files replaced, as `tar -x` does); then directory modes are set,
    deepest first, since a read-only directory cannot take new entries or be moved."""
    dirs = {record.path for record in records if record.kind == "dir"}
    merged = False
    for top in (record.path for record in records if record.path.rpartition("/")[0] not in dirs):
        target = os.path.join(workspace, top)
        if top in dirs and os.path.isdir(target) and not os.path.islink(target):
            _merge(os.path.join(staging, top), target)
            merged = True
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(staging, top), target)
    # A directory made here already has 0777 & ~umask; a merged-into one has whatever it had.
    made_mode = 0o777 & ~current_umask()
    for record in reversed(records):
        if record.kind == "dir" and (merged or record.mode & 0o7777 != made_mode):
            os.chmod(os.path.join(workspace, record.path), record.mode & 0o7777)


def _merge(source: str, target: str) -> None:
    for entry in os.scandir(source):
        dest = os.path.join(target, entry.name)
        if entry.is_dir(follow_symlinks=False) and os.path.isdir(dest) and not os.path.islink(dest):
            _merge(entry.path, dest)
        else:
            os.replace(entry.path, dest)
