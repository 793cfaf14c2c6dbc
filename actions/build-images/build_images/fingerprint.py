"""What a service's image is built from, as one digest: the build context (after .dockerignore), the
build settings and args, and the ids of the base images.

An image built from the same inputs carries the same digest (label `io.ci-actions.inputs`), so a
rebuild of an unchanged service reuses it instead of running `docker compose build`, which on the
classic builder re-sends (and gzips) the whole context every time even when every step is cached.
Anything that cannot be pinned (an ARG in FROM, a remote context, a base image not on the host) gives
no fingerprint, and the service is built as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import docker
from docker.errors import ImageNotFound
from docker.utils.build import exclude_paths

FORMAT = "ci-actions-build-inputs-1"
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)


def fingerprint(client: docker.DockerClient, build: dict, build_args: dict[str, str]) -> str | None:
    """The digest of everything `build` (a service's resolved compose `build:`) makes its image from."""
    context = str(build.get("context", ""))
    if "://" in context or context.startswith("git@") or "dockerfile_inline" in build:
        return None
    root = Path(context)
    dockerfile = Path(build.get("dockerfile") or "Dockerfile")
    dockerfile = dockerfile if dockerfile.is_absolute() else root / dockerfile
    bases = base_image_ids(client, dockerfile.read_text())
    if bases is None:
        return None
    digest = hashlib.sha256()
    settings = {k: v for k, v in build.items() if k not in ("context", "labels")}
    settings["args"] = {**(build.get("args") or {}), **build_args}
    digest.update(json.dumps([FORMAT, settings, bases, dockerfile.read_text()], sort_keys=True).encode())
    digest.update(context_digest(root, dockerfile).encode())
    return digest.hexdigest()


def base_image_ids(client: docker.DockerClient, dockerfile: str) -> list[str] | None:
    """The local ids of every FROM image that is not an earlier stage; None when one cannot be pinned."""
    stages: set[str] = set()
    ids = []
    for image, stage in _FROM.findall(dockerfile):
        if image.lower() in stages or image == "scratch":
            ids.append(image.lower())
        elif "$" in image:
            return None
        else:
            try:
                ids.append(client.images.get(image).id)
            except ImageNotFound:
                return None
        if stage:
            stages.add(stage.lower())
    return ids


def context_digest(root: Path, dockerfile: Path) -> str:
    """sha256 over every file the builder would receive: path, mode and content (or link target)."""
    ignore = root / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore.is_file() else []
    relative = os.path.relpath(dockerfile, root)
    digest = hashlib.sha256()
    for name in sorted(exclude_paths(str(root), patterns, dockerfile=relative)):
        path = root / name
        info = path.lstat()
        digest.update(f"{name}\0{info.st_mode}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        digest.update(b"\n")
    return digest.hexdigest()
