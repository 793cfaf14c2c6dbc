"""One deploy at a time per project: a file lock, and a note of who holds it for the one who waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ci_actions import timing
from ci_actions.atomic import write_atomic


class LockTimeout(Exception):
    """Another deploy held the project's lock for the whole timeout."""


@contextmanager
def deploy_lock(directory: Path, *, timeout: float, holder: dict[str, str]) -> Iterator[None]:
    """Hold `<directory>/deploy.lock`; `holder` (sha, run) is written beside it while held. A holder
    killed with -9 releases the lock with its process (flock), so a crash never wedges later deploys."""
    directory.mkdir(parents=True, exist_ok=True)
    note = directory / "deploy.holder.json"
    lock = FileLock(directory / "deploy.lock")
    try:
        with timing.phase("lock"):
            lock.acquire(timeout=timeout)
    except Timeout:
        raise LockTimeout(f"another deploy holds the lock of {directory.name} ({_holder(note)}); waited "
                          f"{timeout:g} s. Try again when it ends, or raise lock-timeout.") from None
    try:
        write_atomic(note, json.dumps(holder))
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()


def _holder(note: Path) -> str:
    try:
        holder = json.loads(note.read_text())
    except (OSError, ValueError):
        return "holder unknown"
    return ", ".join(f"{key} {value}" for key, value in holder.items())
