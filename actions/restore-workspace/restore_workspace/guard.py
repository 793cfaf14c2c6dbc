"""What a restore would destroy: work in the workspace that neither an earlier restore nor a clean
git checkout explains.

A restore replaces the workspace's contents. On a runner's job directory that is what users expect
(actions/checkout cleans too, and the action's `clean` defaults to true), but pointed at a directory
that holds someone's work it would destroy it without a word. So, unless told to clean, it replaces only:
- an empty directory;
- the tree an earlier restore left, unchanged: the restore's marker lists every file with its size and
  mtime, and a file added or changed since is work;
- a git checkout with nothing modified, untracked, stashed or unpushed.
Dependency trees (`node_modules`) are rebuilt from the store and never count as work.

The marker lives under the workspace root (the runs directory), not in the tree, so no tool or
`git status` in the job ever sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from ci_actions.atomic import write_atomic
from ci_actions.workspace import WorkspaceError

SKIPPED = ("node_modules", ".git")  # names never walked: rebuilt from the store, or git's own
SHOWN = 8  # paths an error lists before it says how many more
GIT_DEADLINE = 30.0


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
                    if entry.name not in SKIPPED:
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


def _git(workspace: Path, *args: str) -> str | None:
    """git's answer about the workspace, or None where it is not a checkout. The tree may have been
    left by another job, so git runs with its fsmonitor hook off (a repo's config could name any
    program) and takes no optional locks."""
    try:
        done = subprocess.run(["git", "-c", "core.fsmonitor=false", "--no-optional-locks", "-C",
                               str(workspace), *args], capture_output=True, timeout=GIT_DEADLINE, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode(errors="surrogateescape") if done.returncode == 0 else None


def _checkout_work(workspace: Path) -> list[str] | None:
    """What git says is not committed and pushed, or None when the workspace is not a git checkout."""
    if not (workspace / ".git").exists() or _git(workspace, "rev-parse", "--is-inside-work-tree") is None:
        return None
    status = _git(workspace, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules")
    if status is None:
        return None
    work, fields = [], iter(status.split("\0"))
    for field in fields:
        if field and field[0] in "RC":
            next(fields, None)  # a rename's second name: its origin
        if len(field) > 3 and set(field[:2]) - {" ", "D"}:  # a deletion loses nothing a restore puts back
            work.append(field[3:])
    for what, args in (("stashed changes", ("stash", "list")),
                       ("commits on no remote", ("rev-list", "--branches", "--not", "--remotes"))):
        if (_git(workspace, *args) or "").strip():
            work.append(f"({what})")
    return [path for path in work if not set(path.split("/")) & {"node_modules"}]


def check(root: Path, workspace: Path) -> None:
    """Raise WorkAtRisk unless replacing the workspace's contents loses nothing (see the module)."""
    if not workspace.exists() or not any(workspace.iterdir()):
        return
    restored = _restored(root, workspace)
    changed = [path for path, state in _files(workspace) if restored.get(path) != list(state)]
    if not changed and restored:
        return
    checkout = _checkout_work(workspace)
    if checkout is not None:  # what git calls work, less what the last restore left unchanged
        unchanged = set(restored) - set(changed)
        changed = [path for path in checkout if path not in unchanged]
    if not changed:
        return
    more = len(changed) - SHOWN
    listed = ", ".join(changed[:SHOWN]) + (f" and {more} more" if more > 0 else "")
    kind = "a git checkout with uncommitted work" if checkout is not None else (
        "files added or changed since the last restore" if restored else "files no restore left here")
    raise WorkAtRisk(f"{workspace} holds {kind}, which a restore would delete: {listed}. Commit or move "
                     "them, or pass --clean (clean: true) to wipe the workspace.")
