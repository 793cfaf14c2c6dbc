"""Many prepares and restores at once, 2-4 package dirs each, share one store: none ever hangs.

Each prepare saves several entries (new lock files) and restores others (lock files every run shares),
which is how two savers in one process once waited on each other's flushers forever. Every command
is a real `python -m ci_actions workspace ...` process under a deadline; a hang is a failure, not a
stuck suite. CI runs STRESS_ROUNDS (default 24) prepare+restore pairs; bench/stress_workspace.sh runs
the 200-pair figure.
"""

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROUNDS = int(os.environ.get("STRESS_ROUNDS", "24"))
AT_ONCE = 6
DEADLINE = 180.0  # seconds for one command; a healthy one takes one or two
CLI = [sys.executable, "-m", "ci_actions", "workspace"]
# A stand-in for `npm ci`: a few hundred files, a .bin link and a nested package, named after the lock.
INSTALL = """
import hashlib, os, pathlib
lock = pathlib.Path("package-lock.json").read_bytes()
tag = hashlib.sha256(lock).hexdigest()[:12]
root = pathlib.Path("node_modules")
for i in range(240):
    path = root / f"pkg{i % 24}" / f"file{i}.js"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"// {tag} {i}\\n" + "x" * (i * 53 % 3000))
(root / ".bin").mkdir(exist_ok=True)
os.symlink("../pkg0/file0.js", root / ".bin" / "tool")
"""


def checkout(root: Path, round_no: int, dirs: int) -> dict[str, str]:
    """A workspace with `dirs` package dirs: the first's lock is shared by every round (a store hit
    after the first), the others are new each round (misses, saved in the same prepare)."""
    tags = {}
    for d in range(dirs):
        package = root / f"pkg{d}"
        package.mkdir(parents=True)
        tag = "shared" if d == 0 else f"r{round_no}-d{d}"
        (package / "package.json").write_text(json.dumps({"name": f"p{d}", "version": "1.0.0"}))
        (package / "package-lock.json").write_text(json.dumps({"name": f"p{d}", "lockfileVersion": 3,
                                                               "tag": tag}))
        tags[f"pkg{d}"] = tag
    (root / "src.js").write_text(f"round {round_no}\n")
    return tags


def one_round(tmp: Path, round_no: int) -> dict:
    dirs = random.Random(round_no).randint(2, 4)
    ws = tmp / f"ws{round_no}"
    checkout(ws, round_no, dirs)
    common = ["--workspace-root", str(tmp / "runs"), "--cache-dir", str(tmp / "store"), "--repository",
              "acme/stress", "--run-id", str(round_no), "--install-command",
              f"{sys.executable} {tmp / 'install.py'}"]
    outcome = {"round": round_no, "dirs": dirs, "hang": False, "errors": []}
    job = tmp / f"job{round_no}"
    steps = [[*CLI, "prepare", "--workspace", str(ws),
              *(a for d in range(dirs) for a in ("--package-dir", f"pkg{d}")), *common],
             [*CLI, "restore", "--workspace", str(job), *common]]
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE, check=False)
        except subprocess.TimeoutExpired:
            outcome["hang"] = True
            return outcome
        if done.returncode != 0:
            outcome["errors"].append(done.stderr[-2000:])
            return outcome
    for d in range(dirs):
        modules = job / f"pkg{d}" / "node_modules"
        if len(list(modules.glob("pkg*/file*.js"))) != 240 or not (modules / ".bin" / "tool").is_symlink():
            outcome["errors"].append(f"round {round_no}: pkg{d}/node_modules is incomplete after restore")
    return outcome


def test_concurrent_prepares_and_restores_never_hang(tmp_path):
    (tmp_path / "install.py").write_text(INSTALL)
    with ThreadPoolExecutor(AT_ONCE) as pool:
        outcomes = list(pool.map(lambda n: one_round(tmp_path, n), range(ROUNDS)))
    hangs = [o["round"] for o in outcomes if o["hang"]]
    errors = [e for o in outcomes for e in o["errors"]]
    print(f"stress: {ROUNDS} prepare+restore pairs ({2 * ROUNDS} runs), "
          f"{sum(o['dirs'] for o in outcomes)} package dirs, {len(hangs)} hangs, {len(errors)} errors")
    assert hangs == [] and errors == []


def test_store_forks_happen_only_in_a_single_threaded_process(tmp_path, monkeypatch):
    """The design behind the figure above: a prepare with three misses and a restore of three entries
    fork their store workers and flushers only while this process runs one thread, so no child can
    inherit another thread's pipe. (The old prepare saved on threads: this fails there.)"""
    import threading

    from ci_actions.artifact import RunId
    from ci_actions.workspace import Commands
    from prepare_workspace.prepare import PrepareRequest, prepare
    from restore_workspace.restore import RestoreRequest, restore_workspace

    (tmp_path / "install.py").write_text(INSTALL)
    install = [sys.executable, str(tmp_path / "install.py")]
    checkout(tmp_path / "ws", 0, 3)
    threads_at_fork = []
    real_fork = os.fork

    def fork() -> int:
        threads_at_fork.append(threading.active_count())
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    run = RunId("acme/forks", "1", 1)
    prepare(PrepareRequest(tmp_path / "ws", ["pkg0", "pkg1", "pkg2"], install, False, [], None,
                           tmp_path / "store", tmp_path / "runs", ["node_modules"], 3600.0, "copy", run))
    restore_workspace(RestoreRequest(tmp_path / "job", tmp_path / "runs", tmp_path / "store", "all", "copy",
                                     run, Commands(tuple(install))))
    assert threads_at_fork and set(threads_at_fork) == {1}
    assert len(list((tmp_path / "job" / "pkg2" / "node_modules").glob("pkg*/*.js"))) == 240
