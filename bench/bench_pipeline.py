"""The seed's pipeline "before" and ours "after", side by side on the same commits, under act.

    .venv/bin/python bench/bench_pipeline.py [--rounds 2] [--root DIR]

Set-up: a stand-in production (tests.support.pipeline.Site: nginx on 127.0.0.1, its own compose
project), the example app as a consumer repo, and one warm-up run of after.yml (not counted).

Each round makes a backend-only commit and runs, on it, `before.yml` and `after.yml` on the warm store
(alternating which goes first, so drift on the machine is shared), then makes a second backend-only
commit and runs `after.yml` on a cold store (store and workspace artifacts wiped; Docker's layer cache
and ~/.npm stay, for both pipelines alike). A load generator hits production through nginx at 50 req/s
during every run, and for 30 s with nothing running (the idle baseline). act runs as four runner
instances (tests/workflows/act_runner.py: --concurrent-jobs 4), so after.yml's three test jobs run at
once, as they do on a machine with that many runners registered.

Prints per round and as medians: the wall-time ratios, the overhead of after.yml (wall minus its
critical path's own steps), the deploy-job ratio, the build job on the warm store against the cold
store (Docker's layer cache is warm for both, so this is not the issue's warm-vs-cold build figure:
bench/bench_images.py --job measures that against a cold builder), the prepare job's times, and
production's failed requests and p99 latency during each run.
The root filesystem here is ext4 without a journal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.loadgen import LoadGenerator, LoadReport
from tests.support.pipeline import (
    PipelineRun,
    Site,
    backend_change,
    consumer_repo,
    down,
    run_pipeline,
)

RATE = 50
DEPLOY_JOB = {"before": "production-deployment", "after": "deploy"}
IDLE_SECONDS = 30


def under_load(site: Site, repo: Path, name: str,
               wrapper: Sequence[str] = ()) -> tuple[PipelineRun, LoadReport]:
    with LoadGenerator(site.nginx.url("backend", "/api/health"), rate=RATE, max_seconds=2400) as load:
        result = run_pipeline(repo, name, site, wrapper=wrapper)
    return result, load.stop()


def idle(site: Site) -> LoadReport:
    with LoadGenerator(site.nginx.url("backend", "/api/health"), rate=RATE, max_seconds=IDLE_SECONDS) as load:
        time.sleep(IDLE_SECONDS)
    return load.stop()


def line(label: str, result: PipelineRun, load: LoadReport) -> str:
    jobs = " ".join(f"{job}={result.seconds(job):.0f}s" for job in result.run.jobs)
    status = "ok" if result.ok else "FAILED"
    return (f"  {label:12} {status:6} wall {result.wall:6.1f}s  overhead {result.overhead:5.1f}s "
            f"({result.overhead / result.wall:4.0%})  production: {load.failed} failed of {load.total}, "
            f"p99 {load.p99 * 1000:6.1f} ms\n    {jobs}")


def at_least_two(text: str) -> int:
    """--rounds: a whole number, at least 2 (one round cannot show drift between the two pipelines)."""
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 2 (got {text!r})")
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=at_least_two, default=2)
    parser.add_argument("--root", type=Path, default=None, help="where the site lives (default: a temp dir)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    site = Site.up(root / "site", f"loyalty-bench-{int(time.time()) % 100000}")
    failures = 0
    try:
        repo = consumer_repo(site.root)
        warmup = run_pipeline(repo, "after.yml", site)
        print(warmup.table("warm-up (after.yml, cold store, not counted)"), flush=True)
        if not warmup.ok:
            print(warmup.failure_text())
            return 1
        baseline = idle(site)
        print(f"idle production at {RATE} req/s: {baseline.summary()}", flush=True)
        rows: list[dict[str, tuple[PipelineRun, LoadReport]]] = []
        for number in range(args.rounds):
            backend_change(repo, 2 * number + 1)
            order = ("before.yml", "after.yml") if number % 2 == 0 else ("after.yml", "before.yml")
            row = {name.removesuffix(".yml"): under_load(site, repo, name) for name in order}
            backend_change(repo, 2 * number + 2)
            site.wipe_store()
            row["after-cold"] = under_load(site, repo, "after.yml")
            rows.append(row)
            print(f"\nround {number + 1}:")
            for label in ("before", "after", "after-cold"):
                print(line(label, *row[label]), flush=True)
                failures += not row[label][0].ok
        print(summary(rows, baseline))
    finally:
        down(root / "site")
    return 1 if failures else 0


def ratio(rows: list[dict], top: str, top_job: str | None, bottom: str, bottom_job: str | None) -> str:
    def value(row: dict, label: str, job: str | None) -> float:
        result = row[label][0]
        return result.wall if job is None else result.seconds(job)
    ratios = [value(row, top, top_job) / value(row, bottom, bottom_job) for row in rows]
    return f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"


def summary(rows: list[dict], baseline: LoadReport) -> str:
    after = [row["after"] for row in rows]
    overheads = [result.overhead / result.wall for result, _ in after]
    during_after = [load for row in rows for label, (_, load) in row.items() if label.startswith("after")]
    p99 = statistics.median(load.p99 for load in during_after)
    prepare_warm = statistics.median(result.seconds("prepare") for result, _ in after)
    prepare_cold = statistics.median(row["after-cold"][0].seconds("prepare") for row in rows)
    figures = [
        ("after.yml warm, one backend change / before.yml", ratio(rows, "after", None, "before", None),
         "<= 0.5x"),
        ("after.yml cold store / before.yml", ratio(rows, "after-cold", None, "before", None), "<= 0.9x"),
        ("after.yml overhead (wall - critical path's steps)", f"{statistics.median(overheads):.0%} of wall",
         "<= 10%"),
        ("deploy job, after / before",
         ratio(rows, "after", DEPLOY_JOB["after"], "before", DEPLOY_JOB["before"]), "<= 0.3x"),
        ("build job, warm store / cold store (layer cache warm in both)",
         ratio(rows, "after", "build", "after-cold", "build"), "cold builder: bench_images --job"),
        ("prepare job under act, warm / cold", f"{prepare_warm:.1f}s / {prepare_cold:.1f}s = "
         f"{prepare_warm / prepare_cold:.2f}x", "CLI figure: bench_workspace"),
        (f"production at {RATE} req/s, failed requests during after.yml",
         f"{sum(load.failed for load in during_after)} (before.yml's recreate deploys: "
         f"{sum(row['before'][1].failed for row in rows)})", "0"),
        ("production p99 while after.yml runs / idle",
         f"{p99 * 1000:.1f} ms / {baseline.p99 * 1000:.1f} ms = "
         f"{p99 / baseline.p99 if baseline.p99 else float('inf'):.2f}x", "<= 2x"),
    ]
    return "\n".join(["\nmedians over the rounds [target]:",
                      *(f"  {label:52} {value}  [{target}]" for label, value, target in figures)])


if __name__ == "__main__":
    sys.exit(main())
