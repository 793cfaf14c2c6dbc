"""The example pipeline end to end on the bundled loyalty app, as a self-hosted runner runs it (act).

    scripts/demo          set up, run the pipelines, leave the app deployed on 127.0.0.1
    scripts/demo down     stop and remove what the last demo left running

1. The seed's "before" pipeline, then the "after" one on a cold store and again on a warm one, all on
   the same commit; each run's jobs and times, the ratios, and the last run's timeline
   (pipeline-report) are printed.
2. A backend-only change is committed and "after" runs again while a load generator hits production
   through nginx at 50 req/s: the hot-swap happens under load, and every request must succeed.
3. Production (nginx on 127.0.0.1 in front of the last release, its database and Redis) stays up.

Everything lives under $CI_ACTIONS_DEMO_DIR (default ~/.local/state/ci-actions-demo), which a new demo
clears first, so the cold run is really cold (npm's own download cache in ~/.npm stays warm, as on a
real runner).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.loadgen import LoadGenerator  # noqa: E402
from tests.support.pipeline import (  # noqa: E402
    PipelineRun,
    Site,
    backend_change,
    consumer_repo,
    down,
    report_markdown,
    run_pipeline,
)

PROJECT = "loyalty-demo"
LOAD_RATE = 50


def demo_root() -> Path:
    default = Path.home() / ".local" / "state" / "ci-actions-demo"
    return Path(os.environ.get("CI_ACTIONS_DEMO_DIR") or default)


def show(title: str, result: PipelineRun) -> bool:
    print("\n" + result.table(title), flush=True)
    if not result.ok:
        print(result.failure_text())
    return result.ok


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str]) -> int:
    root = demo_root()
    if argv == ["down"]:
        print("stopped the demo's production" if down(root) else f"no demo is running under {root}")
        return 0
    if argv:
        print(__doc__)
        return 2
    site = Site.up(root, PROJECT)
    repo = consumer_repo(root)
    runs = {}
    ok = True
    for label, name in (("before (seed)", "before.yml"), ("after, cold store", "after.yml"),
                        ("after, warm store", "after.yml")):
        if label == "after, cold store":
            site.wipe_store()
        runs[label] = run_pipeline(repo, name, site)
        ok &= show(label, runs[label])

    sha = backend_change(repo, 1)
    backend = site.nginx.url("backend", "/api/health")
    with LoadGenerator(backend, rate=LOAD_RATE, max_seconds=1200) as load:
        runs["after, backend change under load"] = changed = run_pipeline(repo, "after.yml", site)
    traffic = load.stop()
    ok &= show(f"after, backend change {sha[:7]}, {LOAD_RATE} req/s on production", changed)
    print(f"  production during it: {traffic.summary()}")
    ok &= traffic.failed == 0

    before = runs["before (seed)"].wall
    print("\nwall clock, after / before:")
    for label, result in runs.items():
        print(f"  {label:36} {result.wall:7.1f}s  {result.wall / before:5.2f}x")
    timeline = report_markdown(site)
    if timeline:
        print("\ntimeline of the last run (pipeline-report):\n" + timeline)
    live = healthy(backend) and healthy(site.nginx.url("frontend"))
    ok &= live
    print(f"\nproduction: {site.nginx.url('frontend')} (API {backend}) "
          f"{'is healthy' if live else 'is NOT healthy'}; `scripts/demo down` stops it")
    print("\nall jobs passed, no request failed" if ok else "\nsomething failed (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
