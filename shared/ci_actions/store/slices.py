"""Run work over contiguous slices of a list in forked worker processes, results in input order.

The store's loops are one short syscall after another (stat, mkdir, link, open, write). Threads would
hand the GIL over on every one of them, which costs more than the syscall; forked workers share
nothing and run truly in parallel. The parent works on the first slice itself. A worker dies with
its parent (PR_SET_PDEATHSIG), so a killed save leaves no process writing behind it. Contiguous
slices keep each worker to its own directories.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WORKERS = max(2, os.cpu_count() or 1)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerFailed(RuntimeError):
    """A worker process ended without a result (killed, or its error could not be sent back)."""


def in_slices(items: list, work: Callable[[list], list[T]]) -> list[T]:
    """`work` must return picklable results; an exception in a worker is raised here."""
    size = -(-len(items) // WORKERS) or 1
    parts = [items[i:i + size] for i in range(0, len(items), size)]
    if len(parts) < 2:
        return work(items)
    workers = [_fork(work, part) for part in parts[1:]]
    try:
        results = work(parts[0])
    finally:
        outcomes = [_collect(*worker) for worker in workers]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.extend(outcome)
    return results


def _fork(work: Callable[[list], list[T]], part: list) -> tuple[int, int]:
    parent = os.getpid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    # The worker: never returns, never runs the parent's cleanup (os._exit).
    status = 1
    try:
        os.close(read_end)
        die_with_parent(parent)
        try:
            payload = pickle.dumps(work(part))
        except Exception as exc:
            payload = pickle.dumps(exc if _picklable(exc) else WorkerFailed(f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        status = 0
    finally:
        os._exit(status)


def die_with_parent(parent: int) -> None:
    """In a forked child: be killed when the parent dies (a killed save leaves nothing running)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _picklable(exc: Exception) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def _collect(pid: int, read_end: int) -> list | BaseException:
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        return WorkerFailed(f"a store worker process ended without a result (wait status {status})")
    return pickle.loads(payload)
