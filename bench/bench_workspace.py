"""prepare-workspace and restore-workspace on the example app, beside what users would run instead.

Run: .venv/bin/python bench/bench_workspace.py [--rounds N]   (after scripts/setup)

1. warm prepare (both package dirs and Prisma in the store) / cold prepare (empty store)   target <= 10%
2. prepare + 3 x restore-workspace on a warm store / the seed's "before": 3 jobs each running
   `npm ci` in both dirs and `prisma generate`                                              target <= 25%
3. pack and unpack throughput / `tar -c | zstd -T0 -3` and `zstd -dc | tar -x` on the same tree
   (a restored job's tree, node_modules and the client in it: a warm prepare leaves its own
   tree without them, and a tree of sources alone times start-up, not throughput)     target >= 0.8x
npm's own download cache (~/.npm) is warm for every install on both sides, as on a real runner.
`sync` runs before every timed step, and the pack and unpack pairs alternate which side goes first, so
neither side pays for the writeback of what ran before it (as in bench_cache.py).
`--loop-ext4 GB` (root) runs the rounds on a fresh journaled ext4 loop mount (see bench_cache.py for why
this VM's own root filesystem inflates file-creation times).

`--cli` measures only (1), as a user runs it: `ci-actions workspace prepare` as a process, on the
filesystem of `--dir` (default: the system temp dir), cold (empty store) then warm (every entry a hit; a
fresh copy of the sources, as a new commit's checkout), per round. Wall is the process's, Python's
start-up included; "own" is the sum of prepare's phases (checks, lookup/restore/install, Prisma,
pack), as its JSON report gives them. Each warm artifact is then restored by `ci-actions workspace
restore` and checked (both node_modules, the generated client), so a fast prepare that left a later
job short fails the bench.                                       target: warm <= 0.05x cold, own <= 1 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for package in ("shared", "actions/prepare-workspace", "actions/restore-workspace"):
    sys.path.insert(0, str(REPO_ROOT / package))

from bench_cache import loop_ext4  # noqa: E402

from ci_actions.artifact import RunId, pack, unpack  # noqa: E402
from ci_actions.workspace import Commands  # noqa: E402
from prepare_workspace.prepare import PrepareRequest, prepare  # noqa: E402
from restore_workspace.restore import RestoreRequest, restore_workspace  # noqa: E402

APP = REPO_ROOT / "examples" / "loyalty-app"
DIRS = ["backend", "frontend"]
SCHEMA = "backend/prisma/schema.prisma"
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund"]
os.environ.setdefault("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/true")  # offline Prisma 7 generate


def fresh_app(root: Path) -> Path:
    workspace = root / f"app-{time.monotonic_ns()}"
    shutil.copytree(APP, workspace, ignore=shutil.ignore_patterns("node_modules", "dist", "build-test",
                                                                   "generated"))
    return workspace


def timed(action, *args, **kwargs) -> float:
    os.sync()  # the steps before left dirty pages: their writeback is not this step's time
    started = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - started


def prepare_once(workspace: Path, store: Path, runs: Path, run_id: str) -> None:
    prepare(PrepareRequest(workspace, DIRS, NPM_CI, True, [SCHEMA], None, store, runs, ["node_modules"],
                           86400.0, "auto", RunId("bench/app", run_id, 1)))


def restore_job(job: Path, store: Path, runs: Path, run_id: str) -> None:
    job.mkdir()
    report = restore_workspace(RestoreRequest(job, runs, store, "all", "auto", RunId("bench/app", run_id, 1),
                                              Commands(tuple(NPM_CI))))
    assert report.all_hit, "the warm store should hold every entry"


def seed_job(workspace: Path) -> None:
    for directory in DIRS:
        subprocess.run(NPM_CI, cwd=workspace / directory, check=True, capture_output=True)
    subprocess.run(["npx", "--no-install", "prisma", "generate"], cwd=workspace / "backend", check=True,
                   capture_output=True)


def cli_pack(tree: Path, out: Path) -> None:
    tar = subprocess.Popen(["tar", "-C", str(tree), "-cf", "-", "."], stdout=subprocess.PIPE)
    subprocess.run(["zstd", "-T0", "-3", "-q", "-f", "-o", str(out)], stdin=tar.stdout, check=True)
    tar.stdout.close()
    assert tar.wait() == 0


def cli_unpack(archive: Path, dest: Path) -> None:
    dest.mkdir()
    zstd = subprocess.Popen(["zstd", "-dc", str(archive)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], stdin=zstd.stdout, check=True)
    zstd.stdout.close()
    assert zstd.wait() == 0


def after(root: Path, store: Path, runs: Path, run_id: str) -> None:
    """The new pipeline: prepare once (warm store), three jobs start from restore-workspace."""
    prepare_once(fresh_app(root), store, runs, run_id)
    for job in ("quality", "unit", "build"):
        restore_job(root / f"{run_id}-{job}", store, runs, run_id)


def before(root: Path) -> None:
    """The seed's pipeline: three jobs, each installing both dirs and generating Prisma."""
    for _ in range(3):
        seed_job(fresh_app(root))


def side_by_side(n: int, ours, theirs) -> tuple[float, float]:
    """(ours, theirs) seconds, each side going first in every other round."""
    if n % 2:
        theirs_s = theirs()
        return ours(), theirs_s
    ours_s = ours()
    return ours_s, theirs()


def one_round(root: Path, n: int) -> dict[str, tuple[float, float]]:
    """(ours, theirs) seconds per measure, in one round, side by side."""
    store, runs = root / "store", root / "runs"
    cold = timed(prepare_once, fresh_app(root), store, runs, f"{n}-cold")
    warm = timed(prepare_once, fresh_app(root), store, runs, f"{n}-warm")
    result = {"warm/cold": (warm, cold),
              "pipeline": (timed(after, root, store, runs, f"{n}-after"), timed(before, root))}
    tree = root / f"{n}-after-build"  # a job's restored tree: both node_modules and the client in it
    ours, cli = root / "ours", root / "cli.tar.zst"
    result["pack"] = side_by_side(n, lambda: timed(pack, tree, ours, run=RunId("b/b", str(n), 1), exclude=[]),
                                  lambda: timed(cli_pack, tree, cli))
    result["unpack"] = side_by_side(n, lambda: timed(unpack, ours, root / "ours-out"),
                                    lambda: timed(cli_unpack, cli, root / "cli-out"))
    samples = ", ".join(f"{k} {o:.2f}s/{t:.2f}s" for k, (o, t) in result.items())
    print(f"round {n + 1} (ours/theirs): {samples}", flush=True)
    return result


CLI = [str(REPO_ROOT / ".venv" / "bin" / "ci-actions"), "workspace"]
PRISMA_OUTPUT = "backend/src/generated/prisma"


def cli_prepare(workspace: Path, store: Path, runs: Path, run_id: str) -> tuple[float, dict]:
    """One `ci-actions workspace prepare` process: its wall seconds and its JSON report."""
    argv = [*CLI, "prepare", "--workspace", str(workspace), "--repository", "bench/app", "--run-id", run_id,
            "--cache-dir", str(store), "--workspace-root", str(runs), "--prod-layer",
            "--prisma-schema", SCHEMA, "--install-command", " ".join(NPM_CI),
            *(arg for directory in DIRS for arg in ("--package-dir", directory))]
    os.sync()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"prepare failed ({done.returncode}):\n{done.stderr}")
    return wall, json.loads(done.stdout)


def cli_restore_checked(job: Path, store: Path, runs: Path, run_id: str) -> None:
    """restore-workspace of that run into an empty job directory holds what every later job needs."""
    job.mkdir()
    done = subprocess.run([*CLI, "restore", "--workspace", str(job), "--repository", "bench/app",
                           "--run-id", run_id, "--cache-dir", str(store), "--workspace-root", str(runs)],
                          capture_output=True, text=True, check=False)
    if done.returncode or not json.loads(done.stdout)["cache-hit"]:
        raise SystemExit(f"restore of {run_id} failed or missed:\n{done.stdout}\n{done.stderr}")
    for needed in ("backend/node_modules/.bin/prisma", "frontend/node_modules/.bin/vite",
                   f"{PRISMA_OUTPUT}/client.ts", "backend/src/server.ts"):
        if not (job / needed).exists():
            raise SystemExit(f"restore of {run_id} lacks {needed}")


def own_seconds(report: dict) -> float:
    return sum(seconds for name, seconds in report["phases"].items() if name != "total")


def cli_rounds(rounds: int, directory: Path | None) -> None:
    samples = []
    for n in range(rounds):
        with tempfile.TemporaryDirectory(prefix="ci-actions-bench-cli-", dir=directory) as tmp:
            root = Path(tmp)
            store, runs = root / "store", root / "runs"
            cold_wall, cold = cli_prepare(fresh_app(root), store, runs, f"{n}-cold")
            assert not cold["cache-hit"], "an empty store cannot hit"
            warm_wall, warm = cli_prepare(fresh_app(root), store, runs, f"{n}-warm")
            assert warm["cache-hit"], f"every entry should hit: {warm['entries']}"
            cli_restore_checked(root / "job", store, runs, f"{n}-warm")
            phases = ", ".join(f"{k} {v:.3f}" for k, v in warm["phases"].items())
            print(f"round {n + 1}: cold {cold_wall:.2f}s, warm {warm_wall:.2f}s "
                  f"(own {own_seconds(warm):.3f}s: {phases})", flush=True)
            samples.append((cold_wall, warm_wall, own_seconds(warm)))
    cold_s, warm_s, own_s = (statistics.median(column) for column in zip(*samples, strict=True))
    where = subprocess.run(["df", "--output=fstype,target", str(directory or tempfile.gettempdir())],
                           capture_output=True, text=True, check=False).stdout.split()[-2:]
    print(f"CLI prepare on {' '.join(where)}; median of {rounds} rounds")
    print(f"cold prepare (empty store)           {cold_s:7.2f}s")
    print(f"warm prepare (every entry a hit)     {warm_s:7.2f}s  {warm_s / cold_s:.3f}x  target <= 0.05x")
    print(f"warm prepare's own work (phases)     {own_s:7.3f}s          target <= 1 s")
    print(f"warm prepare's wall, Python included {warm_s:7.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop-ext4", type=float, metavar="GB")
    parser.add_argument("--cli", action="store_true", help="cold vs warm `ci-actions workspace prepare` only")
    parser.add_argument("--dir", type=Path, help="with --cli: where the rounds run (default: the temp dir)")
    args = parser.parse_args()
    if args.cli:
        cli_rounds(args.rounds, args.dir)
        return
    rounds = []
    with loop_ext4(args.loop_ext4) if args.loop_ext4 else contextlib.nullcontext(None) as mount:
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="ci-actions-bench-ws-", dir=mount) as tmp:
                rounds.append(one_round(Path(tmp), n))
    print(f"example app (backend + frontend + Prisma); median of {args.rounds} rounds")
    print(f"{'measure':58} {'ours':>8} {'theirs':>8} {'ratio':>6}  target")
    labels = {
        "warm/cold": ("warm prepare / cold prepare", "<= 0.10", False),
        "pipeline": ("prepare + 3 restores / 3 seed jobs (npm ci x2 + prisma)", "<= 0.25", False),
        "pack": ("pack throughput / tar | zstd -T0 -3", ">= 0.8", True),
        "unpack": ("unpack throughput / zstd -dc | tar -x", ">= 0.8", True),
    }
    for key, (label, target, throughput) in labels.items():
        ours = statistics.median(r[key][0] for r in rounds)
        theirs = statistics.median(r[key][1] for r in rounds)
        ratio = theirs / ours if throughput else ours / theirs
        print(f"{label:58} {ours:7.2f}s {theirs:7.2f}s {ratio:6.2f}  {target}")


if __name__ == "__main__":
    main()
