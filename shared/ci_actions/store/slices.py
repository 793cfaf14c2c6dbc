"""Run work over contiguous slices of a list in forked worker processes, results in input order.

The store's loops are one short syscall after another (stat, mkdir, link, open, write). Threads would
hand the GIL over on every one of them, which costs more than the syscall; forked workers share
nothing and run truly in parallel. The parent works on the first slice itself. A worker dies with
its parent (PR_SET_PDEATHSIG), so a killed save leaves no process writing behind it. Contiguous
slices keep each worker to its own directories.

No wait is unbounded: a worker that has not answered by DEADLINE is killed and WorkerFailed raised,
which the cache turns into a warning and a miss.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
WORKERS = max(2, os.cpu_count() or 1)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DEADLINE = 1800.0  # seconds a whole in_slices may take: far beyond any real tree, short of forever


class WorkerFailed(RuntimeError):
    """A worker process ended without a result (killed, timed out, or its error could not be sent)."""


def in_slices(items: list, work: Callable[[list], list[T]]) -> list[T]:
    """`work` must return picklable results; an exception in a worker is raised here."""
    deadline = time.monotonic() + DEADLINE
    size = -(-len(items) // WORKERS) or 1
    parts = [items[i:i + size] for i in range(0, len(items), size)]
    if len(parts) < 2:
        return work(items)
    workers: list[tuple[int, int]] = []
    try:
        for part in parts[1:]:
            workers.append(_fork(work, part, [read_end for _, read_end in workers]))
        results = work(parts[0])
    finally:  # also when a fork failed: every worker forked is waited for, within the deadline
        outcomes = [_collect(*worker, deadline) for worker in workers]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.extend(outcome)
    return results


def _fork(work: Callable[[list], list[T]], part: list, siblings: list[int]) -> tuple[int, int]:
    """Fork a worker for `part`; it closes the read ends of the workers forked before it, so that
    no pipe outlives the process it belongs to."""
    parent = os.getpid()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid:
        os.close(write_end)
        return pid, read_end
    # The worker: never returns, never runs the parent's cleanup (os._exit).
    status = 1
    try:
        for fd in (read_end, *siblings):
            os.close(fd)
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


def reap(pid: int, deadline: float) -> int | None:
    """Wait for a child until `deadline` (monotonic); its wait status, or None if it is still running."""
    pidfd = os.pidfd_open(pid)
    try:
        select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        os.close(pidfd)
    done, status = os.waitpid(pid, os.WNOHANG)
    return status if done else None


def kill(pid: int) -> None:
    """SIGKILL a child and reap it (briefly: one stuck in the kernel becomes a zombie, not a hang)."""
    os.kill(pid, signal.SIGKILL)
    reap(pid, time.monotonic() + 5.0)


def _collect(pid: int, read_end: int, deadline: float) -> list | BaseException:
    chunks = []
    try:
        while select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if not (chunk := os.read(read_end, 1 << 20)):
                break
            chunks.append(chunk)
        else:
            kill(pid)
            return WorkerFailed(f"a store worker gave no result within {DEADLINE:.0f} s; killed it")
    finally:
        os.close(read_end)
    status = reap(pid, deadline)
    if status is None:
        kill(pid)
        return WorkerFailed(f"a store worker did not exit within {DEADLINE:.0f} s; killed it")
    if not chunks:
        return WorkerFailed(f"a store worker process ended without a result (wait status {status})")
    return pickle.loads(b"".join(chunks))
