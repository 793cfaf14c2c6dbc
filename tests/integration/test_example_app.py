"""The example app (examples/loyalty-app) end to end, as the pipeline demo runs it, with nothing mocked.

A copy of the app, installed (`npm ci` in both package dirs), generated (offline `prisma generate`)
and built once per test process (tests.support.example_app.built_app; the typecheck, lint, unit and
integration tests run in the pipeline test's security and unit jobs), is pruned to its production
layer, then `docker compose build` and, with the prod override on free loopback ports, from the local
base images and with no registry: Postgres and Redis up, the migrations in a one-off backend container
(twice: the second applies nothing), then the whole stack `up --wait`. The API is read from the host,
through the database and the Redis leaderboard; `down -v` always runs (the database's named volume
goes with -v), then the removal of the two images this run built (tags unique to the run) and of the
untagged images its builds left. Never `--rmi all`: postgres and redis run the shared local images
ci-actions/postgres:local and ci-actions/redis:local, which every other stack on the machine uses (and
`--rmi local` keeps the app's images, which the services name).

Phase timings are printed (-s).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

import docker
import pytest

from tests.support.example_app import built_app, leftover_images, remove_built_images

# What a build job installs in the image: production deps only. `--omit=optional` too, because
# @prisma/client's optional peers (prisma, typescript) are otherwise kept as "devOptional".
PROD_PRUNE = ["npm", "prune", "--omit=dev", "--omit=optional", "--offline", "--no-audit", "--no-fund"]

P = ParamSpec("P")
T = TypeVar("T")


class Phases:
    """Wall-clock time per phase, printed at the end of the test."""

    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []

    def run(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.times.append((name, time.monotonic() - start))

    def report(self) -> str:
        width = max(len(name) for name, _ in self.times)
        return "\n".join(f"  {name:<{width}}  {secs:6.1f}s" for name, secs in self.times)


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> str:
    """Run argv (no shell); fail with its output when it exits non-zero."""
    full_env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false",
                "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", **(env or {})}
    try:
        result = subprocess.run(
            argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{' '.join(argv)} (in {cwd}) did not finish within {timeout:.0f}s:\n{exc.stdout}\n{exc.stderr}"
        )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} (in {cwd}) exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result.stdout


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, within: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """GET url from the host (no proxies), retrying until it answers; returns status, headers, body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + within
    while True:
        try:
            with opener.open(url, timeout=5) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {within:.0f}s: {exc}") from exc
            time.sleep(0.25)


def _post(url: str, body: dict) -> dict:
    """POST a JSON body from the host (no proxies); the JSON answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """npm and the docker CLI with its compose plugin: the test fails (never skips) without them."""
    found = {name: shutil.which(name) for name in ("node", "npm", "docker")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not on PATH: install Node 20 (with npm) and the docker CLI", pytrace=False
        )
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if compose.returncode != 0:
        pytest.fail(
            f"`docker compose` does not work; run scripts/ensure-docker.sh ({compose.stderr.strip()})"
        )
    return {name: str(path) for name, path in found.items()}


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """The app installed, generated and built, in a fresh directory of its own."""
    return built_app(tmp_path)


class Compose:
    """`docker compose` with the prod override, a unique project, unique image tags and free ports."""

    def __init__(self, app: Path) -> None:
        run = uuid.uuid4().hex[:10]
        self.app = app
        self.project = f"loyalty-test-{run}"
        self.env = {
            "BACKEND_IMAGE": f"loyalty-app-backend:test-{run}",
            "FRONTEND_IMAGE": f"loyalty-app-frontend:test-{run}",
            "BACKEND_PORT": str(_free_loopback_port()),
            "FRONTEND_PORT": str(_free_loopback_port()),
            "APP_VERSION": f"1.0.0-test.{run}",
            "GIT_SHA": f"{run}cafe",
        }

    def argv(self, *args: str) -> list[str]:
        return [
            "docker", "compose", "-p", self.project,
            "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml",
            *args,
        ]  # fmt: skip

    def __call__(self, *args: str, timeout: float = 240) -> str:
        return _run(self.argv(*args), cwd=self.app, env=self.env, timeout=timeout)


@pytest.fixture
def compose(app_copy: Path, docker_client: docker.DockerClient) -> Iterator[Compose]:
    project = Compose(app_copy)
    before = leftover_images(docker_client)
    try:
        yield project
    finally:
        down = subprocess.run(
            project.argv("down", "-v", "--remove-orphans", "--timeout", "10"),
            cwd=app_copy,
            env={**os.environ, **project.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Only the two images this run built (never `--rmi all`: the shared service images stay).
        remove_built_images(docker_client, (project.env["BACKEND_IMAGE"], project.env["FRONTEND_IMAGE"]),
                            before)  # fmt: skip
        assert down.returncode == 0, f"compose down failed:\n{down.stdout}\n{down.stderr}"


def test_example_app_image_runs_migrates_and_serves_in_containers(
    tools: dict[str, str],
    docker_client: docker.DockerClient,
    node_image: str,
    busybox_image: str,
    service_images: tuple[str, str],
    app_copy: Path,
    compose: Compose,
) -> None:
    backend, frontend = app_copy / "backend", app_copy / "frontend"
    phases = Phases()
    # npm 11 blocks dependency install scripts unless allowed; the backend denies Prisma's explicitly.
    assert not (backend / "node_modules" / "@prisma" / "engines" / "dist" / "schema-engine").exists()
    generated = backend / "src" / "generated" / "prisma"
    assert (generated / "client.ts").is_file() and (generated / "models" / "User.ts").is_file()
    # Prisma 7's `prisma-client` generator writes only to its `output`; nothing lands in node_modules.
    assert not (backend / "node_modules" / ".prisma").exists()
    assert (backend / "dist" / "server.js").is_file()
    assert (backend / "dist" / "generated" / "prisma" / "client.js").is_file()
    assert (frontend / "dist" / "index.html").is_file()

    # The build job's production layer: what the image gets (the Dockerfile would prune a full install too).
    phases.run("backend npm prune (prod layer)", _run, PROD_PRUNE, backend)
    assert not (backend / "node_modules" / "prisma").exists()
    assert (backend / "node_modules" / "@prisma" / "client" / "package.json").is_file()

    phases.run("compose build (both images)", compose, "build", timeout=300)
    backend_image = docker_client.images.get(compose.env["BACKEND_IMAGE"])
    frontend_image = docker_client.images.get(compose.env["FRONTEND_IMAGE"])
    assert backend_image.attrs["Config"]["User"] == "node"
    assert frontend_image.attrs["Config"]["User"] == "65534:65534"
    listing = docker_client.containers.run(
        compose.env["BACKEND_IMAGE"],
        ["ls", "-1", "/app/node_modules", "/app/node_modules/@prisma"],
        remove=True,
    ).decode()
    modules = set(listing.split())
    assert {"@prisma", "client", "adapter-pg", "pg", "ioredis"} <= modules, listing
    assert not modules & {"prisma", "typescript", "eslint"}, f"dev dependencies in the image:\n{listing}"

    # Production's order: the data services first, then the release's migration step as a deploy runs
    # it (a one-off container of the new image on the project's network), then the app.
    phases.run("compose up --wait postgres redis", compose, "up", "-d", "--wait", "--wait-timeout", "90",
               "postgres", "redis", timeout=150)  # fmt: skip
    migrate = ["run", "--rm", "--no-deps", "-T", "backend", "npm", "run", "--silent", "db:migrate:deploy"]
    out = phases.run("migrate (one-off container)", compose, *migrate)
    assert "applied 20251110000000_init" in out, out
    assert "applied 2 migration(s), 0 were applied before" in out, out
    assert "nothing to apply: all 2 migration(s) are applied" in compose(*migrate)

    phases.run(
        "compose up --wait (healthy)", compose, "up", "-d", "--wait", "--wait-timeout", "90", timeout=150
    )

    backend_url = f"http://127.0.0.1:{compose.env['BACKEND_PORT']}"
    frontend_url = f"http://127.0.0.1:{compose.env['FRONTEND_PORT']}"
    status, headers, body = _get(f"{backend_url}/api/health")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {
        "status": "ok",
        "version": compose.env["APP_VERSION"],
        "commit": compose.env["GIT_SHA"],
        "checks": {"database": "ok", "redis": "ok"},
    }
    _, _, rewards = _get(f"{backend_url}/api/rewards")
    assert [r["name"] for r in json.loads(rewards)["rewards"]] == [
        "Free coffee",
        "Cinema ticket",
        "Weekend getaway",
    ]
    # A write through Postgres, and the Redis leaderboard that ranks it.
    earned = _post(f"{backend_url}/api/users/1/points", {"points": 50, "reason": "test order"})
    assert earned["balance"] == 300
    _, _, board = _get(f"{backend_url}/api/leaderboard?limit=1")
    assert json.loads(board)["leaders"] == [{"rank": 1, "userId": 1, "name": "Demo Member", "points": 300}]

    status, headers, page = _get(f"{frontend_url}/")
    assert status == 200 and b'<script type="module"' in page
    script = page.split(b'src="')[1].split(b'"')[0].decode()
    _, js_headers, _ = _get(f"{frontend_url}{script}")
    assert js_headers["content-type"].startswith("text/javascript")
    _, _, config = _get(f"{frontend_url}/config.json")
    assert json.loads(config) == {"apiBase": backend_url}

    # Ports are published on the loopback interface only; the data services publish none, and the
    # database lives in the project's named volume.
    for service in ("backend", "frontend"):
        published = json.loads(compose("ps", "--format", "json", service).splitlines()[0])["Publishers"]
        assert {p["URL"] for p in published if p["PublishedPort"]} == {"127.0.0.1"}, published
    for service in ("postgres", "redis"):
        published = json.loads(compose("ps", "--format", "json", service).splitlines()[0])["Publishers"]
        assert not any(p["PublishedPort"] for p in published), published
    assert docker_client.volumes.get(f"{compose.project}_pgdata").attrs["Labels"][
        "com.docker.compose.project"] == compose.project

    # docker stop sends SIGTERM to PID 1 (node; the frontend's entrypoint shell, which passes it on):
    # both exit 0, well before the kill timeout.
    start = time.monotonic()
    phases.run("compose stop", compose, "stop", "--timeout", "20", "backend", "frontend")
    assert time.monotonic() - start < 15
    for service in ("backend", "frontend"):
        container_id = compose("ps", "-a", "-q", service).strip()
        state = docker_client.containers.get(container_id).attrs["State"]
        assert state["ExitCode"] == 0, f"{service} exited {state['ExitCode']} on SIGTERM"
    assert "SIGTERM received: draining" in compose("logs", "--no-color", "backend")

    print(f"\nexample app phases ({compose.project}):\n{phases.report()}")
    print(f"  image sizes: backend {backend_image.attrs['Size'] / 1e6:.1f} MB, "
          f"frontend {frontend_image.attrs['Size'] / 1e6:.2f} MB")  # fmt: skip
