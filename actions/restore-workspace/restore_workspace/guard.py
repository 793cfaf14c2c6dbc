"""What a restore would destroy: work in the workspace that the last restore did not leave.

A restore replaces the workspace's contents. On a runner's job directory that is what users expect
(actions/checkout cleans too, and `clean` defaults to true, in the action and the CLI alike), but pointed
at a directory that holds someone's work it would destroy it without a word. So, with `clean: false`
(`--no-clean`), it replaces only an empty directory, or the tree an earlier restore left, unchanged:
the restore's marker lists every file and link with its size and mtime, and one added or changed since
(`.git` included, so a commit made since counts) is work. Dependency trees (`node_modules`) are rebuilt
from the store and never count.

It never asks git whether a checkout is clean: the tree may have been left by another job, and git
runs what a repository's config names (a clean filter, an fsmonitor hook) while it looks. A checkout
that no restore made is work unless `clean` says otherwise.

The marker lives under the workspace root (the runs directory), not in the tree, so no tool or
`git status` in the job ever sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ci_actions.atomic import write_atomic
from ci_actions.workspace import WorkspaceError

SKIPPED = "node_modules"  # never walked: rebuilt from the store
SHOWN = 8  # paths an error lists before it says how many more


class WorkAtRisk(WorkspaceError):
    """The workspace holds work a restore would delete; the message lists it."""


def _files(workspace: Path) -> Iterator[tuple[str, tuple[int, int, int]]]:
    """(relative path, (kind, size, mtime_ns)) of every file and link, without following links."""
    cut = len(str(workspace)) + 1
    stack = [str(workspace)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if entry.name != SKIPPED:
                        stack.append(entry.path)
                else:
                    yield entry.path[cut:], (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)


def marker_path(root: Path, workspace: Path) -> Path:
    return root / "restored" / (hashlib.sha256(os.fsencode(workspace)).hexdigest()[:32] + ".json")


def record(root: Path, workspace: Path, run: str) -> None:
    """After a restore: remember what it left, so the next restore can tell it from work."""
    files = {path: list(state) for path, state in _files(workspace)}
    path = marker_path(root, workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"workspace": str(workspace), "run": run, "files": files}))


def _restored(root: Path, workspace: Path) -> dict[str, list[int]]:
    try:
        data = json.loads(marker_path(root, workspace).read_bytes())
        files = data["files"] if data.get("workspace") == str(workspace) else {}
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def check(root: Path, workspace: Path) -> None:
    """Raise WorkAtRisk unless replacing the workspace's contents loses nothing (see the module)."""
    if not workspace.exists() or not any(workspace.iterdir()):
        return
    restored = _restored(root, workspace)
    changed = sorted(path for path, state in _files(workspace) if restored.get(path) != list(state))
    if not changed:
        return
    git = [path for path in changed if path.startswith(".git/")]
    if git:  # git's own files say little one by one: the work they hold is commits, stashes, a branch
        changed = [path for path in changed if not path.startswith(".git/")] + [f".git ({len(git)} files)"]
    more = len(changed) - SHOWN
    listed = ", ".join(changed[:SHOWN]) + (f" and {more} more" if more > 0 else "")
    kind = "files added or changed since the last restore" if restored else "files no restore left here"
    raise WorkAtRisk(f"{workspace} holds {kind}, which a restore would delete: {listed}. Move them "
                     "elsewhere, or restore with --clean (clean: true, the default) to wipe the workspace.")
