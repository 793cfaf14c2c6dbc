"""hash_files('**') against `find DIR -type f | sort | xargs sha256sum` on a node_modules-like tree.

Builds ~20k files (package folders with package.json, README, LICENSE, lib/ and dist/ sources,
nested node_modules; sizes log-normal around 1.5 KiB with a long tail to a few MiB), warms the page
cache, then alternates the two for several rounds and prints the ratio of the medians
(ours / find+sha256sum). Run as: python bench/bench_hash_files.py [--files N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from ci_actions.hash_files import hash_files


def build_tree(root: Path, files: int, seed: int = 20) -> int:
    """Write about `files` files under root/node_modules; returns the total bytes written."""
    rnd = random.Random(seed)
    total = written = 0
    package = 0
    while written < files:
        package += 1
        base = root / "node_modules" / f"pkg-{package:04d}"
        if package % 7 == 0:  # some packages nest their own node_modules
            base = root / "node_modules" / f"pkg-{package - 1:04d}" / "node_modules" / f"dep-{package:04d}"
        names = ["package.json", "README.md", "LICENSE"]
        for folder in ("lib", "dist", "lib/utils", "types"):
            names += [
                f"{folder}/m{i}.{rnd.choice(['js', 'mjs', 'cjs', 'd.ts', 'map'])}"
                for i in range(rnd.randint(2, 9))
            ]
        for name in names:
            size = min(int(rnd.lognormvariate(7.3, 1.6)), 4 << 20)
            path = base / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rnd.randbytes(size))
            total += size
            written += 1
            if written >= files:
                break
    return total


def find_sort_sha256sum(root: Path) -> float:
    start = time.perf_counter()
    env = {**os.environ, "LC_ALL": "C"}
    find = subprocess.Popen(["find", str(root), "-type", "f", "-print0"], stdout=subprocess.PIPE, env=env)
    sort = subprocess.Popen(["sort", "-z"], stdin=find.stdout, stdout=subprocess.PIPE, env=env)
    assert find.stdout is not None and sort.stdout is not None
    find.stdout.close()
    xargs = subprocess.Popen(
        ["xargs", "-0", "sha256sum"], stdin=sort.stdout, stdout=subprocess.DEVNULL, env=env
    )
    sort.stdout.close()
    codes = (xargs.wait(), sort.wait(), find.wait())
    elapsed = time.perf_counter() - start
    if any(codes):
        raise SystemExit(f"find | sort | xargs sha256sum failed: exit codes {codes}")
    return elapsed


def ours(root: Path) -> float:
    start = time.perf_counter()
    digest = hash_files("**", root)
    elapsed = time.perf_counter() - start
    assert len(digest) == 64
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for tool in ("find", "sort", "xargs", "sha256sum"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH (coreutils/findutils)")
    with tempfile.TemporaryDirectory(prefix="bench-hash-files-") as tmp:
        root = Path(tmp)
        size = build_tree(root, args.files)
        print(f"tree: {args.files} files, {size / 2**20:.1f} MiB under {root}")
        ours(root), find_sort_sha256sum(root)  # warm the page cache and the code paths
        mine, theirs = [], []
        for _ in range(args.rounds):
            mine.append(ours(root))
            theirs.append(find_sort_sha256sum(root))
    a, b = statistics.median(mine), statistics.median(theirs)
    for label, median, times in (("hash_files('**')", a, mine), ("find|sort|xargs sha256sum", b, theirs)):
        print(f"{label:<27} median {median * 1000:7.1f} ms  rounds {[round(t * 1000) for t in times]}")
    print(f"ratio (ours / find+sha256sum): {a / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
