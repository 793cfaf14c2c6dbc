"""The example app (examples/loyalty-app) copied and built as a workspace: what the images are built
from in the build-images and hotswap-deploy tests and benches. npm installs from its own cache.

The backend keeps its data in Postgres and its leaderboard in Redis. As on the production host, those
two run before any deploy and stay up across deploys (`start_data_services`); each deploy migrates
first (`MIGRATE`, hotswap-deploy's migrate-command), and /api/health answers 200 only once the
database has the release's newest migration."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

APP = Path(__file__).resolve().parents[2] / "examples" / "loyalty-app"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.prod.yml")
DATA_SERVICES = ("postgres", "redis")
SERVICE_IMAGES = ("ci-actions/postgres:local", "ci-actions/redis:local")
MIGRATE = "node dist/migrate.js"  # the backend image's `npm run db:migrate:deploy`
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the frontend's E2E suite drives Debian's Chromium; an install never
# fetches Playwright's own browsers.
ENV = {"PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true", "CHECKPOINT_DISABLE": "1", "NO_UPDATE_NOTIFIER": "1",
       "NPM_CONFIG_UPDATE_NOTIFIER": "false", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}


def run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {cwd} (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def built_app(dest: Path) -> Path:
    """A copy of the app with both package dirs installed, the Prisma client generated and both built.
    The install and builds run once per process (`_built_once`); each caller gets its own full copy of
    the result (no hardlinks: a rebuild writes files in place), which takes seconds instead of half a
    minute of npm."""
    app = dest / "loyalty-app"
    subprocess.run(["cp", "-a", str(_built_once()), str(app)], check=True)
    ensure_deps_image(app)
    return app


@functools.cache
def _built_once() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ci-actions-built-app-"))
    atexit.register(shutil.rmtree, root, True)
    app = root / "loyalty-app"
    shutil.copytree(APP, app, symlinks=True,
                    ignore=shutil.ignore_patterns("node_modules", "dist", "build-test", "generated"))
    npm_ci = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda d: run(npm_ci, app / d), ("backend", "frontend")))
    run(["npm", "run", "db:generate"], app / "backend")
    for package in ("backend", "frontend"):
        run(["npm", "run", "build"], app / package)
    return app


DEPS_REPOSITORY = "loyalty-app-backend-deps"


def ensure_deps_image(app: Path) -> str:
    """The backend's base image (backend-deps: its production node_modules), as the pipeline's build
    job makes it: built only when no image has this lock file's tag, then tagged `latest` (the compose
    file's default), so a build that names no BACKEND_DEPS_IMAGE finds the current lock's."""
    lock = hashlib.sha256(b"".join((app / "backend" / name).read_bytes()
                                   for name in ("package.json", "package-lock.json"))).hexdigest()[:16]
    ref = f"{DEPS_REPOSITORY}:lock-{lock}"
    client = docker.from_env()
    if not client.images.list(name=ref):
        result = subprocess.run(["docker", "compose", "-f", str(app / "docker-compose.yml"), "build",
                                 "backend-deps"], cwd=app, capture_output=True, text=True, timeout=900,
                                env={**os.environ, **ENV, "BACKEND_DEPS_IMAGE": ref}, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"building {ref} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    client.images.get(ref).tag(DEPS_REPOSITORY, "latest")
    return ref


def leftover_images(client: docker.DockerClient) -> set[str]:
    """Untagged images the app's Dockerfiles made (label loyalty-app.image): the classic builder leaves the
    backend's deps stage and, once a build's tags are removed, cached intermediate images behind."""
    return {
        image.id for image in client.images.list(filters={"dangling": True, "label": "loyalty-app.image"})
    }


def remove_built_images(client: docker.DockerClient, tags: Iterable[str], before: set[str]) -> None:
    """Only what a run built: its own tags, then the untagged images added since `before` (another run may
    be using its own as build cache right now). Never `docker compose down --rmi all`: that also removes
    the shared service images (SERVICE_IMAGES) that every stack on the machine runs."""
    for ref in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(ref, force=True)
    for image_id in leftover_images(client) - before:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image_id)


def compose_args(app: Path) -> list[str]:
    return [arg for name in COMPOSE_FILES for arg in ("--compose-file", str(app / name))]


def compose_files(app: Path) -> list[str]:
    """`-f` flags for `docker compose`, as compose_args gives `--compose-file` flags to the CLI."""
    return [arg for name in COMPOSE_FILES for arg in ("-f", str(app / name))]


def start_data_services(app: Path, project: str, env: dict[str, str] | None = None) -> None:
    """Postgres and Redis of `project`, healthy: what production runs before its first deploy."""
    argv = ["docker", "compose", "-p", project, *compose_files(app), "up", "-d", "--wait",
            "--wait-timeout", "90", *DATA_SERVICES]
    result = subprocess.run(argv, cwd=app, env={**os.environ, **ENV, **(env or {})}, capture_output=True,
                            text=True, timeout=180, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"postgres/redis of {project} did not start (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def build_release(app: Path, project: str, sha: str, state: Path) -> dict[str, str]:
    """build-images' `images` ({service: ref}) for `sha`, as the pipeline's build job makes them; the
    images carry the project's label (tests.support.production.remove_project removes them)."""
    argv = [sys.executable, "-m", "ci_actions", "images", "build", *compose_args(app),
            "--project-name", project, "--sha", sha, "--state-dir", str(state), "--keep", "10"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"images build of {sha[:12]} failed (exit {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout)["images"]

