"""build-images on the example app: rebuilds with no change and after a backend edit, against a cold build.

Run: .venv/bin/python bench/bench_images.py [--rounds N] [--prod-deps | --job]
(after scripts/build-base-images.sh)

The app (examples/loyalty-app) is copied without node_modules/dist and prepared once as the pipeline's
build job does: `npm ci` in backend and frontend, offline `npm run db:generate`, `npm run build` in both
(`--prod-deps` also prunes the backend's node_modules to production deps first, as
tests/integration/test_example_app.py does; that shrinks the build context the classic builder sends).
Every build is the CLI users run, timed around the whole command:

    python -m ci_actions images build --compose-file docker-compose.yml \
        --compose-file docker-compose.prod.yml --project-name <unique> --sha <sha> --state-dir <tmp>

Each round, side by side in one process:
1. cold: `--no-cache` (the classic builder caches by parent + instruction, so only this is really cold)
2. no change: the next commit, same sources                                  ratio vs cold, target <= 0.10
3. backend change: one line added to backend/src, `npm run build` in backend (untimed), then the build
   (timed; `--verbose` gives each service's compose build log). Expected: the backend's steps before
   `COPY dist ./dist` say "Using cache", every step from that copy on is rebuilt, and every step of the
   frontend's Dockerfile is cached (only the metadata labels appended after it, whose values change with
   each commit, run again). The step lines are printed.

`--job` measures the pipeline's whole build job instead (examples/workflows/after.yml), as processes:
`ci-actions workspace restore` (layer all) into a fresh job directory, `npm run build` in backend and
frontend, the backend-deps step (`docker compose build backend-deps` only when its lock-hash tag is
missing) and `ci-actions images build`. Each job's sources come from `ci-actions workspace prepare` of a
fresh copy of the app (untimed: that is the prepare job), with the store warm after the first.
1. cold: a deps tag no image has and `--no-cache` (nothing of these images in the builder's cache)
2. backend change: one line added to backend/src, prepared again, the job again        target <= 0.30x
3. frontend change: one line added to frontend/src: the backend must be reused (no compose build)

Every image the bench made (label io.ci-actions.project=<project>, and the --job deps tag) is removed
at the end, with the untagged stage images (label loyalty-app.image) that appeared during the run. Exit
status 1 when a measure misses its target.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "examples" / "loyalty-app"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.prod.yml")
PROJECT_LABEL = "io.ci-actions.project"
STAGE_LABEL = "loyalty-app.image"  # the app's Dockerfiles label every stage, the untagged deps stage too
NPM_ENV = {"NO_UPDATE_NOTIFIER": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false",
           "PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true", "CHECKPOINT_DISABLE": "1"}  # offline Prisma 7
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"]
PROD_PRUNE = ["npm", "prune", "--omit=dev", "--omit=optional", "--offline", "--no-audit", "--no-fund"]
EDITED = Path("backend/src/config.ts")
COPY_DIST = "COPY dist ./dist"
# Labels compose and build-images append as LABEL steps after the Dockerfile's own.
APPENDED_LABELS = re.compile(r"^LABEL (com\.docker\.compose\.|io\.ci-actions\.|org\.opencontainers\.image\.)")
STEP = re.compile(r"^Step \d+/\d+ : (.*)$")
TARGET = 0.10
JOB_TARGET = 0.30
WORKSPACE_CLI = [sys.executable, "-m", "ci_actions", "workspace"]


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env={**os.environ, **NPM_ENV, **(env or {})}, capture_output=True,
                            text=True, check=False, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} (in {cwd}) exited {result.returncode}:\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def prepare(root: Path, prod_deps: bool) -> Path:
    """The app with its dependencies installed, the Prisma client generated and both packages built."""
    app = root / "loyalty-app"
    shutil.copytree(APP, app, symlinks=True,
                    ignore=shutil.ignore_patterns("node_modules", "dist", "build-test", "generated"))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda d: run(NPM_CI, app / d), ("backend", "frontend")))
    run(["npm", "run", "db:generate"], app / "backend")
    for directory in ("backend", "frontend"):
        run(["npm", "run", "build"], app / directory)
    if prod_deps:  # the edit's `npm run build` needs the dev deps: it runs in a full copy (see edit_backend)
        shutil.copytree(app / "backend", root / "backend-dev", symlinks=True)
        run(PROD_PRUNE, app / "backend")
    size = sum(p.stat().st_size for p in (app / "backend" / "node_modules").rglob("*") if p.is_file())
    print(f"prepared {app} in {time.perf_counter() - started:.1f} s (backend node_modules "
          f"{size / 1e6:.0f} MB{', production deps only' if prod_deps else ''})", flush=True)
    return app


@dataclass
class Build:
    seconds: float
    report: dict
    logs: dict[str, str]


class Bench:
    def __init__(self, app: Path, state: Path) -> None:
        self.app = app
        self.state = state
        self.project = f"bench-images-{uuid.uuid4().hex[:8]}"
        self.env = {"BACKEND_DEPS_IMAGE": f"{self.project}-backend-deps:dev",
                    "BACKEND_IMAGE": f"{self.project}-backend:dev",
                    "FRONTEND_IMAGE": f"{self.project}-frontend:dev"}
        self.builds = 0

    def build(self, *extra: str) -> Build:
        """build-images; a cold one (--no-cache) builds the backend's base image (backend-deps) first."""
        if "--no-cache" in extra:
            run(["docker", "compose", "-f", "docker-compose.yml", "build", "--no-cache", "backend-deps"],
                self.app, self.env)
        self.builds += 1
        sha = f"{self.builds:040x}"
        files = [arg for name in COMPOSE_FILES for arg in ("--compose-file", name)]
        argv = [sys.executable, "-m", "ci_actions", "images", "build", *files, "--project-name", self.project,
                "--sha", sha, "--state-dir", str(self.state), "--verbose", *extra]
        started = time.perf_counter()
        result = run(argv, self.app, self.env)
        seconds = time.perf_counter() - started
        return Build(seconds, json.loads(result.stdout), split_logs(result.stderr))

    def edit_backend(self, n: int) -> None:
        """One line more in a backend source file, then `npm run build` (in the full copy with --prod-deps,
        whose dist/ then replaces the context's)."""
        dev = self.app.parent / "backend-dev"
        backends = [self.app / "backend", *([dev] if dev.is_dir() else [])]
        for backend in backends:
            with (backend / EDITED.relative_to("backend")).open("a") as handle:
                handle.write(f"\nexport const benchEdit{n} = {n}; // bench_images.py: a one-line change\n")
        run(["npm", "run", "build"], backends[-1])
        if backends[-1] == dev:
            shutil.rmtree(self.app / "backend" / "dist")
            shutil.copytree(dev / "dist", self.app / "backend" / "dist", symlinks=True)


def split_logs(stderr: str) -> dict[str, str]:
    """`--verbose` prints `== <service> ==` then that service's compose build log."""
    logs: dict[str, list[str]] = {}
    current = None
    for line in stderr.splitlines():
        header = re.fullmatch(r"== (\S+) ==", line)
        if header:
            current = logs.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    return {service: "\n".join(lines) for service, lines in logs.items()}


@dataclass(frozen=True)
class Step:
    line: str
    instruction: str
    state: str  # "base" (FROM), "cached" or "rebuilt"

    @property
    def appended(self) -> bool:
        return bool(APPENDED_LABELS.match(self.instruction))


def steps_of(log: str) -> list[Step]:
    """The classic builder's `Step i/n : X` lines, each with whether the next line says `Using cache`."""
    lines = log.splitlines()
    found = []
    for index, line in enumerate(lines):
        match = STEP.match(line)
        if not match:
            continue
        after = lines[index + 1].strip() if index + 1 < len(lines) else ""
        instruction = match.group(1)
        state = ("base" if instruction.upper().startswith("FROM ")
                 else "cached" if after == "---> Using cache" else "rebuilt")
        found.append(Step(line, instruction, state))
    return found


def backend_as_expected(steps: list[Step]) -> bool:
    """Every step before `COPY dist ./dist` cached, that copy and every step after it rebuilt."""
    at = next((i for i, s in enumerate(steps) if s.instruction.strip() == COPY_DIST), None)
    if at is None:
        return False
    return (all(s.state in ("base", "cached") for s in steps[:at])
            and all(s.state == "rebuilt" for s in steps[at:]))


def dockerfile_cached(steps: list[Step]) -> bool:
    """Every step of the Dockerfile itself cached (the appended metadata labels are not the Dockerfile)."""
    own = [s for s in steps if not s.appended]
    return bool(own) and all(s.state in ("base", "cached") for s in own)


def reused(log: str) -> bool:
    """build-images found an image built from the same inputs: no compose build ran at all."""
    return "unchanged: reused image" in log


def cached_or_reused(log: str) -> bool:
    return reused(log) or dockerfile_cached(steps_of(log))


def show_steps(service: str, steps: list[Step]) -> None:
    print(f"  {service}:" + ("" if steps else " inputs unchanged, image reused (no compose build)"))
    for step in steps:
        mark = {"base": "base   ", "cached": "cached ", "rebuilt": "REBUILT"}[step.state]
        text = step.line if len(step.line) <= 100 else step.line[:97] + "..."
        print(f"    {mark} {text}")


def one_round(bench: Bench, n: int) -> dict:
    cold = bench.build("--no-cache")
    same = bench.build()
    bench.edit_backend(n)
    changed = bench.build()
    steps = {service: steps_of(log) for service, log in changed.logs.items()}
    same_steps = {service: steps_of(log) for service, log in same.logs.items()}
    result = {
        "cold": cold.seconds, "same": same.seconds, "changed": changed.seconds,
        "compose": {k: b.report["build-seconds"] for k, b in (("cold", cold), ("same", same),
                                                              ("changed", changed))},
        "same-cached": all(cached_or_reused(log) for log in same.logs.values()),
        "backend-ok": backend_as_expected(steps.get("backend", [])),
        "frontend-ok": cached_or_reused(changed.logs.get("frontend", "")),
        "steps": steps,
    }
    print(f"round {n + 1}: cold {cold.seconds:.2f} s, no change {same.seconds:.2f} s (all cached: "
          f"{result['same-cached']}), backend change {changed.seconds:.2f} s (as expected: backend "
          f"{result['backend-ok']}, frontend {result['frontend-ok']}); compose build seconds per service: "
          + "; ".join(f"{k} {v}" for k, v in result["compose"].items()), flush=True)
    for service, found in same_steps.items():  # say which step missed the cache, if any did
        for step in found:
            if not step.appended and step.state == "rebuilt":
                print(f"  no change, {service} rebuilt: {step.line[:100]}", flush=True)
    return result


def report(rounds: list[dict]) -> int:
    cold = statistics.median(r["cold"] for r in rounds)
    same = statistics.median(r["same"] for r in rounds)
    changed = statistics.median(r["changed"] for r in rounds)
    last = rounds[-1]
    print(f"\nbackend change, round {len(rounds)}: the compose build log's steps")
    for service in ("backend", "frontend"):
        show_steps(service, last["steps"].get(service, []))

    def mark(ok: bool) -> str:
        return "✔" if ok else "✘"

    rows = [
        ("rebuild, no change / cold (--no-cache)", f"{same:.2f} s", f"{cold:.2f} s", f"{same / cold:.3f}",
         f"<= {TARGET:.2f}", mark(same / cold <= TARGET)),
        ("  every service reused or every Dockerfile step 'Using cache'", "", "", "", "all",
         mark(all(r["same-cached"] for r in rounds))),
        ("rebuild, backend change / cold", f"{changed:.2f} s", f"{cold:.2f} s", f"{changed / cold:.3f}",
         "-", ""),
        (f"  backend: cached before `{COPY_DIST}`, rebuilt from it", "", "", "", "all",
         mark(all(r["backend-ok"] for r in rounds))),
        ("  frontend: reused, or every Dockerfile step cached", "", "", "", "all",
         mark(all(r["frontend-ok"] for r in rounds))),
    ]
    header = ("measure", "ours", "cold", "ratio", "target", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(f"\nexample app, {len(rounds)} round(s), medians; times are the whole CLI command")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0 if all(row[-1] != "✘" for row in rows) else 1


class Job:
    """The build job of after.yml, step by step, as processes (see --job)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = root / "source"
        shutil.copytree(APP, self.source, symlinks=True,
                        ignore=shutil.ignore_patterns("node_modules", "dist", "build-test", "generated",
                                                      "e2e-results"))
        self.project = f"bench-images-{uuid.uuid4().hex[:8]}"
        lock = hashlib.sha256(b"".join((self.source / "backend" / name).read_bytes()
                                       for name in ("package.json", "package-lock.json"))).hexdigest()
        self.deps = f"{self.project}-backend-deps:{lock[:16]}"
        self.env = {"BACKEND_DEPS_IMAGE": self.deps, "BACKEND_IMAGE": f"{self.project}-backend:dev",
                    "FRONTEND_IMAGE": f"{self.project}-frontend:dev"}
        self.runs = 0

    def store_args(self) -> list[str]:
        return ["--repository", "bench/images", "--cache-dir", str(self.root / "store"),
                "--workspace-root", str(self.root / "runs")]

    def prepare(self) -> str:
        """The prepare job on a fresh checkout of `source` (untimed): the run id the job restores."""
        self.runs += 1
        checkout = self.root / f"checkout-{self.runs}"
        shutil.copytree(self.source, checkout, symlinks=True)
        run([*WORKSPACE_CLI, "prepare", "--workspace", str(checkout), "--run-id", str(self.runs),
             *self.store_args(), "--prod-layer", "--prisma-schema", "backend/prisma/schema.prisma",
             "--install-command", " ".join(NPM_CI[:4]), "--package-dir", "backend", "--package-dir",
             "frontend"], checkout)
        return str(self.runs)

    def edit(self, path: str, line: str) -> None:
        with (self.source / path).open("a") as handle:
            handle.write(f"\n{line} // bench_images.py --job: a one-line change\n")

    def build_job(self, *, cold: bool) -> tuple[dict[str, float], dict]:
        """Seconds per step of one build job, and build-images' report."""
        run_id = self.prepare()
        job = self.root / f"job-{run_id}"
        job.mkdir()
        steps: dict[str, float] = {}

        def step(name: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
            started = time.perf_counter()
            result = run(argv, cwd, self.env)
            steps[name] = time.perf_counter() - started
            return result

        step("restore-workspace", [*WORKSPACE_CLI, "restore", "--workspace", str(job), "--run-id", run_id,
                                   *self.store_args()], job)
        step("npm run build (backend)", ["npm", "run", "build"], job / "backend")
        step("npm run build (frontend)", ["npm", "run", "build"], job / "frontend")
        started = time.perf_counter()
        if cold or not docker.from_env().images.list(name=self.deps):
            run(["docker", "compose", "-f", "docker-compose.yml", "build", *(["--no-cache"] if cold else []),
                 "backend-deps"], job, self.env)
        steps["backend-deps"] = time.perf_counter() - started
        files = [arg for name in COMPOSE_FILES for arg in ("--compose-file", name)]
        built = step("build-images", [sys.executable, "-m", "ci_actions", "images", "build", *files,
                                      "--project-name", self.project, "--sha", f"{int(run_id):040x}",
                                      "--state-dir", str(self.root / "state"), "--verbose",
                                      *(["--no-cache"] if cold else [])], job)
        shutil.rmtree(job)
        return steps, {**json.loads(built.stdout), "logs": split_logs(built.stderr)}


def job_round(job: Job, n: int) -> dict:
    cold, _ = job.build_job(cold=True)
    job.edit("backend/src/config.ts", f"export const benchJobEdit{n} = {n};")
    backend, _ = job.build_job(cold=False)
    job.edit("frontend/src/main.ts", f"export const benchJobEdit{n} = {n};")
    frontend, report = job.build_job(cold=False)
    result = {"cold": cold, "backend": backend, "frontend": frontend,
              "frontend-reuses-backend": reused(report["logs"].get("backend", ""))}
    for name in ("cold", "backend", "frontend"):
        print(f"round {n + 1} {name}: {sum(result[name].values()):.2f} s (" +
              ", ".join(f"{k} {v:.2f}" for k, v in result[name].items()) + ")", flush=True)
    return result


def job_report(rounds: list[dict]) -> int:
    totals = {name: statistics.median(sum(r[name].values()) for r in rounds)
              for name in ("cold", "backend", "frontend")}
    print(f"\nbuild job (after.yml), {len(rounds)} round(s), medians of the steps' wall seconds")
    names = list(rounds[0]["cold"])
    print("  " + "step".ljust(26) + "".join(k.rjust(12) for k in totals))
    for name in names:
        print("  " + name.ljust(26) + "".join(f"{statistics.median(r[k][name] for r in rounds):12.2f}"
                                                for k in totals))
    print("  " + "total".ljust(26) + "".join(f"{v:12.2f}" for v in totals.values()))
    ratio = totals["backend"] / totals["cold"]
    reuses = all(r["frontend-reuses-backend"] for r in rounds)
    print(f"\nwarm after a backend change / cold: {ratio:.3f} (target <= {JOB_TARGET:.2f}) "
          f"{'✔' if ratio <= JOB_TARGET else '✘'}")
    print(f"frontend change reuses the backend image: {reuses} {'✔' if reuses else '✘'}")
    return 0 if ratio <= JOB_TARGET and reuses else 1


def cleanup(client: docker.DockerClient, project: str, stages_before: set[str]) -> None:
    """The project's images by id (forced: their tags and staging leftovers), then the untagged stage
    images that appeared during the run; their intermediate images go with them."""
    removed = 0
    for image in client.images.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
        with contextlib.suppress(ImageNotFound):
            client.images.remove(image.id, force=True)
            removed += 1
    for image_id in stage_images(client) - stages_before:
        with contextlib.suppress(ImageNotFound, APIError):  # APIError: another run's build now uses it
            client.images.remove(image_id)
            removed += 1
    print(f"cleanup: removed {removed} image(s) of {project}")


def stage_images(client: docker.DockerClient) -> set[str]:
    return {i.id for i in client.images.list(filters={"dangling": True, "label": STAGE_LABEL})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds; medians are reported")
    parser.add_argument("--prod-deps", action="store_true",
                        help="prune the backend's node_modules to production deps before building")
    parser.add_argument("--job", action="store_true",
                        help="time after.yml's whole build job: cold, backend change, frontend change")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    for tool in ("npm", "docker"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH; install it to run this bench")
    client = docker.from_env(timeout=300)
    stages_before = stage_images(client)
    if args.job:
        with tempfile.TemporaryDirectory(prefix="ci-actions-bench-job-") as tmp:
            job = Job(Path(tmp))
            print(f"project {job.project}; {os.cpu_count()} CPUs; {tmp}", flush=True)
            try:
                rounds = [job_round(job, n) for n in range(args.rounds)]
            finally:
                with contextlib.suppress(ImageNotFound):
                    client.images.remove(job.deps, force=True)
                cleanup(client, job.project, stages_before)
        return job_report(rounds)
    with tempfile.TemporaryDirectory(prefix="ci-actions-bench-images-") as tmp:
        bench = Bench(prepare(Path(tmp), args.prod_deps), Path(tmp) / "state")
        print(f"project {bench.project}; {os.cpu_count()} CPUs", flush=True)
        try:
            rounds = [one_round(bench, n) for n in range(args.rounds)]
        finally:
            with contextlib.suppress(ImageNotFound):
                client.images.remove(bench.env["BACKEND_DEPS_IMAGE"], force=True)
            cleanup(client, bench.project, stages_before)
    return report(rounds)


if __name__ == "__main__":
    sys.exit(main())
