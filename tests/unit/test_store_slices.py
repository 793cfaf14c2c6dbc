"""Forked slices: results in input order, a worker's error raised in the parent, a lost worker named."""

import os

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
