"""The example app (examples/loyalty-app) copied and built as a workspace: what the images are built
from in the build-images and hotswap-deploy tests and benches. npm installs from its own cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "examples" / "loyalty-app"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.prod.yml")
ENV = {"PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true", "CHECKPOINT_DISABLE": "1", "NO_UPDATE_NOTIFIER": "1",
       "NPM_CONFIG_UPDATE_NOTIFIER": "false"}


def run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed in {cwd} (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def built_app(dest: Path) -> Path:
    """A copy of the app with both package dirs installed, the Prisma client generated and both built."""
    app = dest / "loyalty-app"
    shutil.copytree(APP, app, symlinks=True,
                    ignore=shutil.ignore_patterns("node_modules", "dist", "build-test", "generated"))
    npm_ci = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda d: run(npm_ci, app / d), ("backend", "frontend")))
    run(["npm", "run", "db:generate"], app / "backend")
    for package in ("backend", "frontend"):
        run(["npm", "run", "build"], app / package)
    return app


def compose_args(app: Path) -> list[str]:
    return [arg for name in COMPOSE_FILES for arg in ("--compose-file", str(app / name))]
