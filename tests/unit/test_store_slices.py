"""Forked slices: results in input order, a worker's error raised in the parent, a lost worker named."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_actions.store import slices
from ci_actions.store.slices import WorkerFailed, in_slices


def test_results_keep_the_input_order_across_workers():
    results = in_slices(list(range(1000)), lambda part: [(n, os.getpid()) for n in part])
    assert [n for n, _ in results] == list(range(1000))
    assert len({pid for _, pid in results}) == slices.WORKERS  # the parent and a forked worker per slice


def test_an_error_in_a_worker_is_raised_in_the_parent():
    def work(part):
        if os.getpid() != parent:
            raise FileNotFoundError(2, "No such file or directory", "/gone")
        return part

    parent = os.getpid()
    with pytest.raises(FileNotFoundError) as caught:
        in_slices(list(range(10)), work)
    assert caught.value.filename == "/gone"


def test_a_worker_that_dies_without_a_result_is_reported():
    def work(part):
        if os.getpid() != parent:
            os._exit(3)
        return part

    parent = os.getpid()
    with pytest.raises(WorkerFailed, match="ended without a result"):
        in_slices(list(range(10)), work)


def test_one_item_runs_in_the_parent():
    assert in_slices([1], lambda part: [os.getpid()]) == [os.getpid()]


def test_a_worker_dies_with_its_parent(tmp_path):
    """kill -9 of the parent mid-work: the worker does not go on writing into the store."""
    pids = tmp_path / "worker.pid"
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(slices.__file__).parents[2])!r})
from ci_actions.store.slices import in_slices

def work(part):
    if part[0] == 1:  # the forked worker's slice
        open({str(pids)!r}, "w").write(str(os.getpid()))
    time.sleep(60)
    return part

in_slices([0, 1], work)
"""
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while not pids.exists() or not pids.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "the worker never started"
            time.sleep(0.02)
        worker = int(pids.read_text())
        os.kill(worker, 0)  # alive while its parent is
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while _alive(worker):
        assert time.monotonic() < deadline, f"worker {worker} outlived its killed parent"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Alive and not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
