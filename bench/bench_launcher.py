"""Launcher warm path: process start to the action package's first line, beside a bare `python3 -c pass`.

Run: python bench/bench_launcher.py [--rounds N]. Uses the real tool cache layout in a temp dir; the first
(cold) launch builds the venv and is reported separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCH = REPO_ROOT / "shared" / "launch"
FIRST_LINE = "import time; print(time.time_ns())\n"


def launch_ms(action_dir: Path, env: dict[str, str]) -> float:
    start = time.time_ns()
    out = subprocess.run([sys.executable, str(LAUNCH), str(action_dir)], env=env, capture_output=True,
                         text=True, check=True).stdout
    return (int(out.strip().splitlines()[-1]) - start) / 1e6


def bare_ms() -> float:
    start = time.perf_counter_ns()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter_ns() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        action = Path(tmp) / "bench-probe"
        (action / "bench_probe").mkdir(parents=True)
        (action / "bench_probe" / "__main__.py").write_text(FIRST_LINE)
        env = {**os.environ, "RUNNER_TOOL_CACHE": str(Path(tmp) / "tool-cache")}
        cold = launch_ms(action, env)
        launcher, bare = [], []
        for _ in range(args.rounds):  # alternate so both see the same machine load
            launcher.append(launch_ms(action, env))
            bare.append(bare_ms())
    warm, base = statistics.median(launcher), statistics.median(bare)
    print(f"cold launch (builds the venv):        {cold:8.0f} ms")
    print(f"warm launch to first line (median):   {warm:8.1f} ms  (target < 150 ms)")
    print(f"bare `python -c pass` (median):        {base:8.1f} ms")
    print(f"ratio warm launch / bare python:       {warm / base:8.2f}x")


if __name__ == "__main__":
    main()
