"""Putting an entry's tree into the workspace: directories, files from blobs, symlinks, then modes.

Split from the store because it is the restore's hot path: about one syscall per record, with as
little Python around it as possible (a hardlink restore must take a fifth of `tar -x`'s time).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re

from ci_actions.store.blobs import Blobs, Placement, blob_name
from ci_actions.store.manifest import Record
from ci_actions.store.slices import in_slices

# Files that tools rewrite in place: a hardlink would let them write through into the store.
EDITED_IN_PLACE = ("node_modules/.prisma/*", "*/node_modules/.prisma/*", "*.node")
_EDITED_IN_PLACE = re.compile("|".join(fnmatch.translate(p) for p in EDITED_IN_PLACE))


def edited_in_place(path: str) -> bool:
    # The substring test first: it is a superset of the patterns, and ten times cheaper than the match.
    return (path.endswith(".node") or ".prisma/" in path) and _EDITED_IN_PLACE.match(path) is not None


def make_dirs(root: str, dirs: list[Record], made: list[str]) -> None:
    """Create the directories (records come parents first), appending each one created to `made`,
    parents before children, so that `remove_dirs(made)` can take exactly those away again."""
    for record in dirs:
        _make_dir(os.path.join(root, record.path), made)


def _make_dir(path: str, made: list[str]) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return
    except FileNotFoundError:  # a parent with no record of its own (a glob matched below it)
        _make_dir(os.path.dirname(path), made)
        os.mkdir(path)
    made.append(path)


def remove_dirs(made: list[str]) -> None:
    """Undo make_dirs: rmdir (never a recursive delete) deepest first; a directory someone else has
    put something into meanwhile stays."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def place_files(blobs: Blobs, root: str, files: list[Record], placement: Placement) -> None:
    """Each file from its blob, on a few threads with a contiguous slice each (link() and copies are
    kernel time). A hardlink restore still copies the files known to be edited in place."""

    def place(part: list[Record]) -> list[None]:
        for record in part:
            name = blob_name(record.digest, record.mode)
            dest = f"{root}/{record.path}"
            try:
                _place(blobs, name, dest, record, placement)
            except FileNotFoundError:  # a file whose directory has no record (a glob matched it)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                _place(blobs, name, dest, record, placement)
        return []

    in_slices(files, place)


def _place(blobs: Blobs, name: str, dest: str, record: Record, placement: Placement) -> None:
    if placement == "hardlink" and not edited_in_place(record.path):
        blobs.link(name, dest)
    else:
        blobs.copy(name, dest, record.mode, record.mtime_ns, reflink=placement == "reflink")


def make_symlinks(root: str, symlinks: list[Record]) -> None:
    for record in symlinks:
        dest = os.path.join(root, record.path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
        os.symlink(record.target, dest)


def set_dir_modes(root: str, dirs: list[Record]) -> None:
    """The recorded modes, deepest first, once the contents are in (a 0555 directory is made last)."""
    for record in reversed(dirs):
        os.chmod(os.path.join(root, record.path), record.mode & 0o7777)
