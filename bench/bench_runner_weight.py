"""Production's latency while after.yml runs: the runner as it comes, against the runner in a CPU cgroup
of its own with a low weight (what `CPUWeight=` in the runner service's systemd unit gives).

    .venv/bin/python bench/bench_runner_weight.py [--rounds 1] [--shares 2] [--root DIR]

Needs root and the cgroup-v1 cpu controller (/sys/fs/cgroup/cpu, this machine's; on cgroup v2 the unit's
CPUWeight= does the same). Set-up as bench_pipeline.py: a stand-in production behind nginx on
127.0.0.1, the example app as a consumer repo, one warm-up run of after.yml (not counted) and 30 s of
idle load for the baseline. Each round makes a backend-only commit and runs after.yml (warm store) once
each way, alternating which goes first, with a load generator on production at 50 req/s.

Why a cgroup and not nice: our actions already run their installs at nice 10, and running act itself
at nice 10 changed nothing measurable here (p99 419 ms against 418 ms). With cgroup v1 every process
outside a cgroup competes one by one with the whole of dockerd's containers (production's among them,
one weight of 1024 between them all), so many niced test processes still outweigh production. In a
cgroup of its own the runner's whole process tree is one weight. The containers its jobs start
(test-services') stay in dockerd's group, at test-services' low cpu_shares.

Prints each run's wall time, production's failed requests, p50 and p99, and the medians per way.
The root filesystem here is ext4 without a journal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_pipeline import idle, line, under_load  # this script's folder is on sys.path

from tests.support.pipeline import Site, backend_change, consumer_repo, down, run_pipeline

CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")


def cgroup_wrapper(group: Path) -> list[str]:
    """A command that moves itself into `group`, then becomes act (its jobs inherit the group)."""
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs")]


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], else argparse's exit 2 naming the flag."""
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high} (got {text!r})")
        return int(text)
    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=whole_number(1, 100), default=1)
    parser.add_argument("--shares", type=whole_number(2, 262144), default=2,
                        help="the runner's cpu.shares, 2-262144 (a container's: 1024)")
    parser.add_argument("--root", type=Path, default=None, help="where the site lives (default: a temp dir)")
    args = parser.parse_args()
    if os.geteuid() != 0 or not (CPU_CGROUPS / "cpu.shares").exists():
        print("needs root and the cgroup-v1 cpu controller at /sys/fs/cgroup/cpu", file=sys.stderr)
        return 2
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-runner-weight-"))
    site = Site.up(root / "site", f"loyalty-weight-{int(time.time()) % 100000}")
    group = CPU_CGROUPS / f"ci-actions-bench-runner-{os.getpid()}"
    ways = {"as it comes": (), f"cgroup {args.shares}": tuple(cgroup_wrapper(group))}
    results: dict[str, list] = {way: [] for way in ways}
    failures = 0
    try:
        group.mkdir()
        (group / "cpu.shares").write_text(str(args.shares))
        repo = consumer_repo(site.root)
        warmup = run_pipeline(repo, "after.yml", site)
        print(warmup.table("warm-up (after.yml, cold store, not counted)"), flush=True)
        baseline = idle(site)
        print(f"idle production: {baseline.summary()}", flush=True)
        for number in range(args.rounds):
            backend_change(repo, number + 1)
            order = list(ways) if number % 2 == 0 else list(ways)[::-1]
            for way in order:
                result, load = under_load(site, repo, "after.yml", wrapper=ways[way])
                results[way].append((result, load))
                failures += not result.ok
                print(line(way, result, load), flush=True)
        print(f"\nmedians over {args.rounds} round(s); idle p99 {baseline.p99 * 1000:.1f} ms:")
        for way, runs in results.items():
            wall = statistics.median(result.wall for result, _ in runs)
            p99 = statistics.median(load.p99 for _, load in runs)
            p50 = statistics.median(load.p50 for _, load in runs)
            failed = sum(load.failed for _, load in runs)
            print(f"  {way:20} wall {wall:6.1f}s  p50 {p50 * 1000:5.1f} ms  p99 {p99 * 1000:6.1f} ms "
                  f"({p99 / baseline.p99:.1f}x idle)  failed {failed}")
    finally:
        down(root / "site")
        with contextlib.suppress(FileNotFoundError):
            group.rmdir()  # empty again: every process act started has ended
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
