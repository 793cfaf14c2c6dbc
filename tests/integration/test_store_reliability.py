"""The store under 16 concurrent jobs, kill -9 mid-save, a full disk: nothing half-written is ever seen.

Every job is a real `python -m ci_actions cache ...` process, as a runner would start it.
"""

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_actions.cache import enforce_budget
from ci_actions.store.store import Store

CLI = [sys.executable, "-m", "ci_actions", "cache"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, check=check)


def make_tree(root: Path, label: str, files: int = 200) -> None:
    """A node_modules-like tree whose every file says who wrote it, so a mixed restore shows."""
    for i in range(files):
        path = root / "node_modules" / f"pkg{i % 20}" / f"f{i}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{label} {i}\n" + "x" * (i * 37 % 4000))
    (root / "node_modules" / ".bin").mkdir(exist_ok=True)
    (root / "node_modules" / ".bin" / "tool").symlink_to("../pkg0/f0.js")


def tree_state(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted((root / "node_modules").rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = os.readlink(path) if path.is_symlink() else path.read_text() if path.is_file() else "dir"
    return out


WORKER = """
import json, subprocess, sys
from pathlib import Path
ws, store, label, keys = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")
results = []
for key in keys:
    save = subprocess.run([sys.executable, "-m", "ci_actions", "cache", "save", "--cache-dir", store,
                           "--key", key, "--path", "node_modules"], cwd=ws / "src", capture_output=True,
                          text=True, check=True)
    out = ws / ("restore-" + key)
    out.mkdir()
    got = subprocess.run([sys.executable, "-m", "ci_actions", "cache", "restore", "--cache-dir", store,
                          "--key", key, "--path", "node_modules"], cwd=out, capture_output=True, text=True,
                         check=True)
    results.append({"key": key, "save": json.loads(save.stdout), "restore": json.loads(got.stdout),
                    "warnings": save.stderr + got.stderr})
print(json.dumps(results))
"""


def test_sixteen_jobs_save_and_restore_overlapping_keys(tmp_path):
    store = tmp_path / "store"
    keys = [f"deps-{k}" for k in range(4)]
    procs = []
    for worker in range(16):
        ws = tmp_path / f"job{worker}"
        make_tree(ws / "src", f"job{worker}")
        mine = [keys[worker % 4], keys[(worker + 1) % 4]]
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(ws), str(store), f"job{worker}",
                                       ",".join(mine)], stdout=subprocess.PIPE, text=True))
    reports = {}
    for worker, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        reports[worker] = json.loads(out)

    winners = {key: [w for w, rs in reports.items() for r in rs if r["key"] == key and r["save"]["saved"]]
               for key in keys}
    assert all(len(w) == 1 for w in winners.values()), winners
    for key, (winner,) in winners.items():
        expected = tree_state(tmp_path / f"job{winner}" / "src")
        for worker, results in reports.items():
            for result in results:
                if result["key"] == key:
                    assert result["restore"]["cache-hit"] is True, result
                    restored = tree_state(tmp_path / f"job{worker}" / f"restore-{key}")
                    assert restored == expected, f"{key} restored by job{worker} differs from job{winner}"
    assert Store(store).verify().problems == []
    assert list((store / "tmp").iterdir()) == []  # the losers took their markers away: no prune is due
    print(f"16 jobs, {sum(len(r) for r in reports.values())} save+restore pairs, one winner per key")


def test_kill_9_during_saves_never_leaves_a_partial_entry(tmp_path):
    """60 saves of new content, killed at a random moment of the run or while workers write blobs; at
    least 50 die mid-save."""
    store = tmp_path / "store"
    ws = tmp_path / "ws"
    timings = []
    for run in range(3):  # the quickest save of new content bounds the kill moments
        shutil.rmtree(ws / "node_modules", ignore_errors=True)
        make_tree(ws, f"timing-{run}", files=600)
        started = time.monotonic()
        cli("save", "--cache-dir", str(store), "--key", f"timing-{run}", "--path", "node_modules", cwd=ws)
        timings.append(time.monotonic() - started)
    duration = min(timings)
    rng = random.Random(1234)
    expected, killed, with_workers = {}, 0, 0
    for trial in range(60):
        key = f"crash-{trial}"
        shutil.rmtree(ws / "node_modules")
        make_tree(ws, key, files=600)  # new bytes every trial, so each save writes blobs
        expected[key] = tree_state(ws)
        proc = subprocess.Popen([*CLI, "save", "--cache-dir", str(store), "--key", key, "--path",
                                 "node_modules"], cwd=ws, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if trial % 2:  # at a random moment of the whole run
            time.sleep(rng.uniform(0.0, duration * 0.85))
        else:  # once its workers are writing blobs, the shortest phase of the run
            deadline = time.monotonic() + duration
            while proc.poll() is None and len(save_processes(key)) < 2 and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.01))
        if proc.poll() is None:
            seen = save_processes(key)
            proc.send_signal(signal.SIGKILL)
            killed += 1
            with_workers += len(seen) > 1  # the parent and its forked workers or flusher, seen alive
        proc.wait()
        assert not outlived(key), f"processes of the killed save {key!r} went on running"
    assert Store(store).verify().problems == []
    survivors = [h.key for _, h in Store(store).headers() if h.key.startswith("crash-")]
    for key in survivors:  # whatever was published is whole
        out = tmp_path / f"check-{key}"
        out.mkdir()
        result = json.loads(cli("restore", "--cache-dir", str(store), "--key", key, "--path",
                                "node_modules", cwd=out).stdout)
        assert result["cache-hit"] is True and tree_state(out) == expected[key]
        shutil.rmtree(out)
    # The last killed save's content again: any blob its kill left short is stored whole this time.
    after = json.loads(cli("save", "--cache-dir", str(store), "--key", "after-crashes", "--path",
                           "node_modules", cwd=ws).stdout)
    assert after["saved"] is True
    out = tmp_path / "check-after-crashes"
    out.mkdir()
    cli("restore", "--cache-dir", str(store), "--key", "after-crashes", "--path", "node_modules", cwd=out)
    assert tree_state(out) == tree_state(ws)
    # The killed saves left markers; the budget check after the last save saw them and pruned.
    assert Store(store).failed_saves() == 0 and list((store / "tmp").iterdir()) == []
    cli("prune", "--cache-dir", str(store), "--max-size", "1T", "--max-age", "30d", cwd=ws)
    assert list((store / "tmp").iterdir()) == []
    assert Store(store).verify().problems == []
    assert killed >= 50, f"only {killed} of 60 saves were killed mid-way; the timing is off"
    assert with_workers, "no kill came while forked workers ran, so none could be seen outliving its parent"
    print(f"60 trials, {killed} killed mid-save ({with_workers} while forked workers ran, none outlived "
          f"its parent), {len(survivors)} complete entries survived, 0 partial")


def save_processes(key: str) -> set[int]:
    """The live processes of the save of `key`: its forked workers and flusher carry its command line."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if b"--key" in args and key.encode() in args and args.index(key.encode()) == args.index(b"--key") + 1:
            with contextlib.suppress(OSError):
                if Path(cmdline.parent, "stat").read_text().split(") ")[1][0] != "Z":  # not a zombie
                    found.add(int(cmdline.parent.name))
    return found


def outlived(key: str, grace: float = 2.0) -> set[int]:
    """The processes of a killed save still alive after a short grace period."""
    deadline = time.monotonic() + grace
    while (alive := save_processes(key)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs: a real ENOSPC, not a simulated one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_during_save_is_a_warning_and_the_store_stays_consistent(tmp_path, tiny_disk):
    store = tiny_disk / "store"
    small = tmp_path / "small"
    make_tree(small, "small", files=20)
    assert json.loads(cli("save", "--cache-dir", str(store), "--key", "small", "--path", "node_modules",
                          cwd=small).stdout)["saved"] is True
    big = tmp_path / "big"
    make_tree(big, "big", files=1200)  # a page each at least: 4.7 MiB, well over the disk
    result = cli("save", "--cache-dir", str(store), "--key", "big", "--path", "node_modules", cwd=big)
    assert result.returncode == 0
    assert json.loads(result.stdout)["saved"] is False
    assert "warning: Failed to save: the cache's disk is full" in result.stderr
    # The failed save's marker made the budget check after it prune: its blobs are reclaimed at once.
    assert list((store / "tmp").iterdir()) == [] and Store(store).failed_saves() == 0
    for blob in (store / "blobs").glob("*/*"):  # the blob the disk filled up in was taken back
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name.rstrip("x"), blob.name
    assert [h.key for _, h in Store(store).headers()] == ["small"]
    assert Store(store).verify().problems == []
    out = tmp_path / "out"
    out.mkdir()
    restored = json.loads(cli("restore", "--cache-dir", str(store), "--key", "small", "--path",
                              "node_modules", cwd=out).stdout)
    assert restored["cache-hit"] is True and tree_state(out) == tree_state(small)
    # No blob but the kept entry's is left, and there is nothing more for a budget check to do.
    assert sum(blob.stat().st_size for blob in (store / "blobs").glob("*/*")) == restored["bytes"]
    assert enforce_budget(store, max_bytes=10**9, max_age=86400) == (None, [])
