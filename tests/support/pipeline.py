"""The example pipeline as scripts/demo and bench/bench_pipeline.py run it.

- `Site`: a stand-in production that outlives the run (the demo leaves the app deployed): a real nginx
  on 127.0.0.1 that owns the app's public ports, a compose project and the state dir (release ledger,
  timing records, run history), all under one folder. `Site.down()` removes it all; `Site.up()`
  removes an older one first, so every demo starts from nothing.
- `consumer_repo`: a git repository of the example app holding both workflow files, as a consumer's.
- `backend_change`: a new commit that changes only the backend's source.
- `run_pipeline`: one workflow run under act, with its wall time, jobs and critical path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import yaml
from docker.errors import DockerException

from tests.support.nginx import NginxServer, start_nginx
from tests.support.production import NOTHING_YET, SERVICES, remove_project
from tests.workflows.act_runner import REPO_ROOT, WorkflowRun, make_consumer_repo, run_workflow

APP = REPO_ROOT / "examples" / "loyalty-app"
WORKFLOWS = REPO_ROOT / "examples" / "workflows"
SITE_FILE = "site.json"
REPO_PREFIX = "repo-"
BEFORE_IMAGES = ("loyalty-app-backend", "loyalty-app-frontend")
CHANGED_FILE = "backend/src/release.ts"


@dataclass(frozen=True)
class Site:
    root: Path
    project: str
    nginx: NginxServer

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def env(self) -> dict[str, str]:
        """What the workflows read (act --env): production's names, and the runner's store and workspaces."""
        return {"DEPLOY_PROJECT": self.project, "CI_ACTIONS_STATE_DIR": str(self.state_dir),
                "NGINX_CONFIG": str(self.nginx.config), "UPSTREAM_DIR": str(self.nginx.upstream_dir),
                "CI_ACTIONS_CACHE_DIR": str(self.root / "store"),
                "CI_ACTIONS_WORKSPACE_ROOT": str(self.root / "workspaces")}

    def wipe_store(self) -> None:
        """A cold store (and no workspace artifacts); npm's own download cache in ~/.npm stays warm."""
        for name in ("store", "workspaces"):
            shutil.rmtree(self.root / name, ignore_errors=True)

    @classmethod
    def up(cls, root: Path, project: str) -> Site:
        down(root)
        root.mkdir(parents=True, exist_ok=True)
        nginx = start_nginx(root / "nginx", project, dict.fromkeys(SERVICES, NOTHING_YET))
        (root / SITE_FILE).write_text(json.dumps({"project": project, "ports": nginx.ports}))
        return cls(root, project, nginx)


def down(root: Path) -> bool:
    """Stop a site left at `root` (its nginx by its pid file, its compose project, the images its
    pipelines built) and delete the folder; False when there was none."""
    try:
        site = json.loads((root / SITE_FILE).read_text())
    except (OSError, ValueError):
        return False
    nginx_root = root / "nginx"
    NginxServer(nginx_root, nginx_root / "nginx.conf", nginx_root / "upstreams", site["project"],
                site["ports"]).stop()
    remove_project(site["project"])
    remove_before_images(root)
    shutil.rmtree(root, ignore_errors=True)
    return True


def remove_before_images(root: Path) -> None:
    """before.yml tags its images with the commit (and `e2e-<commit>`) but no project label, as the seed's
    pipeline does: remove those of the commits of the site's repositories (`repo-*` under `root`)."""
    client = docker.from_env()
    for repo in root.glob(f"{REPO_PREFIX}*"):
        listed = subprocess.run(["git", "-C", str(repo), "rev-list", "--all"], capture_output=True, text=True,
                                check=False).stdout.split()
        for sha in listed:
            for ref in (f"{image}:{tag}" for image in BEFORE_IMAGES for tag in (sha, f"e2e-{sha}")):
                with contextlib.suppress(DockerException):
                    client.images.remove(ref, force=True)
    client.close()


def consumer_repo(root: Path) -> Path:
    """The example app as a consumer's repository (a new `repo-*` folder under the site's root, so
    `down` finds its commits), with before.yml and after.yml committed."""
    repo = Path(tempfile.mkdtemp(prefix=REPO_PREFIX, dir=root))
    make_consumer_repo(repo, WORKFLOWS / "after.yml", tree=APP,
                       files={".github/workflows/before.yml": (WORKFLOWS / "before.yml").read_text()})
    return repo


def backend_change(repo: Path, number: int) -> str:
    """Commit a change to the backend's source only (a release note the backend compiles in) and
    return the new commit."""
    path = repo / CHANGED_FILE
    path.write_text(f'export const RELEASE_NOTE = "change {number}";\n')
    git = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    subprocess.run([*git, "add", CHANGED_FILE], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", f"backend change {number}"], check=True, capture_output=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


@dataclass(frozen=True)
class PipelineRun:
    workflow: str
    run: WorkflowRun
    wall: float
    critical_path: list[str]

    @property
    def ok(self) -> bool:
        return self.run.returncode == 0 and all(j.result == "success" for j in self.run.jobs.values())

    def seconds(self, job: str) -> float:
        return self.run.jobs[job].seconds if job in self.run.jobs else float("nan")

    @property
    def overhead(self) -> float:
        """Wall time not spent in the critical path's own steps (scheduling, job set-up, act)."""
        return self.wall - sum(self.run.jobs[job].work_seconds for job in self.critical_path)

    def table(self, title: str) -> str:
        lines = [f"{title}: {self.wall:.1f}s wall clock; critical path {' > '.join(self.critical_path)}, "
                 f"overhead {self.overhead:.1f}s ({self.overhead / self.wall:.0%})"]
        lines += [f"  {job_id:24} {job.result:8} {job.seconds:7.1f}s  (steps {job.work_seconds:6.1f}s)"
                  for job_id, job in self.run.jobs.items()]
        return "\n".join(lines)

    def failure_text(self) -> str:
        failed = [j for j in self.run.jobs.values() if j.result != "success"]
        return failed[0].text[-3000:] if failed else self.run.stderr[-3000:]


def critical_path(workflow: Path, run: WorkflowRun) -> list[str]:
    """The chain that set the wall time: the job that ended last, then, among the jobs it needs, the one
    that ended last, and so on back to a job that needs nothing."""
    needs = {job_id: [job.get("needs")] if isinstance(job.get("needs"), str) else list(job.get("needs") or [])
             for job_id, job in (yaml.safe_load(workflow.read_text()).get("jobs") or {}).items()}
    ran = {job_id: job for job_id, job in run.jobs.items() if job.ended}
    if not ran:
        return []
    path = [max(ran, key=lambda job_id: ran[job_id].ended)]
    while upstream := [job_id for job_id in needs.get(path[-1], []) if job_id in ran]:
        path.append(max(upstream, key=lambda job_id: ran[job_id].ended))
    return path[::-1]


def run_pipeline(repo: Path, name: str, site: Site, timeout: float = 1800,
                 wrapper: Sequence[str] = ()) -> PipelineRun:
    workflow = repo / ".github" / "workflows" / name
    started = time.monotonic()
    run = run_workflow(repo, workflow, env=site.env(), timeout=timeout, wrapper=wrapper)
    return PipelineRun(name, run, time.monotonic() - started, critical_path(workflow, run))


def report_markdown(site: Site) -> str:
    """pipeline-report's rendering of the newest run in the site's state dir ('' when it has none)."""
    runs = sorted((site.state_dir / "runs").glob("*/*/"), key=os.path.getmtime)
    if not runs:
        return ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "ci-actions"), "report", "render",
                                 "--run-dir", str(runs[-1])], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "CI_ACTIONS_STATE_DIR": str(site.state_dir)})
        return result.stdout if result.returncode == 0 else result.stderr
    return ""
