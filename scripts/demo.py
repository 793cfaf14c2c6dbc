"""The example pipeline end to end on the bundled loyalty app, as a self-hosted runner runs it (act).

Runs the seed's "before" pipeline, then the "after" pipeline twice (a cold store, then a warm one), and
prints each job's result and time. Uses a fresh store and workspace root under a temp directory, so the
cold run is really cold (npm's own download cache in ~/.npm stays warm, as on a real runner). The
"after" runs build the images once and deploy them behind a real nginx on 127.0.0.1 (a stand-in for the
production host, torn down at the end with the containers and images it served).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.production import production_host  # noqa: E402
from tests.workflows.act_runner import WorkflowRun, make_consumer_repo, run_workflow  # noqa: E402

APP = REPO_ROOT / "examples" / "loyalty-app"
WORKFLOWS = REPO_ROOT / "examples" / "workflows"


def report(title: str, run: WorkflowRun, wall: float) -> bool:
    print(f"\n{title}: {wall:.1f}s wall clock")
    for job_id, job in run.jobs.items():
        print(f"  {job_id:24} {job.result:8} {job.seconds:7.1f}s")
    return run.returncode == 0 and all(j.result == "success" for j in run.jobs.values())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ci-actions-demo-") as tmp, \
            production_host(Path(tmp), f"loyalty-demo-{os.getpid()}") as host:
        root = Path(tmp)
        env = {"CI_ACTIONS_CACHE_DIR": str(root / "store"),
               "CI_ACTIONS_WORKSPACE_ROOT": str(root / "workspaces"), **host.env()}
        ok = True
        for title, name in (("before (seed)", "before.yml"), ("after, cold store", "after.yml"),
                            ("after, warm store", "after.yml")):
            repo = make_consumer_repo(Path(tempfile.mkdtemp(dir=root)), WORKFLOWS / name, tree=APP)
            started = time.monotonic()
            run = run_workflow(repo, repo / ".github" / "workflows" / name, env=env)
            ok &= report(title, run, time.monotonic() - started)
            if run.returncode != 0:
                failed = [j for j in run.jobs.values() if j.result != "success"]
                print(failed[0].text[-3000:] if failed else run.stderr[-3000:])
        print(f"\nproduction (nginx on {host.nginx.url('frontend')}) served the last release; "
              "it is torn down now")
    print("\nall jobs passed" if ok else "\nsome jobs failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
