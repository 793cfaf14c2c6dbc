"""What a service's image is built from, as one digest: the build context (after .dockerignore), the
build settings and args, and the ids of the base images.

An image built from the same inputs carries the same digest (label `io.ci-actions.inputs`), so a
rebuild of an unchanged service reuses it instead of running `docker compose build`, which on the
classic builder re-sends (and gzips) the whole context every time even when every step is cached.
A FROM that names its image through an ARG declared before it (`FROM ${DEPS_IMAGE}`) is pinned with the
build's value of that ARG (compose `args`, then build-images' build-args) or its default. Anything that
cannot be pinned (another expansion, a remote context, a base image not on the host) gives no
fingerprint, and the service is built as usual.
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
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE | re.MULTILINE)
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def fingerprint(client: docker.DockerClient, build: dict, build_args: dict[str, str]) -> str | None:
    """The digest of everything `build` (a service's resolved compose `build:`) makes its image from."""
    context = str(build.get("context", ""))
    if "://" in context or context.startswith("git@") or "dockerfile_inline" in build:
        return None
    root = Path(context)
    dockerfile = Path(build.get("dockerfile") or "Dockerfile")
    dockerfile = dockerfile if dockerfile.is_absolute() else root / dockerfile
    settings = {k: v for k, v in build.items() if k not in ("context", "labels")}
    settings["args"] = {**(build.get("args") or {}), **build_args}
    bases = base_image_ids(client, dockerfile.read_text(), settings["args"])
    if bases is None:
        return None
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, settings, bases, dockerfile.read_text()], sort_keys=True).encode())
    digest.update(context_digest(root, dockerfile).encode())
    return digest.hexdigest()


def global_args(dockerfile: str, args: dict[str, str | None]) -> dict[str, str]:
    """The ARGs a FROM can expand (those declared before the first FROM): the build's value, else the
    declared default; one with neither expands to nothing, as the builder does."""
    first = _FROM.search(dockerfile)
    head = dockerfile[:first.start()] if first else dockerfile
    return {name: str(args[name]) if args.get(name) is not None else default.strip("\"'")
            for name, default in _ARG.findall(head)}


def expand(image: str, scope: dict[str, str]) -> str | None:
    """`$NAME` and `${NAME}` from `scope`; None for a name outside it or any other form (`${X:-y}`)."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1) or match.group(2)
        missing = missing or name not in scope
        return scope.get(name, "")

    expanded = _REFERENCE.sub(value, image)
    return None if missing or "$" in expanded or not expanded else expanded


def base_image_ids(client: docker.DockerClient, dockerfile: str,
                   args: dict[str, str | None]) -> list[str] | None:
    """The local ids of every FROM image that is not an earlier stage; None when one cannot be pinned."""
    stages: set[str] = set()
    scope = global_args(dockerfile, args)
    ids = []
    for named, stage in _FROM.findall(dockerfile):
        image = expand(named, scope) if "$" in named else named
        if image is None:
            return None
        if image.lower() in stages or image == "scratch":
            ids.append(image.lower())
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
