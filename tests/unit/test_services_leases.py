"""test-services' port leases, on real files and real processes: two jobs never get one port, a dead
holder or a passed ttl makes a lease stale, and what is read back is validated."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from test_services.leases import Damaged, Holder, Lease, LeaseError, Leases, NoFreePort, choose_ports

ANY = (20000, 20099)


def free(_: int) -> bool:
    return True


@pytest.fixture
def leases(tmp_path):
    return Leases(tmp_path / "leases")


def test_choose_scans_once_from_the_start_wrapping_and_skips_leased_and_busy_ports():
    assert choose_ports(100, 109, 3, {108}, lambda p: p != 109, start=107) == [107, 100, 101]


def test_no_free_port_says_how_many_were_found_and_why_the_rest_were_not():
    with pytest.raises(NoFreePort, match=r"publishes 3 port\(s\) and only 1 of 100-103 is free \(2 leased to "
                       r"other stacks, 1 in use on this machine\)"):
        choose_ports(100, 103, 3, {100, 101}, lambda p: p != 102, start=100)


def test_a_lease_writes_its_record_and_one_claim_per_port(leases):
    holder = Holder.of(os.getpid())
    lease = leases.acquire("ci-1-a", 2, ANY, holder, 60, free, start=20010, now=1000.0, files=["c.yml"])
    assert lease == Lease("ci-1-a", (20010, 20011), holder, 1000.0, 1060.0, ("c.yml",))
    assert leases.get("ci-1-a") == lease and leases.all() == [lease]
    assert sorted(p.name for p in leases.claims.iterdir()) == ["20010", "20011"]
    assert (leases.claims / "20010").read_text() == "ci-1-a\n"
    assert oct(leases.root.stat().st_mode & 0o777) == "0o700"
    assert oct((leases.projects / "ci-1-a.json").stat().st_mode & 0o777) == "0o600"
    # the next stack gets other ports
    assert leases.acquire("ci-1-b", 2, ANY, holder, 60, free, start=20010).ports == (20012, 20013)
    assert leases.release("ci-1-a") is True
    assert sorted(p.name for p in leases.claims.iterdir()) == ["20012", "20013"]
    assert leases.get("ci-1-a") is None and leases.release("ci-1-a") is False


def test_a_project_leases_once(leases):
    leases.acquire("ci-1-a", 1, ANY, None, 60, free)
    with pytest.raises(LeaseError, match="already holds a lease"):
        leases.acquire("ci-1-a", 1, ANY, None, 60, free)


def test_no_free_port_leaves_no_record_and_no_claim(leases):
    with pytest.raises(NoFreePort):
        leases.acquire("ci-1-a", 3, (20000, 20001), None, 60, free)
    assert leases.all() == [] and list(leases.claims.iterdir()) == []


def _acquire_many(root: str, worker: int, queue) -> None:
    store = Leases(__import__("pathlib").Path(root))
    got = []
    for n in range(5):
        got += store.acquire(f"ci-{worker}-{n}", 3, (20000, 20199), None, 60, free, start=20000).ports
    queue.put(got)


def test_concurrent_jobs_never_get_the_same_port(leases):
    """Eight processes take 5 leases of 3 ports each from the same start, at once."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_acquire_many, args=(str(leases.root), w, queue)) for w in range(8)]
    for worker in workers:
        worker.start()
    taken = [port for _ in workers for port in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=30)
    assert len(taken) == 8 * 5 * 3 and len(set(taken)) == len(taken)
    assert len(list(leases.claims.iterdir())) == len(taken)


def test_a_lease_is_stale_when_its_holder_dies_even_if_its_pid_comes_back(leases):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = Holder.of(child.pid)
    lease = leases.acquire("ci-1-a", 1, ANY, holder, 3600, free)
    assert holder.alive() and lease.stale_because(time.time()) == ""
    child.kill()
    child.wait()
    assert lease.stale_because(time.time()) == f"its holder (pid {child.pid}) is gone"
    # a reused pid is another process: its start time differs
    reused = Holder(os.getpid(), holder.start, holder.boot)
    assert not reused.alive() and Holder.of(os.getpid()).alive()
    assert not Holder(os.getpid(), Holder.of(os.getpid()).start, "another-boot").alive()


def test_a_zombie_holder_is_gone():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Holder.of(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Holder.of(child.pid) is None  # exited, not yet reaped by its parent
    child.wait()


def test_a_lease_expires_after_its_ttl():
    lease = Lease("ci-1-a", (20000,), None, 1000.0, 1060.0)
    assert lease.stale_because(1059.0) == ""
    assert lease.stale_because(1070.0) == "expired 10s ago (ttl 60s)"


@pytest.mark.parametrize("record", [
    "not json",
    json.dumps({"project": "ci-other", "ports": [1], "created": 1, "expires": 2}),
    json.dumps({"project": "ci-1-a", "ports": ["20000"], "created": 1, "expires": 2}),
    json.dumps({"project": "ci-1-a", "ports": [70000], "created": 1, "expires": 2}),
    json.dumps({"project": "ci-1-a", "ports": [1], "created": "now", "expires": 2}),
    json.dumps({"project": "ci-1-a", "ports": [1], "created": 1, "expires": 2, "holder": {"pid": "1"}}),
    json.dumps({"project": "ci-1-a", "ports": [1], "created": 1, "expires": 2, "files": "c.yml"}),
])
def test_a_record_that_does_not_read_as_a_lease_is_damage(leases, record):
    leases.acquire("ci-1-a", 1, ANY, None, 60, free)
    (leases.projects / "ci-1-a.json").write_text(record)
    found = leases.get("ci-1-a")
    assert isinstance(found, Damaged) and found.stale_because(0).startswith("its lease record is damaged")


def test_release_if_unchanged_leaves_a_lease_that_changed_since_it_was_judged(leases):
    old = Lease("ci-1-a", (1,), None, 0.0, 1.0)
    leases.acquire("ci-1-a", 1, ANY, None, 60, free)
    assert leases.release("ci-1-a", if_unchanged=old) is False
    assert leases.get("ci-1-a") is not None


def test_claims_that_name_no_lease_are_freed(leases):
    leases.acquire("ci-1-a", 1, ANY, None, 60, free, start=20000)
    (leases.claims / "20050").write_text("ci-gone\n")
    (leases.claims / "20051").write_text("../../etc\n")
    assert leases.free_unowned_claims() == [20050, 20051]
    assert sorted(p.name for p in leases.claims.iterdir()) == ["20000"]


def test_a_lease_folder_others_can_write_is_refused(tmp_path):
    root = tmp_path / "leases"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    with pytest.raises(LeaseError, match="only it can write"):
        Leases(root).acquire("ci-1-a", 1, ANY, None, 60, free)
