"""hotswap-deploy on the example app: blue-green behind host nginx against the seed's recreate, under load.

Run: .venv/bin/python bench/bench_deploy.py [--rounds N] [--rate R] [--watch-seconds S]
     (after scripts/build-base-images.sh; needs docker, the compose CLI, nginx and npm)

The app (examples/loyalty-app) is prepared once as the pipeline's build job does (tests/support's
`built_app`), then built with build-images for two commits A and B (random shas, so nothing collides with
a test's images) that differ only in their revision label (the deploy gives each container its commit
as GIT_SHA, which /api/health reports):

    python -m ci_actions images build --compose-file docker-compose.yml \
        --compose-file docker-compose.prod.yml --project-name <unique> --sha <sha> --state-dir <tmp>

Each round, side by side in one process, each strategy in its own fresh compose project, whose Postgres
and Redis are started first (as production keeps them) and whose every deploy runs the release's
migrations (`--migrate-command node dist/migrate.js`: the first creates the schema):
1. blue-green: a real nginx on free loopback ports (tests/support/nginx.py), `deploy run` of A (backend and
   frontend), then `deploy run` of B while a bounded load generator sends R requests/s (default 120) to the
   backend through nginx. Recorded: failed requests, the CLI's timings (per service `healthy_after`,
   `switched_after`, and `total`).
2. recreate: `deploy run --strategy recreate` of A with fixed published ports (BACKEND_PORT, FRONTEND_PORT),
   then of B while the same load goes straight to the backend's published port. Recorded: failed requests,
   the load generator's downtime and the downtime the CLI reports.
Every deploy is the CLI users run, timed around the whole command as well ("wall").

Targets: blue-green drops no request, and per service start->switch <= start->healthy + 2 s. Exit status 1
when one is missed. At the end every container, network and volume of the bench's compose projects and
every image it built (label io.ci-actions.project=<project>) are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "shared", REPO_ROOT / "actions/hotswap-deploy"):
    sys.path.insert(0, str(path))

import docker  # noqa: E402
from docker.errors import APIError, ImageNotFound, NotFound  # noqa: E402

from hotswap_deploy.proxy import Upstream  # noqa: E402
from tests.support.example_app import ENV as APP_ENV  # noqa: E402
from tests.support.example_app import MIGRATE, built_app, compose_args, start_data_services  # noqa: E402
from tests.support.loadgen import LoadGenerator, LoadReport  # noqa: E402
from tests.support.nginx import free_port, start_nginx  # noqa: E402

IMAGE_PROJECT_LABEL = "io.ci-actions.project"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
SERVICES = ("backend", "frontend")
PLACEHOLDER = Upstream(["127.0.0.1:9"], [])  # what nginx serves before the first deploy: nothing
SWITCH_SLACK = 2.0  # target: start->switch <= start->healthy + 2 s


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> tuple[dict, float]:
    """`python -m ci_actions ...`: its JSON stdout and the wall seconds; a failure ends the bench."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ci_actions", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ci_actions {' '.join(args[:2])} exited {result.returncode}:\n"
                         f"{result.stderr[-4000:]}")
    return json.loads(result.stdout), seconds


def build_images(app: Path, state: Path, project: str, shas: list[str]) -> dict[str, dict[str, str]]:
    """{sha: {service: ref}}, as the integration test's `images` fixture builds them."""
    refs = {}
    for sha in shas:
        started = time.perf_counter()
        built, _ = cli("images", "build", *compose_args(app), "--project-name", project, "--sha", sha,
                       "--state-dir", str(state), "--keep", "10", env=APP_ENV)
        refs[sha] = built["images"]
        print(f"built {sha[:12]} in {time.perf_counter() - started:.1f} s: {built['images']}", flush=True)
    return refs


@dataclass
class Outcome:
    strategy: str
    load: LoadReport
    timings: dict[str, float]
    downtime: dict[str, float]  # what the CLI reports (recreate only)
    wall: float


class Bench:
    def __init__(self, root: Path, app: Path, refs: dict[str, dict[str, str]], shas: list[str], rate: float,
                 watch: float) -> None:
        self.root, self.app, self.refs, self.rate, self.watch = root, app, refs, rate, watch
        self.a, self.b = shas
        self.projects: list[str] = []

    def project(self, kind: str) -> str:
        name = f"bench-deploy-{kind}-{uuid.uuid4().hex[:8]}"
        self.projects.append(name)
        return name

    def load(self, url: str) -> LoadGenerator:
        return LoadGenerator(url, rate=self.rate, max_seconds=300)

    def blue_green(self, n: int) -> Outcome:
        project = self.project("bg")
        nginx = start_nginx(self.root / f"nginx-{n}", project, dict.fromkeys(SERVICES, PLACEHOLDER))
        try:
            def run_args(sha: str) -> list[str]:
                return ["deploy", "run", *compose_args(self.app), "--project-name", project,
                        *[arg for s in SERVICES for arg in ("--service", s)],
                        "--images", json.dumps(self.refs[sha]),
                        "--nginx-config", str(nginx.config), "--upstream-dir", str(nginx.upstream_dir),
                        "--health-url", "backend: http://localhost/api/health", "--health-match",
                        "backend: {sha}", "--health-url", "frontend: http://localhost/",
                        "--health-interval", "0.25", "--health-timeout", "60", "--migrate-command", MIGRATE,
                        "--watch-seconds", f"{self.watch:g}", "--state-dir", str(self.root / project)]

            start_data_services(self.app, project)
            cli(*run_args(self.a))
            with self.load(nginx.url("backend", "/api/health")) as generator:
                time.sleep(0.5)
                deployed, wall = cli(*run_args(self.b))
                time.sleep(0.5)
            report = generator.stop()
        finally:
            nginx.stop()
        return Outcome("blue-green", report, deployed["timings"], deployed.get("downtime") or {}, wall)

    def recreate(self) -> Outcome:
        project = self.project("re")
        ports = {"backend": free_port(), "frontend": free_port()}
        env = {"BACKEND_PORT": str(ports["backend"]), "FRONTEND_PORT": str(ports["frontend"])}

        def run_args(sha: str) -> list[str]:
            return ["deploy", "run", *compose_args(self.app), "--project-name", project,
                    *[arg for s in SERVICES for arg in ("--service", s)],
                    "--images", json.dumps(self.refs[sha]), "--sha", sha, "--strategy", "recreate",
                    "--health-url", f"backend: http://127.0.0.1:{ports['backend']}/api/health",
                    "--health-url", f"frontend: http://127.0.0.1:{ports['frontend']}/",
                    "--health-interval", "0.1", "--health-timeout", "60", "--migrate-command", MIGRATE,
                    "--state-dir", str(self.root / project)]

        start_data_services(self.app, project)
        cli(*run_args(self.a), env=env)
        with self.load(f"http://127.0.0.1:{ports['backend']}/api/health") as generator:
            time.sleep(0.5)
            deployed, wall = cli(*run_args(self.b), env=env)
            time.sleep(0.5)
        report = generator.stop()
        return Outcome("recreate", report, deployed["timings"], deployed.get("downtime") or {}, wall)


def one_round(bench: Bench, n: int) -> dict[str, Outcome]:
    outcomes = {}
    for outcome in (bench.blue_green(n), bench.recreate()):
        outcomes[outcome.strategy] = outcome
        print(f"round {n + 1}, {outcome.strategy}: {outcome.load.summary()}; CLI timings {outcome.timings}"
              + (f"; CLI downtime {outcome.downtime}" if outcome.downtime else "")
              + f"; wall {outcome.wall:.2f} s", flush=True)
    return outcomes


def report(rounds: list[dict[str, Outcome]], rate: float, watch: float) -> int:
    def med(values) -> float:
        return statistics.median(list(values))

    def mark(ok: bool) -> str:
        return "✔" if ok else "✘"

    rows = []
    for strategy in ("blue-green", "recreate"):
        runs = [r[strategy] for r in rounds]
        failed = sum(o.load.failed for o in runs)
        total = sum(o.load.total for o in runs)
        cli_downtime = (f"{med(o.downtime.get('backend', 0.0) for o in runs):.2f} s" if strategy == "recreate"
                        else "-")
        target = "0 failed" if strategy == "blue-green" else "-"
        ok = mark(failed == 0) if strategy == "blue-green" else ""
        rows.append((strategy, f"{failed}/{total}", f"{med(o.load.rate for o in runs):.0f}/s",
                     f"{med(o.load.downtime_seconds for o in runs):.2f} s", cli_downtime,
                     f"{med(o.timings['total'] for o in runs):.2f} s", f"{med(o.wall for o in runs):.2f} s",
                     target, ok))
    header = ("deploy of B after A", "failed/requests", "rate", "downtime (load)", "backend downtime (CLI)",
              "deploy (CLI total)", "deploy (wall)", "target", "")
    print(f"\nexample app (backend + frontend), {len(rounds)} round(s); failed requests summed, the rest "
          f"medians; load {rate:g}/s at the backend; blue-green watch {watch:g} s.\nDowntime (load): the "
          "load generator's failing spans; (CLI): the longest span the deploy's own 100 ms probe (0.3 s "
          "timeout) saw")
    table(header, rows)

    targets = []
    for service in SERVICES:
        for n, r in enumerate(rounds, start=1):
            timings = r["blue-green"].timings
            healthy, switched = timings[f"{service}.healthy_after"], timings[f"{service}.switched_after"]
            targets.append((f"{service}, round {n}", f"{healthy:.2f} s", f"{switched:.2f} s",
                            f"{switched - healthy:.3f} s", f"<= {SWITCH_SLACK:g} s",
                            mark(switched <= healthy + SWITCH_SLACK)))
    print("\nblue-green: start->switch <= start->healthy + 2 s, per service")
    table(("service", "start->healthy", "start->switch", "switch - healthy", "target", ""), targets)
    missed = [row for row in [*rows, *targets] if row[-1] == "✘"]
    return 1 if missed else 0


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cleanup(client: docker.DockerClient, projects: list[str], image_project: str) -> None:
    """The compose projects' containers, networks and volumes (the database's), then every image the bench
    built, by tag (or id when untagged), forced."""
    removed = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
    for project in projects:
        mine = {"label": f"{COMPOSE_PROJECT_LABEL}={project}"}
        for container in client.containers.list(all=True, filters=mine):
            with contextlib.suppress(NotFound):
                container.remove(force=True)
                removed["containers"] += 1
        for network in client.networks.list(filters=mine):
            with contextlib.suppress(NotFound, APIError):
                network.remove()
                removed["networks"] += 1
        for volume in client.volumes.list(filters=mine):
            with contextlib.suppress(NotFound, APIError):
                volume.remove(force=True)
                removed["volumes"] += 1
    for image in client.images.list(filters={"label": f"{IMAGE_PROJECT_LABEL}={image_project}"}):
        for name in image.tags or [image.id]:
            with contextlib.suppress(ImageNotFound):
                client.images.remove(name, force=True)
                removed["images"] += 1
    print("cleanup: removed " + ", ".join(f"{n} {kind}" for kind, n in removed.items()) + f" of "
          f"{', '.join(projects) or 'no deploy project'} and image project {image_project}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are reported")
    parser.add_argument("--rate", type=float, default=120.0, help="requests per second during the deploy")
    parser.add_argument("--watch-seconds", type=float, default=0.0,
                        help="blue-green's watch window before the old containers are retired")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.rate < 100:
        parser.error("--rate must be at least 100 requests per second")
    for tool in ("npm", "docker", "nginx"):
        if not shutil.which(tool) and not (tool == "nginx" and Path("/usr/sbin/nginx").exists()):
            raise SystemExit(f"{tool} is not on PATH; install it to run this bench")
    client = docker.from_env(timeout=300)
    shas = [secrets.token_hex(20), secrets.token_hex(20)]
    image_project = f"bench-deploy-img-{uuid.uuid4().hex[:8]}"
    bench = None
    with tempfile.TemporaryDirectory(prefix="ci-actions-bench-deploy-") as tmp:
        root = Path(tmp)
        try:
            started = time.perf_counter()
            app = built_app(root)
            print(f"prepared {app} in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs",
                  flush=True)
            refs = build_images(app, root / "build-state", image_project, shas)
            bench = Bench(root, app, refs, shas, args.rate, args.watch_seconds)
            rounds = [one_round(bench, n) for n in range(args.rounds)]
        finally:
            cleanup(client, bench.projects if bench else [], image_project)
    return report(rounds, args.rate, args.watch_seconds)


if __name__ == "__main__":
    sys.exit(main())
