"""The example app's E2E job, as the seed's pipeline runs it: the whole stack from docker-compose.e2e.yml,
then the Playwright suite (frontend/e2e, `npm run test:e2e`) in Debian's Chromium against it.

A copy of the app is installed and built as a workspace (tests.support.example_app: `npm ci` in both
package dirs, offline `prisma generate`, both builds), the backend pruned to its production layer (a
small build context), and the two images built with tags unique to this run. The stack runs as its own
compose project with every published port a free loopback port (POSTGRES_PORT, REDIS_PORT,
BACKEND_PORT, FRONTEND_PORT), `up --wait` until the migrations ran and everything is healthy. The
suite then runs with E2E_BASE_URL pointing at that frontend, and every one of its tests (at least 20)
must pass; its JSON report gives the per-test timings (printed with -s).

Teardown always runs: `down --volumes` of this project only, then the removal of the two images this run
built and of the untagged images its builds left. Never `--rmi all`: postgres and redis run the shared
local images ci-actions/postgres:local and ci-actions/redis:local, which other stacks use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.example_app import ENV, built_app, leftover_images, remove_built_images

CHROMIUM = "/usr/bin/chromium"
COMPOSE_FILE = "docker-compose.e2e.yml"
PROD_PRUNE = ["npm", "prune", "--omit=dev", "--omit=optional", "--offline", "--no-audit", "--no-fund"]
MIN_TESTS = 20


def _free_loopback_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 (all bound at once, so no two are the same)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, env={**os.environ, **ENV, **env}, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"{' '.join(argv)} did not finish within {timeout:.0f}s:\n{out[-6000:]}", pytrace=False)


def _check(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        pytest.fail(f"{what} exited {result.returncode}\nstdout:\n{result.stdout[-6000:]}\n"
                    f"stderr:\n{result.stderr[-6000:]}", pytrace=False)  # fmt: skip
    return result.stdout


class Stack:
    """docker-compose.e2e.yml as a project of its own: unique name, image tags and loopback ports."""

    def __init__(self, app: Path) -> None:
        run = uuid.uuid4().hex[:10]
        postgres, redis, backend, frontend = _free_loopback_ports(4)
        self.app = app
        self.project = f"loyalty-e2e-{run}"
        self.images = (f"loyalty-app-backend:e2e-{run}", f"loyalty-app-frontend:e2e-{run}")
        self.env = {
            "BACKEND_IMAGE": self.images[0],
            "FRONTEND_IMAGE": self.images[1],
            "POSTGRES_PORT": str(postgres),
            "REDIS_PORT": str(redis),
            "BACKEND_PORT": str(backend),
            "FRONTEND_PORT": str(frontend),
            "APP_VERSION": f"1.0.0-e2e.{run}",
            "GIT_SHA": f"{run}e2e0",
        }
        self.frontend_url = f"http://127.0.0.1:{frontend}"
        self.backend_url = f"http://127.0.0.1:{backend}"
        self.phases: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((name, time.monotonic() - start))

    def argv(self, *args: str) -> list[str]:
        return ["docker", "compose", "-p", self.project, "-f", COMPOSE_FILE, *args]

    def __call__(self, *args: str, timeout: float = 240) -> str:
        return _check(_run(self.argv(*args), self.app, self.env, timeout), f"docker compose {' '.join(args)}")


@pytest.fixture(scope="module")
def tools() -> None:
    """node, npm, the docker CLI with compose, and Debian's Chromium: the test fails (never skips) without."""
    missing = [name for name in ("node", "npm", "docker") if shutil.which(name) is None]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium; scripts/setup installs it)")
    if missing:
        pytest.fail(f"missing: {', '.join(missing)}", pytrace=False)
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if compose.returncode != 0:
        problem = compose.stderr.strip()
        pytest.fail(f"`docker compose` fails; run scripts/ensure-docker.sh ({problem})", pytrace=False)


@pytest.fixture
def stack(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Stack]:
    start = time.monotonic()
    app = built_app(tmp_path)
    built = time.monotonic() - start
    _check(_run(PROD_PRUNE, app / "backend", {}, 240), "npm prune (backend's production layer)")
    project = Stack(app)
    project.phases += [("workspace (npm ci x2, prisma generate, builds)", built),
                       ("npm prune (backend's production layer)", time.monotonic() - start - built)]
    before = leftover_images(docker_client)
    try:
        yield project
    finally:
        down_argv = project.argv("down", "--volumes", "--remove-orphans", "--timeout", "10")
        down = _run(down_argv, app, project.env, timeout=120)
        remove_built_images(docker_client, project.images, before)
        assert down.returncode == 0, f"compose down failed:\n{down.stdout}\n{down.stderr}"
        mine = {"label": f"com.docker.compose.project={project.project}"}
        assert not docker_client.containers.list(all=True, filters=mine)
        assert not docker_client.volumes.list(filters=mine)
        assert not docker_client.networks.list(filters=mine)


def _results(report: dict) -> list[tuple[str, str, float]]:
    """(file > title, status, seconds) of every test result in Playwright's JSON report."""
    rows: list[tuple[str, str, float]] = []

    def walk(suite: dict, path: str) -> None:
        for spec in suite.get("specs", []):
            for test in spec["tests"]:
                for result in test["results"]:
                    rows.append((f"{path} > {spec['title']}", result["status"], result["duration"] / 1000))
        for child in suite.get("suites", []):
            walk(child, path or child.get("file", child["title"]))

    for suite in report["suites"]:
        walk(suite, "")
    return rows


def _run_suite(stack: Stack, report_file: Path) -> tuple[list[tuple[str, str, float]], dict]:
    """`npm run test:e2e` against the stack; every test's result and the report's stats."""
    e2e_env = {
        "E2E_BASE_URL": stack.frontend_url,
        "E2E_JSON_REPORT": str(report_file),
        "E2E_CHROMIUM": CHROMIUM,
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CI": "1",  # a test.only left behind fails the run
    }
    suite = _run(["npm", "run", "test:e2e"], stack.app / "frontend", e2e_env, timeout=420)
    said = f"{suite.stdout[-8000:]}\n{suite.stderr[-3000:]}"
    assert report_file.is_file(), f"the suite wrote no report:\n{said}"
    report = json.loads(report_file.read_text())
    results = _results(report)
    failed = [f"{name}: {status}" for name, status, _ in results if status != "passed"]
    assert suite.returncode == 0 and not failed, f"E2E failures: {failed}\n{said}"
    return results, report["stats"]


def test_e2e_suite_passes_against_the_e2e_stack(
    tools: None,
    docker_client: docker.DockerClient,
    node_image: str,
    busybox_image: str,
    service_images: tuple[str, str],
    stack: Stack,
    tmp_path: Path,
) -> None:
    try:
        with stack.phase("compose build (backend, frontend)"):
            stack("build", timeout=300)
        with stack.phase("compose up --wait (migrated, healthy)"):
            stack("up", "-d", "--wait", "--wait-timeout", "120", timeout=180)
        with stack.phase("npm run test:e2e"):
            results, stats = _run_suite(stack, tmp_path / "e2e-report.json")
    finally:
        width = max(len(name) for name, _ in stack.phases)
        print(f"\nE2E job ({stack.project}):")
        print("\n".join(f"  {name:<{width}}  {secs:6.1f}s" for name, secs in stack.phases))

    # The one-off migrate container ran to completion before the backend started.
    migrate = stack("ps", "-a", "--format", "json", "migrate").splitlines()
    assert [json.loads(line)["ExitCode"] for line in migrate] == [0], migrate
    assert stats["unexpected"] == 0 and stats["flaky"] == 0 and stats["skipped"] == 0, stats
    assert len(results) == stats["expected"] >= MIN_TESTS, (len(results), stats)
    # The suite worked on this stack: its members are in this project's database.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{stack.backend_url}/api/users", timeout=10) as response:
        users = json.loads(response.read())["users"]
    assert len(users) > MIN_TESTS, f"{len(users)} members in the E2E database"

    print(f"  {len(results)} tests passed in {stats['duration'] / 1000:.1f}s (2 workers); slowest:")
    for name, _, secs in sorted(results, key=lambda row: -row[2])[:5]:
        print(f"    {secs:5.1f}s  {name}")
